// Launching a command under the interposer: finding libpymemtrace.so next to the command and the
// allocator backends' libraries, building LD_PRELOAD and the PYMEMTRACE_* environment, spawning,
// forwarding signals and waiting with resource usage. Shared by `run` and `compare`.
#pragma once
#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pmt::analyzer {

// The allocator the traced program's malloc calls are forwarded to.
enum class Backend { Glibc, Jemalloc, Mimalloc };

const char* backend_name(Backend b);
std::optional<Backend> parse_backend(std::string_view name);
// Debian package that ships the backend's library ("" for glibc, which is always there).
const char* backend_package(Backend b);
// Absolute path of the backend's shared library, "" for glibc. Throws UsageError naming the
// Debian package when the library is not installed.
std::string backend_library(Backend b);

// libpymemtrace.so at <directory of this executable>/../lib, the shape of both the build tree
// and an installed tree. Throws UsageError when it is not there.
std::string preload_library();

struct LaunchSpec {
    std::vector<std::string> argv;  // argv[0] is looked up on PATH like a shell does
    Backend backend = Backend::Glibc;
    std::string output;       // PYMEMTRACE_OUTPUT; "" keeps the environment's / the default
    bool quiet = false;       // PYMEMTRACE_QUIET=1: the interposer's exit line is not printed
    std::string stdout_path;  // the child's stdout goes to this new file; "" inherits ours
    std::string stdin_path;   // the child's stdin comes from this file; "" inherits ours
    // PYMEMTRACE_PYTHON_ALLOCATORS=1: Python's objects traced, not pymalloc's arenas.
    bool python_allocators = false;
};

struct LaunchResult {
    pid_t pid = 0;
    int wait_status = 0;     // as from wait4()
    int exit_code = 0;       // shell convention: the exit status, or 128 + signal
    double wall_s = 0;       // spawn to reaped, monotonic clock
    struct rusage usage {};  // of the child and the descendants it waited for
};

// The value LD_PRELOAD gets: ours first, then the backend's, then what the user had (without
// earlier copies of libpymemtrace.so, which would interpose twice).
std::string compose_ld_preload(const std::string& ours, const std::string& backend_lib,
                               const char* existing);

// Spawns spec.argv with the interposer, forwards SIGINT/SIGTERM/SIGHUP sent to us by another
// process (a terminal's Ctrl-C already reaches the whole foreground group, so it is not sent
// twice), and waits. A command that cannot be found or executed throws CommandNotRunnable.
LaunchResult launch(const LaunchSpec& spec);

struct CommandNotRunnable {
    int exit_code = 127;  // 127 not found, 126 found but not executable (as a shell says)
    std::string message;  // one line, without the "pymemtrace: " prefix
};

// "exited with 3", "killed by SIGKILL".
std::string describe_wait_status(int wait_status);

// The trace a process with this pid writes for the PYMEMTRACE_OUTPUT value `output` ("" means the
// interposer's default, ./pymemtrace-<pid>.pmt; a directory gets pymemtrace-<pid>.pmt inside).
std::string expected_trace_path(const std::string& output, pid_t pid);

}  // namespace pmt::analyzer
