// `pymemtrace run` and the launcher it shares with `compare` (run.hpp): where the libraries are,
// the environment the child gets, posix_spawnp, signal forwarding and wait4. The interposer
// itself does the tracing; this file only starts the program the way a shell would.
#include "run.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands.hpp"

extern char** environ;

namespace pmt::analyzer {
namespace fs = std::filesystem;

namespace {

#if defined(__x86_64__)
constexpr const char* kMultiarch = "/usr/lib/x86_64-linux-gnu/";
#elif defined(__aarch64__)
constexpr const char* kMultiarch = "/usr/lib/aarch64-linux-gnu/";
#else
constexpr const char* kMultiarch = "/usr/lib/";
#endif

const char* backend_soname(Backend b) {
    switch (b) {
        case Backend::Jemalloc:
            return "libjemalloc.so.2";
        case Backend::Mimalloc:
            return "libmimalloc.so.2";
        case Backend::Glibc:
            break;
    }
    return "";
}

// A library we can hand to ld.so: a readable, non-empty regular file (root passes access()
// for anything, so the file type is checked too).
bool readable(const std::string& p) {
    struct stat st {};
    return !p.empty() && stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
           access(p.c_str(), R_OK) == 0;
}

// The child is looked up by pid from a signal handler: a plain sig_atomic-sized global.
volatile sig_atomic_t g_child_pid = 0;

void forward_signal(int sig, siginfo_t* info, void*) {
    // A terminal's Ctrl-C / hang-up is sent by the kernel to the whole foreground process group,
    // child included (si_code SI_KERNEL): sending it again would interrupt the child's handler.
    if (info != nullptr && info->si_code == SI_KERNEL) return;
    const pid_t child = g_child_pid;
    if (child > 0) kill(child, sig);
}

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

// Installs forward_signal for the signals we were not told to ignore (an ignored signal stays
// ignored in the child, as with nohup); restores the previous actions when destroyed.
class SignalForwarding {
public:
    SignalForwarding() {
        for (size_t i = 0; i < std::size(kForwarded); ++i) {
            sigaction(kForwarded[i], nullptr, &old_[i]);
            if (old_[i].sa_handler == SIG_IGN) continue;
            struct sigaction sa {};
            sa.sa_sigaction = forward_signal;
            sa.sa_flags = SA_SIGINFO | SA_RESTART;
            sigemptyset(&sa.sa_mask);
            sigaction(kForwarded[i], &sa, nullptr);
            installed_[i] = true;
        }
    }
    // The signals that now have our handler: the child must start with their default action.
    sigset_t handled() const {
        sigset_t set;
        sigemptyset(&set);
        for (size_t i = 0; i < std::size(kForwarded); ++i)
            if (installed_[i]) sigaddset(&set, kForwarded[i]);
        return set;
    }
    ~SignalForwarding() {
        g_child_pid = 0;
        for (size_t i = 0; i < std::size(kForwarded); ++i)
            if (installed_[i]) sigaction(kForwarded[i], &old_[i], nullptr);
    }
    SignalForwarding(const SignalForwarding&) = delete;
    SignalForwarding& operator=(const SignalForwarding&) = delete;

private:
    struct sigaction old_[std::size(kForwarded)]{};
    bool installed_[std::size(kForwarded)] = {};
};

std::vector<std::string> child_environment(const LaunchSpec& spec, const std::string& preload) {
    std::vector<std::string> env;
    const char* existing_preload = getenv("LD_PRELOAD");
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view kv(*e);
        const auto name = kv.substr(0, kv.find('='));
        if (name == "LD_PRELOAD") continue;
        if (!spec.output.empty() && name == "PYMEMTRACE_OUTPUT") continue;
        if (spec.quiet && name == "PYMEMTRACE_QUIET") continue;
        if (spec.python_allocators && name == "PYMEMTRACE_PYTHON_ALLOCATORS") continue;
        env.emplace_back(kv);
    }
    const std::string backend_lib = backend_library(spec.backend);
    env.push_back("LD_PRELOAD=" + compose_ld_preload(preload, backend_lib, existing_preload));
    if (!spec.output.empty()) env.push_back("PYMEMTRACE_OUTPUT=" + spec.output);
    if (spec.quiet) env.emplace_back("PYMEMTRACE_QUIET=1");
    if (spec.python_allocators) env.emplace_back("PYMEMTRACE_PYTHON_ALLOCATORS=1");
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// posix_spawn's attributes and file actions, released on every path.
struct SpawnSetup {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    SpawnSetup() {
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_init(&actions);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
};

}  // namespace

const char* backend_name(Backend b) {
    switch (b) {
        case Backend::Glibc:
            return "glibc";
        case Backend::Jemalloc:
            return "jemalloc";
        case Backend::Mimalloc:
            return "mimalloc";
    }
    return "?";
}

std::optional<Backend> parse_backend(std::string_view name) {
    for (Backend b : {Backend::Glibc, Backend::Jemalloc, Backend::Mimalloc})
        if (name == backend_name(b)) return b;
    return std::nullopt;
}

const char* backend_package(Backend b) {
    switch (b) {
        case Backend::Jemalloc:
            return "libjemalloc2";
        case Backend::Mimalloc:
            return "libmimalloc2.0";
        case Backend::Glibc:
            break;
    }
    return "";
}

std::string backend_library(Backend b) {
    if (b == Backend::Glibc) return "";
    const std::string soname = backend_soname(b);
    for (const char* dir : {kMultiarch, "/usr/lib64/", "/usr/lib/", "/usr/local/lib/"}) {
        const std::string p = dir + soname;
        if (readable(p)) return p;
    }
    throw UsageError(std::string(backend_name(b)) + " is not installed: " + soname +
                     " not found in " + kMultiarch + " (install the Debian package " +
                     backend_package(b) + ")");
}

std::string preload_library() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec)
        throw UsageError("cannot locate the pymemtrace command (/proc/self/exe): " + ec.message());
    const fs::path lib = exe.parent_path().parent_path() / "lib" / "libpymemtrace.so";
    if (!readable(lib.string()))
        throw UsageError(
            "libpymemtrace.so not found at " + lib.lexically_normal().string() +
            " (it belongs in ../lib next to the pymemtrace command; build or install it)");
    return lib.lexically_normal().string();
}

