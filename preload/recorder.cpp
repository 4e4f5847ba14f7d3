// Per-thread state: creation on a thread's first event, the buffer pool, hand-off of full
// buffers, collection by the writer thread, thread exit and the fork child's reset.
// Runs on allocating threads only in the cold paths (first event, full buffer).
#include "recorder.hpp"

#include <cpuid.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>

#include "futex_lock.hpp"
#include "own_heap.hpp"
#include "populate.hpp"
#include "side_ring.hpp"
#include "writer.hpp"

namespace pmt::preload {

__thread ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;
__thread bool t_internal_thread __attribute__((tls_model("initial-exec"))) = false;
std::atomic<uint32_t> g_throttle{0};
std::atomic<bool> g_light_acquire{false};
std::atomic<bool> g_event_rdtsc{false};
TraceClock g_clock;
SlowWord g_slow{{kSlowHeavy | kSlowClock | kSlowOrdered | kSlowOff}, {0}};

namespace {
// Sets (on) or clears one bit of g_slow, after the flag it mirrors has been stored.
void slow_bit(uint32_t bit, bool on) {
    if (on) {
        if ((g_slow.bits.load(std::memory_order_relaxed) & bit) != bit) g_slow.bits.fetch_or(bit);
    } else if (g_slow.bits.load(std::memory_order_relaxed) & bit) {
        g_slow.bits.fetch_and(~bit);
    }
}
// The two flags whose every store goes with its g_slow bit.
void set_event_rdtsc(bool on) {
    g_event_rdtsc.store(on);
    slow_bit(kSlowOrdered, !on);
}
void set_light_acquire(bool on) {
    g_light_acquire.store(on);
    slow_bit(kSlowHeavy, !on);
}

}  // namespace

void set_tracing(bool on) {
    g_tracing.store(on);
    slow_bit(kSlowOff, !on);
}

namespace {
FutexLock g_registry_mutex;  // guards g_threads (registration, collection, fork)
ThreadState* g_threads = nullptr;
FutexLock g_pool_mutex;  // guards g_pool
Buffer* g_pool = nullptr;
size_t g_pool_count = 0;
constexpr size_t kPoolKeep = 64;
pthread_key_t g_exit_key;
// Bytes in full buffers handed off and not yet collected. Past kWakeBytes the writer is woken
// early, so a thread that allocates very fast does not pile up a whole flush interval of buffers.
// Past kThrottleBytes the writer is behind: recording threads wait (throttle_wait) until it has
// finished its cycle, so memory stays bounded; no event is ever dropped. A malloc+free pair
// takes 48 bytes (thread_records.hpp): a wake every ~22 K pairs. Each cycle has a fixed cost
// (the futex wake, membarrier's interrupts, the hand-over), which a wake every 128 KiB made
// visible (regex CPU, medians of 11 alternating runs: 512 KiB 0.96-0.98 of 128 KiB). On a
// 2-vCPU KVM guest one membarrier call takes ~55 us, and a recording thread that finds the
// writer collecting waits that long (regex: 244 such waits, 17.7 ms): 1 MiB instead of 512 KiB
// (with buffers populated in one call, buffer_get) took CPU to 0.957 of it on regex, 0.935
// json_roundtrip --python-allocators, 0.978 richards, 0.972 pickle (ones), RSS +0.5-1.7 MB.
std::atomic<size_t> g_pending_bytes{0};
// Program threads (not ours) that have made a state since the process (or fork child) began.
std::atomic<uint32_t> g_program_threads{0};
constexpr size_t kWakeBytes = 1024u << 10;
constexpr size_t kThrottleBytes = 4096u << 10;

// --- The trace clock (runtime.hpp) ---

#if defined(__x86_64__)
// PYMEMTRACE_CLOCK=report: one line on stderr says which clock the trace uses and why.
bool g_clock_report = false;
char g_clocksource[40] = "?";

// Clocksources whose CLOCK_MONOTONIC the vDSO computes from the reading CPU's TSC: the TSC
// itself, and the paravirtual clocks that scale it (kvm-clock's pvclock, Xen's, Hyper-V's TSC
// page). With any other (hpet, acpi_pm) the kernel keeps the TSC out for a reason a one-time
// check could not see (it drifts, or stops), so the trace keeps CLOCK_MONOTONIC.
bool tsc_clocksource(const char* name) {
    static const char* const kNames[] = {"tsc", "kvm-clock", "xen", "hyperv_clocksource_tsc_page"};
    for (const char* n : kNames)
        if (strcmp(name, n) == 0) return true;
    return false;
}

// Whether the TSC may stand in for CLOCK_MONOTONIC: invariant (CPUID: constant rate, runs in
// deep C-states) and read by the kernel's clocksource. A candidate only: the writer switches
// after clock_check_cpus has found every CPU's TSC in step with CLOCK_MONOTONIC.
// PYMEMTRACE_CLOCK=monotonic keeps CLOCK_MONOTONIC.
bool tsc_usable() {
    const char* force = secure_getenv("PYMEMTRACE_CLOCK");  // not honoured when setuid
    if (force && strcmp(force, "monotonic") == 0) return false;
    g_clock_report = force && strcmp(force, "report") == 0;
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, g_clocksource, sizeof g_clocksource - 1);
        close(fd);
        g_clocksource[n > 0 ? n : 0] = 0;
        if (char* nl = strchr(g_clocksource, '\n')) *nl = 0;
    }
    unsigned a, b, c, d;
    bool invariant = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
    bool ok = invariant && fd >= 0 && tsc_clocksource(g_clocksource);
    if (!ok && g_clock_report)
        say("pymemtrace: trace clock: CLOCK_MONOTONIC (clocksource %s%s)", g_clocksource,
            invariant ? "" : ", no invariant TSC");
    return ok;
}

