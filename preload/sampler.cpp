// The RSS sampler: a thread of ours that reads /proc/self/statm every rss_interval_ms and
// records an rss event in its own thread buffer, like any other thread's events.
// The file is opened anew by each process (a descriptor for /proc/self/statm keeps reading
// the process that opened it), so a forked child's sampler reads the child.
#include "sampler.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "output.hpp"
#include "recorder.hpp"
#include "writer.hpp"

namespace pmt::preload {

namespace {

pthread_t g_thread;
bool g_running = false;
// 1 = stop. A futex word, so that stopping wakes the thread at once: every traced process
// stops the sampler at exit, and a short-lived one must not wait out an interval.
std::atomic<uint32_t> g_stop{0};
int g_statm_fd = -1;  // this process's /proc/self/statm
FileId g_statm_id;
int g_stat_fd = -1;  // this process's /proc/self/stat (leader state, thread count)
FileId g_stat_id;

// Closes our descriptors only if they still are ours (the program may have reused a number).
void close_statm() {
    if (g_statm_fd >= 0 && file_id(g_statm_fd) == g_statm_id) close(g_statm_fd);
    g_statm_fd = -1;
    if (g_stat_fd >= 0 && file_id(g_stat_fd) == g_stat_id) close(g_stat_fd);
    g_stat_fd = -1;
}

// Whether every thread of the program has gone and only ours keep the process alive: the main
// thread called pthread_exit (the leader is a zombie, state Z) and the thread count is the
// leader plus our threads. glibc calls exit(0) when the last thread of a process ends; our
// threads would stop that from happening, so the sampler must do it (CPython's test_threading
// hangs otherwise).
bool program_threads_gone(int fd) {
    if (fd < 0 || !(file_id(fd) == g_stat_id)) return false;
    char buf[512];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return false;
    buf[n] = '\0';
    char* p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
    if (!p || p[1] != ' ' || p[2] != 'Z') return false;
    p += 2;
    // After ")": state is field 3, num_threads field 20.
    for (int field = 3; field < 20; ++field) {
        p = strchr(p, ' ');
        if (!p) return false;
        ++p;
    }
    long threads = strtol(p, nullptr, 10);
    return threads == 1 + internal_threads_alive();
}

// statm: "size resident shared text lib data dt" in pages.
bool read_rss_bytes(int fd, uint64_t* out) {
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return false;
    buf[n] = '\0';
    char* p = buf;
    strtoull(p, &p, 10);
    uint64_t pages = strtoull(p, nullptr, 10);
    *out = pages * g_settings.page_size;
    return true;
}

void record_rss(uint64_t rss) {
    ThreadState* s = thread_state();
    if (!s) return;
    acquire(s);
    uint64_t t = now_ns();
    emit(s, [&](RecordEncoder& e) { return e.rss(t, rss); });
    s->last_t = t;
    release(s);
}

void* sampler_main(void*) {
    const int fd = g_statm_fd;
    const FileId statm = g_statm_id;
    uint64_t interval_ns = g_settings.rss_interval_ms * 1000000u;
    uint64_t next = mono_ns();
    do {  // at least one sample, even in a process that exits at once
        uint64_t rss = 0;
        // The program may close our descriptor and reuse its number: read only our file.
        if (!(file_id(fd) == statm)) return nullptr;
        if (tracing() && read_rss_bytes(fd, &rss)) record_rss(rss);
        if (program_threads_gone(g_stat_fd)) {
            // exit() runs the program's atexit handlers and our destructor, which finishes the
            // trace (sampler_stop knows not to join this thread).
            t_in_hook = false;
            exit(0);
        }
        next += interval_ns;
        uint64_t now = mono_ns();
        if (next <= now) next = now + interval_ns;  // fell behind: skip, never burst
        while (!g_stop.load() && (now = mono_ns()) < next) {
            timespec ts{static_cast<time_t>((next - now) / 1000000000u),
                        static_cast<long>((next - now) % 1000000000u)};
            syscall(SYS_futex, &g_stop, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0);
        }
    } while (!g_stop.load());
    return nullptr;
}

}  // namespace

// The file is opened here, on the starting thread (constructor or fork child handler),
// not by the sampler: a thread of ours opening a file while the program runs could take the
// lowest free descriptor a program is about to rely on (a daemon reopening 0-2).
void sampler_start() {
    if (g_settings.rss_interval_ms == 0) return;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    g_statm_fd = move_fd_high(fd);
    g_stop.store(0);
    g_statm_id = file_id(g_statm_fd);
    int stat_fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (stat_fd >= 0) {
        g_stat_fd = move_fd_high(stat_fd);
        g_stat_id = file_id(g_stat_fd);
    }
    g_running = spawn_internal_thread(sampler_main, &g_thread);
    if (!g_running) close_statm();
}

void sampler_stop() {
    if (!g_running) return;
    g_stop.store(1);
    syscall(SYS_futex, &g_stop, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    // From the sampler itself only when it ends the process (program_threads_gone).
    if (!pthread_equal(g_thread, pthread_self())) pthread_join(g_thread, nullptr);
    g_running = false;
    close_statm();
}

// The thread did not survive the fork; the inherited descriptor reads the parent.
void sampler_fork_child() {
    g_running = false;
    close_statm();
}

}  // namespace pmt::preload