std::string compose_ld_preload(const std::string& ours, const std::string& backend_lib,
                               const char* existing) {
    std::string out = ours;
    if (!backend_lib.empty()) out += ":" + backend_lib;
    // ld.so accepts both separators; keep the user's libraries in their order.
    std::string item;
    std::istringstream in(existing != nullptr ? existing : "");
    std::string token;
    while (in >> token) {
        std::istringstream parts(token);
        while (std::getline(parts, item, ':')) {
            if (item.empty()) continue;
            const std::string base = fs::path(item).filename().string();
            if (base.rfind("libpymemtrace.so", 0) == 0) continue;
            if (item == backend_lib) continue;
            out += ":" + item;
        }
    }
    return out;
}

LaunchResult launch(const LaunchSpec& spec) {
    if (spec.argv.empty()) throw UsageError("no command given");
    const std::string preload = preload_library();
    std::vector<std::string> env = child_environment(spec, preload);
    std::vector<std::string> args = spec.argv;
    std::vector<char*> envp = c_strings(env);
    std::vector<char*> argv = c_strings(args);

    SpawnSetup setup;
    int out_fd = -1;
    if (!spec.stdout_path.empty()) {
        out_fd = open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0)
            throw UsageError("cannot create " + spec.stdout_path + ": " + std::strerror(errno));
        posix_spawn_file_actions_adddup2(&setup.actions, out_fd, STDOUT_FILENO);
    }
    if (!spec.stdin_path.empty())
        posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, spec.stdin_path.c_str(),
                                         O_RDONLY, 0);

    // Block the forwarded signals until the child's pid is known, so none is lost or sent to pid
    // 0; the child starts with our original mask and default actions.
    sigset_t forwarded, old_mask;
    sigemptyset(&forwarded);
    for (int s : kForwarded) sigaddset(&forwarded, s);
    sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
    SignalForwarding forwarding;
    const sigset_t handled = forwarding.handled();
    posix_spawnattr_setsigmask(&setup.attr, &old_mask);
    posix_spawnattr_setsigdefault(&setup.attr, &handled);
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    LaunchResult r;
    const auto t0 = std::chrono::steady_clock::now();
    const int rc =
        posix_spawnp(&r.pid, argv[0], &setup.actions, &setup.attr, argv.data(), envp.data());
    if (out_fd >= 0) close(out_fd);
    if (rc != 0) {
        sigprocmask(SIG_SETMASK, &old_mask, nullptr);
        const std::string& cmd = spec.argv[0];
        if (rc == ENOENT)
            throw CommandNotRunnable{
                127, cmd + (cmd.find('/') == std::string::npos ? ": command not found"
                                                               : ": no such file")};
        throw CommandNotRunnable{126, cmd + ": cannot execute: " + std::strerror(rc)};
    }
    g_child_pid = r.pid;
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);

    while (wait4(r.pid, &r.wait_status, 0, &r.usage) < 0) {
        if (errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
    }
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.exit_code =
        WIFSIGNALED(r.wait_status) ? 128 + WTERMSIG(r.wait_status) : WEXITSTATUS(r.wait_status);
    return r;
}

