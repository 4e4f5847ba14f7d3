// The trace file: name, creation and header (see output.cpp).
#pragma once
#include <sys/types.h>

#include <cstdint>

namespace pmt::preload {

// Creates this process's trace file; -1 (after one line on stderr) when it cannot.
int open_trace_output(pid_t pid);
// The path of the file last created (for the exit line).
const char* trace_path();
// Moves a descriptor of ours above the range programs use (returns the new one).
int move_fd_high(int fd);

// What a descriptor refers to. A program may close our descriptors (close_fds before exec,
// daemons closing everything) and reuse the numbers: we check before using one.
struct FileId {
    uint64_t dev = 0, ino = 0;
    bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino && ino != 0; }
};
FileId file_id(int fd);

// Writes the file header; false (after one line on stderr) on failure.
bool write_header(int fd, pid_t pid, pid_t ppid, bool forked, uint64_t start_wall_ns);

}  // namespace pmt::preload