// A (TSC, CLOCK_MONOTONIC) pair: the TSC halfway between two ordered readings around the
// clock_gettime call; width is their distance in ticks, the pair's uncertainty. Best of 7.
void tsc_pair(uint64_t& tsc, uint64_t& mono, uint64_t& width) {
    width = UINT64_MAX;
    for (int i = 0; i < 7; ++i) {
        uint64_t a = rdtsc_ordered();
        uint64_t m = vdso_mono_ns();
        uint64_t b = rdtsc_ordered();
        if (b >= a && b - a < width) {
            width = b - a;
            tsc = a + (b - a) / 2;
            mono = m;
        }
    }
}

uint64_t ticks_ns(uint64_t ticks, uint64_t mult) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * mult) >> 32);
}

uint64_t g_clock_width0 = 0;  // width of the first pair

// Runs once, from the first reading (the constructor): takes the first pair and schedules
// the switch, or stays on CLOCK_MONOTONIC.
void clock_setup(uint64_t now) {
    ErrnoGuard keep;
    if (tsc_usable()) {
        tsc_pair(g_clock.tsc0, g_clock.mono0, g_clock_width0);
        g_clock.calibrate_at.store(now + kClockCalibrateNs, std::memory_order_relaxed);
    }
}

// Beyond the two pairs' own uncertainty, how far a CPU's reading of the calibrated map may be
// from its CLOCK_MONOTONIC. Where CLOCK_MONOTONIC is the same linear function of every CPU's
// TSC (the only case the check is to pass), the map's error is within the pairs' widths and
// 2 ppm of the time since the anchor pair (a few ns over the check's milliseconds); the slack
// covers the kernel's rounding and the small changes of its rate that NTP makes meanwhile. It
// is kept well below the ~1 us the switch sets the clock ahead (clock_switch), so a reading
// made on one CPU before the switch stays below every reading after it on any other. What the
// check promises is that the map is CLOCK_MONOTONIC within this much on every CPU: where the
// kernel's clock is computed from the local TSC, an offset between two CPUs' TSCs is in
// CLOCK_MONOTONIC itself, and the trace's order between threads is as good as it was with it.
// An offset the kernel corrects (per-CPU pvclock data) shows as a disagreement; measured here
// |map - CLOCK_MONOTONIC| is 1-11 ns (kvm-clock, 2 CPUs). A block handed from one thread to
// another usually takes more than 250 ns from the malloc's clock reading (taken before its
// stack walk) to the free's: a cache-line transfer, the rest of one hook, the start of another.
constexpr uint64_t kClockCheckSlackNs = 250;
constexpr uint64_t kClockCheckMaxWidthNs = 500;  // a pair this wide (7 interrupted tries) fails

struct CpuCheck {
    int cpus = 0;             // CPUs checked
    int bad_cpu = -1;         // the first that failed, or -1
    int64_t worst_ns = 0;     // map minus CLOCK_MONOTONIC with the largest magnitude
    uint64_t allowed_ns = 0;  // the bound it was checked against (at the failure, or the largest)
    const char* why = nullptr;
    bool retry = false;  // no narrow pair on some CPU: try again later
};