std::string describe_wait_status(int wait_status) {
    if (WIFSIGNALED(wait_status)) {
        const int sig = WTERMSIG(wait_status);
        const char* abbrev = sigabbrev_np(sig);
        return std::string("killed by ") +
               (abbrev ? std::string("SIG") + abbrev : std::to_string(sig));
    }
    return "exited with " + std::to_string(WEXITSTATUS(wait_status));
}

std::string expected_trace_path(const std::string& output, pid_t pid) {
    const std::string name = "pymemtrace-" + std::to_string(pid) + ".pmt";
    if (output.empty()) return name;
    std::error_code ec;
    if (output.back() == '/' || fs::is_directory(output, ec))
        return (fs::path(output) / name).string();
    return output;
}

void add_run_command(CLI::App& app) {
    struct Options {
        std::string output;
        std::string allocator = "glibc";
        bool quiet = false;
        bool python_allocators = false;
        std::vector<std::string> command;
    };
    auto opt = std::make_shared<Options>();
    CLI::App* sub = app.add_subcommand(
        "run",
        "Run a command under the interposer; it writes pymemtrace-<pid>.pmt (or -o PATH).\n"
        "The command's exit status is passed through (128+N when killed by signal N).");
    sub->add_option("-o,--output", opt->output,
                    "trace file, or a directory for pymemtrace-<pid>.pmt (sets PYMEMTRACE_OUTPUT)");
    sub->add_option("--allocator", opt->allocator, "allocator the program's calls go to")
        ->check(CLI::IsMember({"glibc", "jemalloc", "mimalloc"}));
    sub->add_flag("-q,--quiet", opt->quiet, "say nothing (PYMEMTRACE_QUIET=1 for the program too)");
    sub->add_flag("--python-allocators", opt->python_allocators,
                  "trace Python's allocator domains: every object at its line, pymalloc's arenas "
                  "not (sets PYMEMTRACE_PYTHON_ALLOCATORS=1; slower)");
    sub->add_option("command", opt->command, "the command and its arguments (after --)")
        ->required();
    // Everything from the command's name on belongs to the command, options included.
    sub->positionals_at_end();
    sub->callback([opt] {
        LaunchSpec spec;
        spec.argv = opt->command;
        spec.backend = *parse_backend(opt->allocator);
        spec.output = opt->output;
        spec.quiet = opt->quiet;
        spec.python_allocators = opt->python_allocators;
        // "-o traces/" asks for a directory: make it, or the interposer would take the name for
        // a file it cannot create and run the program untraced.
        if (!opt->output.empty() && opt->output.back() == '/') {
            std::error_code ec;
            fs::create_directories(opt->output, ec);
            if (ec)
                throw UsageError("cannot create the directory " + opt->output + ": " +
                                 ec.message());
            while (spec.output.size() > 1 && spec.output.back() == '/') spec.output.pop_back();
        }
        LaunchResult r;
        try {
            r = launch(spec);
        } catch (const CommandNotRunnable& e) {
            std::cerr << "pymemtrace: " << e.message << '\n';
            throw ExitStatus{e.exit_code};
        }
        // A clean exit already printed the interposer's own line (peak, time, trace path). A
        // process killed by a signal could not: name its trace here, it is readable up to its
        // last flushed chunk.
        if (!opt->quiet && WIFSIGNALED(r.wait_status)) {
            const char* env_out = getenv("PYMEMTRACE_OUTPUT");
            const std::string out = !opt->output.empty() ? opt->output : env_out ? env_out : "";
            const std::string trace = expected_trace_path(out, r.pid);
            std::cerr << "pymemtrace: " << spec.argv[0] << " "
                      << describe_wait_status(r.wait_status);
            if (access(trace.c_str(), F_OK) == 0)
                std::cerr << "; its trace (complete up to the last flush): " << trace;
            std::cerr << '\n';
        }
        if (r.exit_code != 0) throw ExitStatus{r.exit_code};
    });
}

}  // namespace pmt::analyzer
