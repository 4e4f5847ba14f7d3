// Private descriptor tables for our threads.
//
// Each of our threads (writer, sampler) drops the program's descriptor table for an empty one
// of its own: close_range(0, ~0, CLOSE_RANGE_UNSHARE) does both at once without copying a
// single descriptor; older kernels get unshare(CLONE_FILES) and a close of every entry the new
// table holds (listed from /proc/thread-self/fd: /proc/self/fd would be the main thread's).
// A program listing its descriptors then never sees the trace opened for a write cycle nor
// /proc/self/stat opened for a sample (CPython's test_child_fd_inflation saw one extra 1 run
// in 6), and no pipe end of the program is held open by us.
//
// The program's own table must outlive the program's threads as long as the process lives:
// when main() calls pthread_exit and the last other thread returns, glibc would have called
// exit(0) in that thread; under the interposer our sampler does it instead (the threads of
// ours keep the process alive), and the exit handlers must still find stdout, stderr and
// the pipes of the program. So before the first thread goes private, one more thread of ours,
// the anchor, is started on the program's table. It sleeps on a futex and does two things
// for the private threads: it writes their messages to the program's stderr (the same open
// file, offset and all; reopening /proc/self/fd/2 would not be), and it calls exit when the
// sampler asks. Without an anchor no thread goes private.
#include "private_fds.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "own_heap.hpp"
#include "runtime.hpp"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

namespace pmt::preload {

namespace {

__thread bool t_private __attribute__((tls_model("initial-exec"))) = false;

// The anchor of the process named in the upper bits: (pid << 2) | state. One word, so that a
// fork child, which inherits the parent's value, can never mistake it for its own.
enum : uint64_t { kStarting = 1, kRunning = 2, kFailed = 3 };
std::atomic<uint64_t> g_anchor{0};
// Bumped each time g_anchor leaves kStarting: the futex word our other threads sleep on
// meanwhile (a spin would burn a core for as long as pthread_create is stuck, for ever in a
// process that deadlocked there).
std::atomic<uint32_t> g_anchor_settled{0};
uint64_t anchor_word(pid_t pid, uint64_t state) {
    return (static_cast<uint64_t>(pid) << 2) | state;
}

// Requests to the anchor. g_seq is its futex word: bumped for each request.
std::atomic<uint32_t> g_seq{0};
std::atomic<int> g_exit_status{-1};      // >= 0: call exit with it
std::atomic<bool> g_anchor_gone{false};  // exiting: messages are dropped from now on
// One message at a time: g_msg_lock serialises the senders, g_msg_state is the hand-over
// (1 = posted, 0 = written or dropped; a futex word the sender waits on).
std::atomic<uint32_t> g_msg_lock{0};
std::atomic<uint32_t> g_msg_state{0};
char g_msg[1024];
size_t g_msg_len = 0;

long futex(std::atomic<uint32_t>* word, int op, uint32_t val, const timespec* ts) {
    return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, val, ts, nullptr, 0);
}

void write_message() {
    const char* p = g_msg;
    size_t n = g_msg_len;
    while (n > 0) {
        ssize_t r = write(STDERR_FILENO, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        p += r;
        n -= static_cast<size_t>(r);
    }
}

void answer_message() {
    if (g_msg_state.load(std::memory_order_acquire) != 1) return;
    write_message();
    g_msg_state.store(0, std::memory_order_release);
    futex(&g_msg_state, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr);
}

void* anchor_main(void*) {
    t_in_hook = true;  // never traced, like every thread of ours
    for (;;) {
        uint32_t seq = g_seq.load(std::memory_order_acquire);
        answer_message();
        int status = g_exit_status.load();
        if (status >= 0) {
            g_anchor_gone.store(true);
            answer_message();  // one posted meanwhile: written, then senders stop waiting
            g_msg_state.store(0);
            futex(&g_msg_state, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr);
            // exit() runs the program's exit handlers and our destructor, which finishes
            // the trace (it joins the writer and the sampler, never this thread).
            t_in_hook = false;
            exit(status);
        }
        futex(&g_seq, FUTEX_WAIT_PRIVATE, seq, nullptr);
    }
}

void request() {
    g_seq.fetch_add(1, std::memory_order_release);
    futex(&g_seq, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

// Starts this process's anchor once (the first of our threads to get here does it; a fork
// child starts its own). True when it runs.
bool anchor_running() {
    pid_t me = getpid();
    uint64_t seen = g_anchor.load();
    while (static_cast<pid_t>(seen >> 2) != me) {
        if (!g_anchor.compare_exchange_weak(seen, anchor_word(me, kStarting))) continue;
        // Ours to start. Nothing of a parent's requests carries over into a fork child.
        g_exit_status.store(-1);
        g_anchor_gone.store(false);
        g_msg_lock.store(0);
        g_msg_state.store(0);
        pthread_t th;
        bool ok = start_thread_of_ours(&th, anchor_main, nullptr) == 0;
        if (ok) pthread_detach(th);
        g_anchor.store(anchor_word(me, ok ? kRunning : kFailed));
        g_anchor_settled.fetch_add(1);
        futex(&g_anchor_settled, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr);
        return ok;
    }
    // Another thread of ours is starting it: sleep until it is done. The timeout only guards
    // against a wake-up lost to a fork at the wrong moment (20 wake-ups a second at most).
    const timespec slice{0, 50 * 1000000};
    for (;;) {
        uint32_t settled = g_anchor_settled.load();
        seen = g_anchor.load();
        if ((seen & 3) != kStarting || static_cast<pid_t>(seen >> 2) != me) break;
        futex(&g_anchor_settled, FUTEX_WAIT_PRIVATE, settled, &slice);
    }
    return static_cast<pid_t>(seen >> 2) == me && (seen & 3) == kRunning;
}

// Older kernels: the table was copied; close whatever the copy holds.
void close_every_descriptor() {
    int dir = open("/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        rlimit rl{};
        rlim_t top = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        if (top == RLIM_INFINITY || top > (1u << 20)) top = 1u << 20;
        for (rlim_t fd = 0; fd < top; ++fd) close(static_cast<int>(fd));
        return;
    }
    alignas(8) char buf[4096];
    for (bool again = true; again;) {  // closing while listing: list again until clean
        again = false;
        lseek(dir, 0, SEEK_SET);
        long n;
        while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
            for (long off = 0; off < n;) {
                auto* d = reinterpret_cast<dirent64*>(buf + off);
                off += d->d_reclen;
                if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
                int fd = atoi(d->d_name);
                if (fd == dir) continue;
                close(fd);
                again = true;
            }
        }
    }
    close(dir);
}

bool make_private() {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 0u, ~0u, CLOSE_RANGE_UNSHARE) == 0) return true;
#endif
    if (unshare(CLONE_FILES) != 0) return false;
    close_every_descriptor();
    return true;
}

}  // namespace

