// Our threads run on a descriptor table of their own (issue 7): whatever they open (the trace
// for a write cycle, /proc/self/stat for a sample) is invisible to the program, and they hold
// no reference to the program's descriptors (a pipe end kept open by us would delay the EOF
// the program waits for). See private_fds.cpp.
#pragma once
#include <cstddef>

namespace pmt::preload {

// Starts the anchor (once per process) from a program thread, before our other threads.
void private_fds_start();
// Called first by each of our threads (spawn_internal_thread's trampoline), with every signal
// blocked. Gives the thread an empty table of its own; when the kernel refuses (seccomp, a
// kernel without close_range or unshare), the thread shares the program's table as before.
void private_fds_enter();
// Whether the calling thread runs on a table of its own.
bool private_fds_active();
// One line for the program's stderr from a thread with a table of its own: written by the
// anchor thread, which shares the program's table (dropped if the anchor is gone).
void private_fds_say(const char* line, size_t len);
// Asks the anchor to call exit(status) (the sampler, when only our threads are left: the
// exit handlers must run with the program's descriptors). Returns at once; false when the
// calling thread shares the program's table and must call exit itself.
bool private_fds_exit(int status);
// Threads private_fds started in this process (the anchor): 0 or 1.
int private_fds_threads();

}  // namespace pmt::preload