// The writer thread (clock_switch) moves itself to each CPU of its allowed set in turn and
// checks there that the map ns = mono1 + (tsc - tsc1) * mult agrees with CLOCK_MONOTONIC;
// then restores its affinity. A program thread never runs this: its affinity is the program's.
// Our threads inherit the affinity of the program thread that started them, so the set is the
// CPUs the program was allowed when tracing started.
bool clock_check_cpus(uint64_t tsc1, uint64_t mono1, uint64_t width1, uint64_t mult, CpuCheck& r) {
    cpu_set_t orig, one;
    if (sched_getaffinity(0, sizeof orig, &orig) != 0) {
        r.why = "sched_getaffinity failed";
        return false;
    }
    bool ok = true;
    for (int cpu = 0; cpu < CPU_SETSIZE && ok; ++cpu) {
        if (!CPU_ISSET(cpu, &orig)) continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0 || sched_getcpu() != cpu) {
            r.bad_cpu = cpu;
            r.why = "cannot move there";
            ok = false;
            break;
        }
        uint64_t tsc = 0, mono = 0, width = 0;
        tsc_pair(tsc, mono, width);
        ++r.cpus;
        const uint64_t width_ns = ticks_ns(width, mult);
        const uint64_t since = tsc > tsc1 ? ticks_ns(tsc - tsc1, mult) : ticks_ns(tsc1 - tsc, mult);
        const uint64_t allowed =
            ticks_ns(width1, mult) / 2 + width_ns / 2 + since / 500000 + kClockCheckSlackNs;
        const int64_t off = tsc >= tsc1
                                ? static_cast<int64_t>(mono1 + ticks_ns(tsc - tsc1, mult) - mono)
                                : static_cast<int64_t>(mono1 - ticks_ns(tsc1 - tsc, mult) - mono);
        const uint64_t mag = off < 0 ? static_cast<uint64_t>(-off) : static_cast<uint64_t>(off);
        const uint64_t worst =
            r.worst_ns < 0 ? static_cast<uint64_t>(-r.worst_ns) : static_cast<uint64_t>(r.worst_ns);
        if (mag >= worst) r.worst_ns = off;
        if (allowed > r.allowed_ns) r.allowed_ns = allowed;
        if (width_ns > kClockCheckMaxWidthNs || mag > allowed) {
            r.bad_cpu = cpu;
            r.worst_ns = off;
            r.allowed_ns = allowed;
            r.why = width_ns > kClockCheckMaxWidthNs ? "no narrow pair" : "TSC off";
            r.retry = width_ns > kClockCheckMaxWidthNs;
            ok = false;
        }
    }
    if (sched_setaffinity(0, sizeof orig, &orig) != 0) {
        // Our own thread, left on one CPU: the trace is no less right for it.
    }
    if (r.cpus == 0 && ok) {
        r.why = "no CPU in the affinity mask";
        ok = false;
    }
    return ok;
}