void private_fds_start() { anchor_running(); }

void private_fds_enter() {
    if (!anchor_running()) return;
    t_private = make_private();
}

bool private_fds_active() { return t_private; }

void private_fds_say(const char* line, size_t len) {
    // A sender waits (futex, no spinning) while another one's message is being written.
    const timespec wait{0, 50 * 1000000};
    uint32_t unlocked = 0;
    while (!g_msg_lock.compare_exchange_weak(unlocked, 1)) {
        if (unlocked != 0) futex(&g_msg_lock, FUTEX_WAIT_PRIVATE, unlocked, &wait);
        unlocked = 0;
    }
    if (!g_anchor_gone.load()) {
        g_msg_len = len < sizeof(g_msg) ? len : sizeof(g_msg);
        memcpy(g_msg, line, g_msg_len);
        g_msg_state.store(1, std::memory_order_release);
        request();
        // The anchor may be in exit(), waiting for this very thread: look again now and then.
        const timespec slice{0, 100 * 1000000};
        while (g_msg_state.load(std::memory_order_acquire) == 1 && !g_anchor_gone.load())
            futex(&g_msg_state, FUTEX_WAIT_PRIVATE, 1, &slice);
        g_msg_state.store(0);
    }
    g_msg_lock.store(0);
    futex(&g_msg_lock, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

bool private_fds_exit(int status) {
    if (!t_private) return false;
    int none = -1;
    if (g_exit_status.compare_exchange_strong(none, status)) request();
    return true;
}

int private_fds_threads() {
    uint64_t a = g_anchor.load();
    return static_cast<pid_t>(a >> 2) == getpid() && (a & 3) == kRunning ? 1 : 0;
}

}  // namespace pmt::preload
