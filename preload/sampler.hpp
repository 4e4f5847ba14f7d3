// The sampler thread: RSS records (FORMAT.md record "rss") and the last-thread check; see
// sampler.cpp.
#pragma once

namespace pmt::preload {

bool sampler_start();  // always: RSS records only when the interval is not 0; false: no thread
void sampler_stop();   // wakes and joins the thread
void sampler_fork_child();
// The writer is wanted now (writer_wake before its thread runs): the sampler starts it. Any
// thread, also inside a hook or a signal handler (one atomic and a futex wake).
void sampler_want_writer();

}  // namespace pmt::preload