// The writer thread's part (clock_writer_tick): measures the rate over the time since the
// first pair and, when it is known to within 2 ppm and clock_check_cpus passes, switches to
// the TSC; a rate not yet known that well (or a CPU without a narrow pair) is measured again
// after twice as long, a CPU whose TSC disagrees keeps CLOCK_MONOTONIC for good. Runs with
// g_clock.mode == kClockCalibrating.
void clock_switch(uint64_t now) {
    uint64_t tsc1 = 0, mono1 = 0, width1 = 0;
    tsc_pair(tsc1, mono1, width1);
    uint64_t dt = tsc1 - g_clock.tsc0;
    uint64_t dm = mono1 - g_clock.mono0;
    bool ok = tsc1 > g_clock.tsc0 && mono1 > g_clock.mono0;
    uint64_t mult = 0;
    if (ok) {
        mult = static_cast<uint64_t>((static_cast<unsigned __int128>(dm) << 32) / dt);
        // 0.01 .. 10 ns per tick (100 GHz .. 100 MHz): anything else is not a TSC we know.
        ok = mult > (uint64_t(1) << 32) / 100 && mult < (uint64_t(10) << 32);
    }
    uint64_t uncertainty_ns = 0;
    if (ok) {
        uncertainty_ns = ticks_ns(g_clock_width0 + width1, mult);
        ok = uncertainty_ns < dm / 500000;  // rate error < 2 ppm
    }
    auto again_later = [&] {
        uint64_t wait = dm < kClockCalibrateNs ? kClockCalibrateNs : dm;
        g_clock.calibrate_at.store(dt > 0 && wait < (uint64_t(1) << 62) ? now + wait : UINT64_MAX,
                                   std::memory_order_relaxed);
        g_clock.mode.store(kClockMonotonic, std::memory_order_release);
    };
    if (!ok) return again_later();
    CpuCheck check;
    if (!clock_check_cpus(tsc1, mono1, width1, mult, check)) {
        // Every try interrupted (or a valgrind run, where no pair is narrow): not an answer.
        if (check.retry) return again_later();
        if (g_clock_report)
            say("pymemtrace: trace clock: CLOCK_MONOTONIC (clocksource %s; CPU %d: %s, map %+lld "
                "ns from CLOCK_MONOTONIC, allowed %llu)",
                g_clocksource, check.bad_cpu, check.why, static_cast<long long>(check.worst_ns),
                static_cast<unsigned long long>(check.allowed_ns));
        g_clock.calibrate_at.store(UINT64_MAX, std::memory_order_relaxed);
        g_clock.mode.store(kClockMonotonic, std::memory_order_release);
        return;
    }
    g_clock.base_tsc = tsc1;
    // Ahead of CLOCK_MONOTONIC by more than the pair's uncertainty: readings taken just before
    // the switch are never above those taken after it (on any CPU: clock_check_cpus).
    g_clock.base_ns = mono1 + uncertainty_ns + 1000;
    g_clock.mult = mult;
    g_clock.mode.store(kClockTsc, std::memory_order_release);
    clock_events_ready();
    if (g_clock_report)
        say("pymemtrace: trace clock: the TSC from %.3f s (clocksource %s; %d CPUs agree with "
            "CLOCK_MONOTONIC, worst %+lld ns, allowed %llu)",
            static_cast<double>(now - g_settings.start_mono_ns) / 1e9, g_clocksource, check.cpus,
            static_cast<long long>(check.worst_ns),
            static_cast<unsigned long long>(check.allowed_ns));
}
#endif

}  // namespace

uint64_t clock_slow_ns() {
    ErrnoGuard keep;
    uint64_t now = vdso_mono_ns();
#if defined(__x86_64__)
    // The first reading sets the clock up; the switch is the writer's (clock_writer_tick).
    uint32_t m = g_clock.mode.load(std::memory_order_acquire);
    if (PMT_UNLIKELY(m == kClockUnset) &&
        g_clock.mode.compare_exchange_strong(m, kClockCalibrating)) {
        clock_setup(now);
        g_clock.mode.store(kClockMonotonic, std::memory_order_release);
    }
#endif
    return now;
}

uint64_t clock_switch_due() {
#if defined(__x86_64__)
    if (g_clock.mode.load(std::memory_order_acquire) == kClockMonotonic)
        return g_clock.calibrate_at.load(std::memory_order_relaxed);
#endif
    return UINT64_MAX;
}

void clock_writer_tick() {
#if defined(__x86_64__)
    uint32_t m = g_clock.mode.load(std::memory_order_acquire);
    if (m != kClockMonotonic) return;
    ErrnoGuard keep;
    uint64_t now = vdso_mono_ns();
    if (now < g_clock.calibrate_at.load(std::memory_order_relaxed)) return;
    // Program threads only ever move the mode from kClockUnset; a fork child starts again.
    if (g_clock.mode.compare_exchange_strong(m, kClockCalibrating)) clock_switch(now);
#endif
}

void clock_events_ready() {
#if defined(__x86_64__)
    // start_mono_ns is the trace's (set before tracing starts, and the clock switches at the
    // writer's cycle at least 50 ms after the first reading, which is the one start_mono_ns
    // took); a fork child's trace starts again with the bit set.
    if (g_clock.mode.load(std::memory_order_acquire) != kClockTsc) return;
    g_clock.event_base.store(g_clock.base_ns - g_settings.start_mono_ns, std::memory_order_relaxed);
    slow_bit(kSlowClock, false);  // a seq_cst RMW: the fast path's acquire load sees the base
#endif
}

void clock_fork_child() {
    // The thread that was setting the clock up or switching it (the writer) is not in the
    // child: the child's first reading sets it up again, its own writer switches.
    if (g_clock.mode.load() == kClockCalibrating) {
        g_clock.calibrate_at.store(UINT64_MAX);
        g_clock.mode.store(kClockUnset);
    }
}

