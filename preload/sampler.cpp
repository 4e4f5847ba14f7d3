// The sampler: a thread of ours that, every tick, reads the process's RSS from /proc/self/statm
// (an rss record, FORMAT.md, every rss_interval_ms; none when it is 0) and, at least every
// 100 ms, checks whether only our threads are left (then it ends the process, as glibc would
// have): statm shows no memory once the main thread has exited, and only then is
// /proc/self/stat read for the thread count. It runs whatever the settings: the last-thread
// check is not optional.
#include "sampler.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "private_fds.hpp"
#include "recorder.hpp"
#include "writer.hpp"

namespace pmt::preload {

namespace {

pthread_t g_thread;
bool g_running = false;
// 1 = stop. A futex word, so that stopping wakes the thread at once: every traced process
// stops the sampler at exit, and a short-lived one must not wait out an interval.
std::atomic<uint32_t> g_stop{0};
// The last-thread check runs at least this often, even with RSS sampling off or slow.
constexpr uint64_t kCheckIntervalNs = 100 * 1000000ull;

struct ProcStat {
    char leader_state = 0;  // 'Z': the main thread has exited (pthread_exit)
    long threads = 0;
};

// A /proc file the sampler reads again and again. With a descriptor table of our own
// (private_fds.hpp) the descriptor stays open and each read is one pread: no descriptor of
// ours is ever seen by the program there, and a fork child's sampler, a new thread, opens its
// own. Sharing the program's table, it is opened, read and closed each time, so that none
// stays open for the program to see (CPython's fd_status.py lists every one); for those
// microseconds our descriptor holds the lowest free number. Cost on this VM per sample of a
// thread woken every 10 ms (cold caches): the wake-up alone ~30 us, open/read/close of stat or
// statm +50 us, a pread of the kept statm +10-20 us.
struct ProcFile {
    const char* path;
    int fd = -1;

