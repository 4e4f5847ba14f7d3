// The sampler thread: RSS records (FORMAT.md record "rss") and the last-thread check; see
// sampler.cpp.
#pragma once

namespace pmt::preload {

void sampler_start();  // always: RSS records only when the interval is not 0
void sampler_stop();   // wakes and joins the thread
void sampler_fork_child();

}  // namespace pmt::preload
