// Life of a trace in the process: start at load (constructor), the final flush and exit line
// (library destructor, _exit), a new trace in a fork child (pthread_atfork), and the
// synchronous flush before exec. Also the settings, say() and fail_tracing().
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <atomic>

#include "output.hpp"
#include "own_heap.hpp"
#include "private_fds.hpp"
#include "pyalloc.hpp"
#include "python_stack.hpp"
#include "recorder.hpp"
#include "runtime.hpp"
#include "sampler.hpp"
#include "side_ring.hpp"
#include "writer.hpp"

namespace pmt::preload {

std::atomic<bool> g_tracing{false};
Settings g_settings;

namespace {

// Per trace (reset in a fork child): started, finished, failed.
bool g_started = false;
std::atomic<bool> g_finished{false};
std::atomic<bool> g_failed{false};
bool g_fork_locked = false;  // the prepare handler took our locks (parent and child see it)
// The forking thread's signal mask while it holds our locks across fork(): all signals are
// blocked, because a handler that allocates would wait for the writer, which waits for them.
sigset_t g_fork_saved_mask;

uint64_t env_ms(const char* name, uint64_t fallback) {
    const char* v = secure_getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    unsigned long long n = strtoull(v, &end, 10);
    return (end && *end == '\0') ? n : fallback;
}

uint64_t wall_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void start_trace(pid_t ppid, bool forked) {
    g_settings.pid = getpid();
    g_settings.start_mono_ns = mono_ns();
    uint64_t wall = wall_ns();
    g_started = false;
    g_finished.store(false);
    g_failed.store(false);
    int fd = open_trace_output(g_settings.pid);
    if (fd < 0) return;
    if (!write_header(fd, g_settings.pid, ppid, forked, wall)) {
        close(fd);
        return;
    }
    // The anchor (private_fds.hpp) is started here, by a program thread, like our other
    // threads: only such a start may set __libc_single_threaded back (own_heap.hpp).
    private_fds_start();
    set_tracing(true);  // before the threads start: the sampler records at once
    if (!writer_start(fd)) {
        set_tracing(false);
        return;
    }
    g_started = true;
    sampler_start();
}

// Ends the trace: End chunk and the exit line. Safe to call twice and from any thread; a
// vfork child (same memory, other pid) must leave the parent's trace alone.
// A thread inside one of our hooks (t_in_hook) that gets here was interrupted by a signal
// whose handler calls _exit: it may hold its own buffer, so flushing would spin forever.
void finish_and_report();
void finish_trace() {
    if (t_in_hook == kGuardInit) t_in_hook = 0;  // not in a hook: the program exits
    if (t_in_hook || !g_started || getpid() != g_settings.pid || g_finished.exchange(true)) return;
    t_in_hook = true;
    finish_and_report();
    t_in_hook = kGuardPass;  // from here on this thread only forwards, to the program's allocator
}

void finish_and_report() {
    sampler_stop();  // first: its last sample is still recorded
    set_tracing(false);
    EndSummary s = writer_finish(!g_failed.load());
    if (g_failed.load() || g_settings.quiet) return;
    if (writer_replay_failed()) {
        say("pymemtrace: trace %s (peak unknown here: run pymemtrace report)", trace_path());
        return;
    }
    say("pymemtrace: peak %.1f MB at %.2f s; trace %s",
        static_cast<double>(s.peak_live_bytes) / 1e6, static_cast<double>(s.peak_time_ns) / 1e9,
        trace_path());
}

// Our heap's lock is taken around every fork (last: code holding the others may allocate).
void fork_prepare() {
    g_fork_locked = g_started && !g_finished.load();
    if (!g_fork_locked) return own_heap_fork_prepare();
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    recorder_fork_prepare();
    own_heap_fork_prepare();
    g_fork_saved_mask = saved;  // only once our locks are ours: another fork may be waiting
}

void fork_parent() {
    own_heap_fork_parent();
    if (!g_fork_locked) return;
    recorder_fork_parent();
    pthread_sigmask(SIG_SETMASK, &g_fork_saved_mask, nullptr);
}

// The child starts its own trace naming the parent; nothing of the parent's buffers is kept.
void fork_child() {
    own_heap_fork_child();
    if (!g_fork_locked) return;
    bool saved = t_in_hook;
    t_in_hook = true;
    pid_t parent = g_settings.pid;
    set_tracing(false);
    g_started = false;
    recorder_fork_child();
    side_fork_child();
    writer_fork_child();
    sampler_fork_child();
    start_trace(parent, true);
    t_in_hook = saved;
    pthread_sigmask(SIG_SETMASK, &g_fork_saved_mask, nullptr);
}

// Which thread paused the writer for exec (only that one resumes it if exec fails).
__thread bool t_exec_paused __attribute__((tls_model("initial-exec"))) = false;

void before_exec() {
    t_exec_paused = false;
    if (t_in_hook == kGuardInit) t_in_hook = 0;
    if (t_in_hook || !g_started || g_finished.load() || g_failed.load() ||
        getpid() != g_settings.pid)
        return;  // not ours to flush (vfork child, or nothing traced)
    HookGuard g;
    writer_pause_for_exec();
    t_exec_paused = true;
}

void after_failed_exec() {
    if (!t_exec_paused) return;
    ErrnoGuard keep;
    HookGuard g;
    writer_resume_after_exec();
    t_exec_paused = false;
}

// Our own code's executable segments: [g_own_text_lo, + g_own_text_size). From our ELF and
// program headers (the linker's __ehdr_start), which ld.so has mapped; no call needed.
extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));
uintptr_t g_own_text_lo = 0, g_own_text_size = 0;

