// The trace file: name, creation and header (see output.cpp).
#pragma once
#include <sys/types.h>

#include <cstdint>

namespace pmt::preload {

// Creates this process's trace file; -1 (after one line on stderr) when it cannot.
int open_trace_output(pid_t pid);
// The path of the file last created (for the exit line).
const char* trace_path();
// Writes the file header; false (after one line on stderr) on failure.
bool write_header(int fd, pid_t pid, pid_t ppid, bool forked, uint64_t start_wall_ns);

}  // namespace pmt::preload
