// The RSS sampler thread (FORMAT.md record "rss"); see sampler.cpp.
#pragma once

namespace pmt::preload {

void sampler_start();  // no-op when the interval is 0
void sampler_stop();   // wakes and joins the thread
void sampler_fork_child();

}  // namespace pmt::preload