void find_own_text() {
    const auto* base = reinterpret_cast<const char*>(&__ehdr_start);
    // The program headers lie beyond the 64-byte object the linker names: hide its bounds from
    // the compiler (UBSan's object-size check read ph[i] as out of that object).
    asm("" : "+r"(base));
    const auto* ph = reinterpret_cast<const ElfW(Phdr)*>(base + __ehdr_start.e_phoff);
    // Linked into the program itself (tests/sanitize's programs), our text is the program's:
    // every call would count as ours and the loading thread would never leave kGuardInit.
    if (reinterpret_cast<uintptr_t>(ph) == getauxval(AT_PHDR)) return;  // unknown: all foreign
    uintptr_t header_vaddr = UINTPTR_MAX, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < __ehdr_start.e_phnum; ++i) {
        if (ph[i].p_type != PT_LOAD) continue;
        if (ph[i].p_offset == 0) header_vaddr = ph[i].p_vaddr;  // the one mapping the header
        if (!(ph[i].p_flags & PF_X)) continue;
        if (ph[i].p_vaddr < lo) lo = ph[i].p_vaddr;
        if (ph[i].p_vaddr + ph[i].p_memsz > hi) hi = ph[i].p_vaddr + ph[i].p_memsz;
    }
    if (hi <= lo || header_vaddr == UINTPTR_MAX) return;  // unknown: every caller is foreign
    const uintptr_t load = reinterpret_cast<uintptr_t>(base) - header_vaddr;
    g_own_text_lo = load + lo;
    g_own_text_size = hi - lo;
}

void load() {
    resolve_real();
    side_init();
    g_settings.quiet = env_ms("PYMEMTRACE_QUIET", 0) == 1;
    g_settings.rss_interval_ms = env_ms("PYMEMTRACE_RSS_INTERVAL_MS", 10);
    g_settings.flush_interval_ms = env_ms("PYMEMTRACE_FLUSH_INTERVAL_MS", 100);
    if (g_settings.flush_interval_ms == 0 || g_settings.flush_interval_ms > 100)
        g_settings.flush_interval_ms = 100;  // the promise to a killed process: ≤ 100 ms lost
    long page = sysconf(_SC_PAGESIZE);
    g_settings.page_size = page > 0 ? static_cast<size_t>(page) : 4096;
    if (python_init()) pyalloc_init();  // PYMEMTRACE_PYTHON_ALLOCATORS=1, before the header
    recorder_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    find_own_text();
    start_trace(getppid(), false);
}

__attribute__((constructor)) void on_load() {
    {
        HookGuard g;  // nothing we allocate at start is traced
        load();
    }
    // Nor what the initialisers after this one in our .init_array allocate: libstdc++'s, linked
    // into this library (its emergency exception pool mallocs 72,704 bytes; a constructor
    // priority cannot run this one after them). This thread's hook calls go through the
    // nested path's test (no cost on the fast path) until one comes from outside our code.
    if (g_started) t_in_hook = kGuardInit;
}

// _dl_fini runs this after the program's own destructors and atexit handlers (we were
// initialised before the executable), so Python's finalisation is in the trace.
__attribute__((destructor)) void on_unload() { finish_trace(); }

}  // namespace

bool own_init_call(const void* caller) {
    if (reinterpret_cast<uintptr_t>(caller) - g_own_text_lo < g_own_text_size) return true;
    t_in_hook = 0;
    return false;
}

void* untraced_alloc(void* (*fn)(void*, size_t), void* ctx, size_t n) {
    const uint8_t saved = t_in_hook;
    t_in_hook = kGuardOwn;
    void* p = fn(ctx, n);
    t_in_hook = saved;
    return p;
}

void say(const char* fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len =
        static_cast<size_t>(n) < sizeof(line) - 1 ? static_cast<size_t>(n) : sizeof(line) - 2;
    line[len++] = '\n';
    ErrnoGuard keep;
    if (private_fds_active()) {  // one of our threads: fd 2 is not the program's here
        private_fds_say(line, len);
    } else {
        ssize_t r = write(STDERR_FILENO, line, len);
        (void)r;
    }
}

void stop_tracing_silently() {
    set_tracing(false);
    g_failed.store(true);
}

void fail_tracing(const char* what) {
    set_tracing(false);
    if (g_failed.exchange(true)) return;
    say("pymemtrace: %s; tracing stopped, the program continues untraced", what);
}

}  // namespace pmt::preload

// --- exec and _exit --------------------------------------------------------------------

using namespace pmt::preload;

PMT_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
    if (!g_real.execve) resolve_real();
    before_exec();
    int r = g_real.execve(path, argv, envp);
    after_failed_exec();
    return r;
}

PMT_EXPORT int execv(const char* path, char* const argv[]) noexcept {
    if (!g_real.execv) resolve_real();
    before_exec();
    int r = g_real.execv(path, argv);
    after_failed_exec();
    return r;
}

PMT_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
    if (!g_real.execvp) resolve_real();
    before_exec();
    int r = g_real.execvp(file, argv);
    after_failed_exec();
    return r;
}

PMT_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
    if (!g_real.execvpe) resolve_real();
    before_exec();
    int r = g_real.execvpe(file, argv, envp);
    after_failed_exec();
    return r;
}

// os._exit() (how multiprocessing children end) skips destructors: finish the trace here.
PMT_EXPORT void _exit(int status) {
    if (!g_real.exit_now) resolve_real();
    finish_trace();
    g_real.exit_now(status);
    __builtin_unreachable();
}

PMT_EXPORT void _Exit(int status) noexcept {
    if (!g_real.exit_now_c99) resolve_real();
    finish_trace();
    g_real.exit_now_c99(status);
    __builtin_unreachable();
}