    // Reads the whole file (it is small) into buf, NUL-terminated; the length, or -1.
    ssize_t read_into(char* buf, size_t size) {
        if (fd >= 0) {
            ssize_t n = pread(fd, buf, size - 1, 0);
            if (n > 0) {
                buf[n] = '\0';
                return n;
            }
            close(fd);
            fd = -1;
        }
        int f = open(path, O_RDONLY | O_CLOEXEC);
        if (f < 0) return -1;
        ssize_t n = read(f, buf, size - 1);
        if (n > 0 && private_fds_active())
            fd = f;
        else
            close(f);
        if (n <= 0) return -1;
        buf[n] = '\0';
        return n;
    }
    void close_kept() {
        if (fd >= 0) close(fd);
        fd = -1;
    }
};

bool read_proc_stat(ProcFile& file, ProcStat* out) {
    char buf[1024];
    if (file.read_into(buf, sizeof(buf)) < 0) return false;
    char* p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
    if (!p || p[1] != ' ') return false;
    p += 2;
    out->leader_state = *p;
    // p is at field 3 (state); num_threads is field 20.
    for (int field = 3; field < 20; ++field) {
        p = strchr(p, ' ');
        if (!p) return false;
        ++p;
    }
    out->threads = strtol(p, nullptr, 10);
    return true;
}

// The resident pages (statm's second field: the same count as stat's rss, without summing
// every thread's times and formatting 52 fields). 0 when unknown, and when the main thread has
// exited (pthread_exit): the leader's statm then shows no memory, as its stat did.
uint64_t read_rss_pages(ProcFile& file) {
    char buf[256];
    if (file.read_into(buf, sizeof(buf)) < 0) return 0;
    const char* p = strchr(buf, ' ');
    return p ? strtoull(p + 1, nullptr, 10) : 0;
}

// Whether every thread of the program has gone and only ours keep the process alive: the main
// thread called pthread_exit (the leader is a zombie, state Z) and the thread count is the
// leader plus our threads. glibc calls exit(0) when the last thread of a process ends; our
// threads would stop that from happening, so the sampler must do it (CPython's test_threading
// hangs otherwise).
bool program_threads_gone(const ProcStat& st) {
    return st.leader_state == 'Z' &&
           st.threads == 1 + internal_threads_alive() + private_fds_threads();
}

void record_rss(uint64_t rss) {
    ThreadState* s = thread_state();
    if (!s) return;
    acquire(s);
    uint64_t t = now_ns();
    emit(s, [&](RecordWriter& e) { return e.rss(t, rss); });
    release(s);
}

void* sampler_main(void*) {
    const uint64_t rss_ns = g_settings.rss_interval_ms * 1000000u;
    const uint64_t tick_ns = rss_ns != 0 && rss_ns < kCheckIntervalNs ? rss_ns : kCheckIntervalNs;
    ProcFile statm{"/proc/self/statm"};
    ProcFile stat{"/proc/self/stat"};
    uint64_t next = mono_ns();
    uint64_t next_rss = next;
    uint64_t next_check = next;
    // Frees may reuse a clock reading within one tick (recorder.hpp, fast_free_time) only while
    // the ticks are at most kFreeTickMaxMs apart.
    const bool free_ticks = rss_ns != 0 && rss_ns <= kFreeTickMaxMs * 1000000u;
    do {  // at least one sample, even in a process that exits at once
        if (free_ticks) {
            const uint32_t tick = g_slow.tick.load(std::memory_order_relaxed) + 1;
            g_slow.tick.store(tick != 0 ? tick : 1, std::memory_order_relaxed);
        }
        uint64_t now = mono_ns();
        uint64_t pages = UINT64_MAX;  // not read this tick
        if (rss_ns != 0 && now >= next_rss) {
            pages = read_rss_pages(statm);
            if (pages != 0 && tracing()) record_rss(pages * g_settings.page_size);
            next_rss += rss_ns;
            if (next_rss <= now) next_rss = now + rss_ns;
        }
        if (now >= next_check) {
            next_check = now + kCheckIntervalNs - tick_ns / 2;  // due again at the tick nearest
            // While the main thread lives its statm shows memory, and the program's threads
            // cannot all be gone: stat (its state and thread count) is read only once statm
            // shows none (or could not be read).
            if (pages == UINT64_MAX) pages = read_rss_pages(statm);
            ProcStat st;
            if (pages == 0 && read_proc_stat(stat, &st) && program_threads_gone(st)) {
                // exit() runs the program's atexit handlers and our destructor, which
                // finishes the trace (sampler_stop knows not to join this thread). With a
                // descriptor table of our own, the anchor does it on the program's.
                if (!private_fds_exit(0)) {
                    t_in_hook = false;
                    exit(0);
                }
            }
        }
        next += tick_ns;
        now = mono_ns();
        if (next <= now) next = now + tick_ns;  // fell behind: skip, never burst
        while (!g_stop.load() && (now = mono_ns()) < next) {
            timespec ts{static_cast<time_t>((next - now) / 1000000000u),
                        static_cast<long>((next - now) % 1000000000u)};
            syscall(SYS_futex, &g_stop, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0);
        }
    } while (!g_stop.load());
    statm.close_kept();
    stat.close_kept();
    return nullptr;
}

}  // namespace

void sampler_start() {
    g_stop.store(0);
    g_running = spawn_internal_thread(sampler_main, &g_thread);
}

void sampler_stop() {
    if (!g_running) return;
    g_stop.store(1);
    syscall(SYS_futex, &g_stop, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    // From the sampler itself only when it ends the process (program_threads_gone).
    if (!pthread_equal(g_thread, pthread_self())) pthread_join(g_thread, nullptr);
    // Frees read the clock again (fast_free_time); here for every way the sampler stops,
    // also when it ends the process itself and its loop never returns.
    g_slow.tick.store(0, std::memory_order_relaxed);
    g_running = false;
}

// The thread did not survive the fork; the child starts its own.
void sampler_fork_child() {
    g_running = false;
    g_slow.tick.store(0, std::memory_order_relaxed);
}

}  // namespace pmt::preload
