// The trace file: name, creation and header (see output.cpp).
#pragma once
#include <sys/types.h>

#include <cstdint>

namespace pmt::preload {

// Creates this process's trace file; -1 (after one line on stderr) when it cannot. The
// caller writes the header and closes it: no descriptor of ours stays open while the program
// runs (a program listing its descriptors, like CPython's fd_status.py, must see only its own).
int open_trace_output(pid_t pid);
// The path of the file last created (for the exit line).
const char* trace_path();

// What a descriptor refers to. A program may close our descriptors (close_fds before exec,
// daemons closing everything) and reuse the numbers: we check before using one.
struct FileId {
    uint64_t dev = 0, ino = 0;
    bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino && ino != 0; }
};
FileId file_id(int fd);

// Opens the trace file created last again, for appending (one write cycle): the descriptor,
// or -1 with errno set. ESTALE: the path now names another file (replaced, or removed and
// made again); nothing is ever written there. A symlink (ELOOP) or FIFO is never followed or
// waited on.
int reopen_trace_output(const FileId& id);
// Whether the trace's path still names that file (no symlink followed): one lstat, for a
// descriptor kept open across cycles, which must not go on writing to a file removed or
// replaced at the path.
bool trace_path_names(const FileId& id);

// Writes the file header; false (after one line on stderr) on failure.
bool write_header(int fd, pid_t pid, pid_t ppid, bool forked, uint64_t start_wall_ns);

}  // namespace pmt::preload