namespace {

#if defined(__x86_64__)
bool g_clflushopt = false;  // CPUID.(7,0):EBX[23]; clflush (SSE2) otherwise
void evict_lines_init() {
    unsigned a, b, c, d;
    g_clflushopt = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23));
}
// Writes back and drops the cache lines of [p, p + bytes) from every cache (return_buffers).
void evict_lines(const void* p, size_t bytes) {
    constexpr uintptr_t kLine = 64;
    const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
    for (uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1); a < end; a += kLine) {
        auto* line = reinterpret_cast<char*>(a);
        if (g_clflushopt)
            asm volatile("clflushopt %0" : "+m"(*line));
        else
            asm volatile("clflush %0" : "+m"(*line));
    }
}
#else
void evict_lines_init() {}
void evict_lines(const void*, size_t) {}
#endif

// Buffers and states come from our heap (internal_malloc): never traced, no recursion.
Buffer* buffer_get() {
    {
        std::lock_guard<FutexLock> lock(g_pool_mutex);
        if (g_pool) {
            Buffer* b = g_pool;
            g_pool = b->next;
            --g_pool_count;
            b->next = nullptr;
            return b;
        }
    }
    void* mem = internal_malloc(sizeof(Buffer));
    if (mem) populate_pages(mem, sizeof(Buffer));  // (populate.hpp) the caller keeps errno
    return mem ? new (mem) Buffer : nullptr;
}

void buffer_put(Buffer* b) {
    {
        std::lock_guard<FutexLock> lock(g_pool_mutex);
        if (g_pool_count < kPoolKeep) {
            b->next = g_pool;
            g_pool = b;
            ++g_pool_count;
            return;
        }
    }
    internal_free(b);
}

void start_buffer(ThreadState* s, Buffer* b) {
    s->current = b;
    s->rec.reset(b->data, kBufferWords, s->tid);
}

// Back to the pool, unwritten: the buffers a thread handed off.
void drop_handed(ThreadState* s) {
    for (Buffer* b = s->handed.exchange(nullptr, std::memory_order_acquire); b;) {
        Buffer* n = b->next;
        buffer_put(b);
        b = n;
    }
}

void destroy_state(ThreadState* s) {
    drop_handed(s);
    if (s->current) buffer_put(s->current);
    if (s->cache) pystack_cache_free(s->cache);
    s->~ThreadState();
    internal_free(s);
}

// pthread key destructor: the thread is exiting. Its state stays usable (glibc still frees
// things after this) and is reclaimed by the writer once the kernel says the tid is gone.
void on_thread_exit(void* p) { static_cast<ThreadState*>(p)->exited.store(true); }

bool thread_is_gone(uint32_t tid) {
    return syscall(SYS_tgkill, g_settings.pid, tid, 0) == -1 && errno == ESRCH;
}

}  // namespace

namespace {
ThreadState* make_thread_state();
}

ThreadState* create_thread_state() {
    ErrnoGuard keep;
    return make_thread_state();
}

namespace {
ThreadState* make_thread_state() {
    if (!tracing()) return nullptr;
    // Before this thread's first clock reading (runtime.hpp, g_event_rdtsc).
    if (t_in_hook == kGuardHook && g_program_threads.fetch_add(1) >= 1) set_event_rdtsc(false);
    void* mem = internal_memalign(alignof(ThreadState), sizeof(ThreadState));
    if (!mem) {
        fail_tracing("cannot allocate thread state");
        return nullptr;
    }
    auto* s = new (mem) ThreadState;
    s->tid = static_cast<uint32_t>(syscall(SYS_gettid));
    Buffer* b = buffer_get();
    if (!b) {
        s->~ThreadState();
        internal_free(mem);
        fail_tracing("cannot allocate a trace buffer");
        return nullptr;
    }
    start_buffer(s, b);
    s->internal = t_internal_thread;
    // Our threads (the sampler's rss records: kGuardOwn) never walk a Python stack.
    s->cache = t_in_hook == kGuardHook ? pystack_cache_new() : nullptr;
    {
        std::lock_guard<FutexLock> lock(g_registry_mutex);
        s->next_registered = g_threads;
        g_threads = s;
    }
    pthread_setspecific(g_exit_key, s);
    t_state = s;
    return s;
}
}  // namespace

namespace {
// The thread's handed buffers, oldest first, appended to out.
void take_handed(ThreadState* s, std::vector<Buffer*>& out) {
    Buffer* b = s->handed.exchange(nullptr, std::memory_order_acquire);
    const size_t first = out.size();
    for (; b; b = b->next) {
        out.push_back(b);
        g_pending_bytes.fetch_sub(b->words * sizeof(uint64_t), std::memory_order_relaxed);
    }
    std::reverse(out.begin() + static_cast<ptrdiff_t>(first), out.end());
}

// The current buffer itself goes to the writer and the thread goes on in a fresh one (from
// the pool: lines no other core holds, see return_buffers). Without a buffer to spare it stays
// where it is, collected next cycle. The caller holds the thread's buffer (collecting, busy 0).
void take_current(ThreadState* s, std::vector<Buffer*>& out) {
    if (s->rec.empty()) return;
    if (Buffer* fresh = buffer_get()) {
        s->current->words = s->rec.words();
        out.push_back(s->current);
        start_buffer(s, fresh);
    }
}
}  // namespace

void hand_off_full(ThreadState* s) {
    ErrnoGuard keep;
    Buffer* full = s->current;
    full->words = s->rec.words();
    Buffer* fresh = buffer_get();
    if (!fresh) {
        // Out of memory for buffers: stop taking records.
        fail_tracing("cannot allocate a trace buffer");
        s->rec.reset(full->data, 0, s->tid);
        return;
    }
    full->bound_ns = s->rec.last_time();
    Buffer* head = s->handed.load(std::memory_order_relaxed);
    do {
        full->next = head;
    } while (!s->handed.compare_exchange_weak(head, full, std::memory_order_release,
                                              std::memory_order_relaxed));
    start_buffer(s, fresh);
    const size_t bytes = full->words * sizeof(uint64_t);
    size_t pending = g_pending_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (pending >= kThrottleBytes) {
        g_throttle.store(1, std::memory_order_relaxed);
        slow_bit(kSlowThrottle, true);
    }
    if (pending >= kWakeBytes) writer_wake();
}

// A hook that waits here holds no flag: a signal handler's calls meanwhile are recorded as
// usual rather than through the side ring, which a long wait would overflow (side_ring.hpp).
void acquire_slow(ThreadState* s) {
    ErrnoGuard keep;  // sched_yield
    const uint8_t guard = t_in_hook;
    for (unsigned spins = 0;; ++spins) {
        s->busy.store(0, std::memory_order_release);  // the writer may go on
        if (guard == kGuardHook) t_in_hook = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        while (s->collecting.load(std::memory_order_relaxed)) {
            if (++spins < 200)
                __builtin_ia32_pause();
            else
                sched_yield();
        }
        t_in_hook = guard;  // before the buffer may be ours
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        set_busy(s);
        if (!s->collecting.load(std::memory_order_acquire)) {
#if defined(__x86_64__)
            // The caller's clock reading (maybe rdtsc) follows this load and the one that
            // sent us here (collect_buffers has the argument).
            __builtin_ia32_lfence();
#endif
            return;
        }
    }
}

void throttle_wait() {
    ErrnoGuard keep;
    // A vfork child (or a child of a raw clone(), which runs no atfork handler) shares or
    // copies our state but has no writer of its own: waiting would hang it.
    if (getpid() != g_settings.pid) return;
    const uint8_t guard = t_in_hook;  // no flag held: see acquire_slow
    if (guard == kGuardHook) t_in_hook = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    // Bounded waits: tracing may stop (exit, failure) while we sleep, and then nobody wakes us.
    while (g_throttle.load() && tracing()) {
        timespec ts{0, 10 * 1000000};
        syscall(SYS_futex, &g_throttle, FUTEX_WAIT_PRIVATE, 1, &ts, nullptr, 0);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_in_hook = guard;
}

void throttle_release() {
    // The bit first: a thread that sets both meanwhile leaves the bit set (until the next
    // cycle), never g_throttle set without its bit.
    slow_bit(kSlowThrottle, false);
    if (g_throttle.exchange(0))
        syscall(SYS_futex, &g_throttle, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

void ThreadState::define_string(uint64_t id, const char* s, size_t n) {
    // A single name longer than a buffer cannot be stored whole: keep its beginning.
    if (n > kBufferBytes / 2) n = kBufferBytes / 2;
    emit(this, [&](RecordWriter& e) { return e.string(id, s, n); });
}
void ThreadState::define_location(uint64_t id, uint64_t file_id, uint64_t function_id,
                                  uint64_t line) {
    emit(this, [&](RecordWriter& e) { return e.location(id, file_id, function_id, line); });
}
void ThreadState::define_stack(uint64_t id, uint64_t parent_id, uint64_t location_id) {
    emit(this, [&](RecordWriter& e) { return e.stack(id, parent_id, location_id); });
}

// The Epoch promise (FORMAT.md, "Epoch chunk"): the writer reads the clock, T, then collects;
// every record whose clock reading c is below T must be in what it collects. A record is
//   thread X:  busy = 1; compiler barrier; if (collecting) acquire_slow (ends with lfence);
//              c = clock (lfence; rdtsc, or rdtsc: runtime.hpp, g_event_rdtsc); ...; busy = 0
//   writer:    T = lfence; rdtsc; lfence; collecting = 1 (every thread); membarrier; for each
//              thread: wait for busy == 0; take the buffer; collecting = 0
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) returns only after every thread of the process
// has passed a point P (an interrupt, or not running at all) where its memory accesses before
// P are visible to all and those after P see what the writer stored before the call; what X
// executes after P it executes after the interrupt (or after being scheduled again), so after
// the writer's lfence, so after T was read. Take a record of X and its store busy = 1:
// - before P: the writer's load of busy after the call sees it or a later store of X. Seeing
//   1, it waits for a 0. A 0 that is a record's release makes this record visible (release/
//   acquire): it is collected. A 0 from acquire_slow means X saw collecting == 1, which the
//   writer stored after T, and waits for the writer's 0; its lfence then keeps its clock
//   reading after both loads: c > T, the record is left for the next cycle.
// - after P: X's load of collecting and its clock reading come after P: c > T.
// So c < T implies the record is collected. Without membarrier the thread's store is an
// xchg and the writer's a seq_cst fence (the same mutual exclusion by full barriers), and
// X's clock is the ordered reading, whose lfence waits for the xchg and the load of collecting.
namespace {
bool membarrier_register() {
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void heavy_barrier() {
    if (g_light_acquire.load(std::memory_order_relaxed)) {
        long r;
        {
            ErrnoGuard keep;
            r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        }
        if (r == 0) return;
        // Refused after a successful registration (a seccomp filter installed with TSYNC
        // later): threads take the full-barrier path from their next record on. A record
        // that started before it sees the change is not ordered by this cycle's fence, so
        // at worst one event timed just before T is collected a cycle late; the writer then
        // writes it with the next cycle's events, after events read later than it (FORMAT.md,
        // "Stream order"): its order is off by that much, the trace stays readable.
        set_event_rdtsc(false);
        set_light_acquire(false);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

void wait_idle(ThreadState* s) {
    for (unsigned spins = 0; s->busy.load(std::memory_order_acquire); ++spins) {
        if (spins < 200)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}
}  // namespace

void collect_buffers(std::vector<Buffer*>& out) {
#if defined(__x86_64__)
    // The caller's T (lfence; rdtsc) is read before anything below starts, membarrier's interrupts
    // included: a thread that rdtsc times after its interrupt (case "after P") reads above T.
    __builtin_ia32_lfence();
#endif
    std::lock_guard<FutexLock> lock(g_registry_mutex);
    for (ThreadState* s = g_threads; s; s = s->next_registered)
        s->collecting.store(1, std::memory_order_relaxed);
    heavy_barrier();
    ThreadState** link = &g_threads;
    while (ThreadState* s = *link) {
        // Read before collecting: a thread seen exited and gone has recorded its last event.
        bool gone = s->exited.load() && thread_is_gone(s->tid);
        wait_idle(s);
        take_handed(s, out);
        take_current(s, out);
        s->collecting.store(0, std::memory_order_release);
        if (gone) {
            *link = s->next_registered;
            destroy_state(s);
        } else {
            link = &s->next_registered;
        }
    }
}

// Between flushes the writer takes what a single program thread has handed off, without
// membarrier's interrupt on that thread's CPU (~55 us of the writer's time a call on a 2-vCPU
// KVM guest, and the thread's own time in the interrupt; regex 0.488 -> 0.472 s of CPU, json
// --python-allocators 0.483 -> 0.454). Valid while at most one program thread has ever
// recorded (g_event_rdtsc, which a second one clears before its first clock reading, and it
// registers before that too). The cut is the bound of the thread's newest full buffer: the
// clock reading of its latest event when it handed the buffer off (RecordWriter::last_time, a
// record that did not fit included). Everything the thread records later is timed at or
// after it, so every event of the thread timed below the cut is in the buffers taken here;
// events at the cut are held back as usual. Our threads' buffers (the sampler's RSS records)
// are collected as collect_buffers does, but with full barriers on both sides (their set_busy
// is an xchg, the writer's collecting store too): a record of ours that the writer does not
// wait for reads its clock (ordered) after the writer's store, itself after the thread read
// the cut (the push is a release, the exchange an acquire). A state of a second program
// thread in the registry sends the cycle back to collect_buffers.
Handed collect_handed(std::vector<Buffer*>& out, uint64_t* cut) {
    if (!g_light_acquire.load(std::memory_order_relaxed) ||
        !g_event_rdtsc.load(std::memory_order_relaxed))
        return Handed::Full;
    std::lock_guard<FutexLock> lock(g_registry_mutex);
    ThreadState* program = nullptr;
    for (ThreadState* s = g_threads; s; s = s->next_registered) {
        if (s->internal) continue;
        if (program) return Handed::Full;
        program = s;
    }
    if (!program || !program->handed.load(std::memory_order_relaxed)) return Handed::Nothing;
    take_handed(program, out);
    *cut = out.back()->bound_ns;  // the newest
    for (ThreadState* s = g_threads; s; s = s->next_registered) {
        if (!s->internal) continue;
        s->collecting.store(1, std::memory_order_seq_cst);
        wait_idle(s);
        take_handed(s, out);
        take_current(s, out);
        s->collecting.store(0, std::memory_order_release);
    }
    return Handed::Taken;
}

// The writer has read every line of these buffers, so its CPU's cache holds a copy of each. A
// recording thread on another CPU that gets one back from the pool would then write over
// lines shared with that cache: every store waits for the other core to give its copy up, and
// glibc's next locked instruction (its arena lock, in free) waits for all of them. On a 2-vCPU
// KVM guest that was most of the overhead on allocation-heavy code (bench/workloads/regex.py:
// 0.78 s of CPU traced against 0.32 s plain; 0.52 s with the lines evicted here). Evicted, a
// line comes back from memory on the first store, in streams the prefetchers follow.
void return_buffers(std::vector<Buffer*>& bufs) {
    for (Buffer* b : bufs) {
        evict_lines(b, offsetof(Buffer, data) + b->words * sizeof(uint64_t));
        buffer_put(b);
    }
    bufs.clear();
}

void recorder_init() {
    pthread_key_create(&g_exit_key, on_thread_exit);
    evict_lines_init();
    ErrnoGuard keep;
    bool light = membarrier_register();
    set_light_acquire(light);
    set_event_rdtsc(light && g_program_threads.load() <= 1);
}

// Fork hazard: a thread holding the registry or pool mutex at fork would leave it locked
// forever in the child; taking both here makes fork wait for those short sections.
void recorder_fork_prepare() {
    g_registry_mutex.lock();
    g_pool_mutex.lock();
}

void recorder_fork_parent() {
    g_pool_mutex.unlock();
    g_registry_mutex.unlock();
}

void recorder_fork_child() {
    clock_fork_child();
    slow_bit(kSlowClock, true);  // the child's start_mono_ns is new (clock_events_ready)
    g_pool_mutex.unlock();
    g_registry_mutex.unlock();
    ThreadState* self = t_state;
    // Only the forking thread exists in the child. The others may have stopped mid-record or
    // mid-hand-off, so their buffers, chains and caches may be inconsistent: they are
    // abandoned, never touched (copy-on-write pages that cost the child nothing).
    g_threads = nullptr;
    g_pending_bytes.store(0);
    g_throttle.store(0);
    slow_bit(kSlowThrottle, false);
    // The child is a new process (mm) with this one thread: register it for membarrier
    // itself, or take the full-barrier path.
    if (g_light_acquire.load()) {
        ErrnoGuard keep;
        set_light_acquire(membarrier_register());
    }
    g_program_threads.store(self ? 1 : 0);  // a fork is a program thread's call
    set_event_rdtsc(g_light_acquire.load());
    if (!self) return;
    // This thread's records belong to the parent's trace (the parent writes them).
    drop_handed(self);
    self->busy.store(0);
    self->collecting.store(0);
    self->tid = static_cast<uint32_t>(syscall(SYS_gettid));
    start_buffer(self, self->current);
    if (self->cache) pystack_cache_free(self->cache);
    python_after_fork_child();
    self->cache = pystack_cache_new();
    self->next_registered = nullptr;
    g_threads = self;
}

}  // namespace pmt::preload
