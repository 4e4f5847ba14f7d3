// What every part of the interposer shares: the reentrancy guard, the table of the real
// (next) functions, the tracing switch, the trace clock and the settings read at start.
// Depends on nothing but libc; included by hooks, recorder, writer, sampler and lifecycle.
#pragma once
#include <errno.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#define PMT_EXPORT extern "C" __attribute__((visibility("default")))
#define PMT_LIKELY(x) __builtin_expect(!!(x), 1)
#define PMT_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace pmt::preload {

// Set while this thread is inside one of our hooks (around the real call too) and for the
// whole life of our own threads. Anything called with it set passes straight through, which
// is what keeps jemalloc's/mimalloc's own mmaps, dlsym's calloc and our own allocations out
// of the trace. initial-exec: the flag is read on every malloc, including those ld.so and libc
// make before our constructor; the general-dynamic model would go through __tls_get_addr,
// which may itself call malloc. A byte, not a bool: 1 (true) is our own code, 2 a traced hook,
// whose nested calls may be a signal handler's (side_ring.hpp).
extern __thread uint8_t t_in_hook __attribute__((tls_model("initial-exec")));

class HookGuard {
public:
    HookGuard() { t_in_hook = true; }
    ~HookGuard() { t_in_hook = false; }
    HookGuard(const HookGuard&) = delete;
    HookGuard& operator=(const HookGuard&) = delete;
};

// Keeps the program's errno across a scope of ours. The hooks' fast path makes no call that
// can set errno; every cold path that can (thread state creation, buffer hand-off, waiting for
// the writer, the clock's set-up, the stack walker's interning) holds one of these instead.
class ErrnoGuard {
public:
    ErrnoGuard() : saved_(errno) {}
    ~ErrnoGuard() { errno = saved_; }
    ErrnoGuard(const ErrnoGuard&) = delete;
    ErrnoGuard& operator=(const ErrnoGuard&) = delete;

private:
    int saved_;
};

// The definitions our hooks forward to (dlsym(RTLD_NEXT, ...)), filled by resolve_real().
struct RealFunctions {
    void* (*malloc)(size_t);
    void* (*calloc)(size_t, size_t);
    void* (*realloc)(void*, size_t);
    void* (*reallocarray)(void*, size_t, size_t);
    void (*free)(void*);
    int (*posix_memalign)(void**, size_t, size_t);
    void* (*aligned_alloc)(size_t, size_t);
    void* (*memalign)(size_t, size_t);
    void* (*valloc)(size_t);
    void* (*pvalloc)(size_t);
    void* (*mmap)(void*, size_t, int, int, int, off_t);
    void* (*mmap64)(void*, size_t, int, int, int, off_t);
    int (*munmap)(void*, size_t);
    void* (*mremap)(void*, size_t, size_t, int, ...);
    int (*execve)(const char*, char* const[], char* const[]);
    int (*execv)(const char*, char* const[]);
    int (*execvp)(const char*, char* const[]);
    int (*execvpe)(const char*, char* const[], char* const[]);
    void (*exit_now)(int);      // _exit
    void (*exit_now_c99)(int);  // _Exit
};
extern RealFunctions g_real;

// Memory for our own structures that code inside a hook allocates (the stack walker's caches):
// from our own heap (own_heap.hpp; without one, from the allocator after ours), never from
// the program's malloc. A hook may run inside an
// allocator that calls mmap holding its own lock (jemalloc preloaded before us), and a call
// back into that allocator would deadlock.
void* internal_malloc(size_t n);
void* internal_calloc(size_t n, size_t m);
void internal_free(void* p);
void* internal_memalign(size_t align, size_t n);  // align: a power of two, >= sizeof(void*)

// bootstrap.cpp: resolves g_real once. While dlsym runs (it calls calloc), allocations are
// served from our heap (own_heap.hpp) or, without one, from a static arena, whose blocks are
// never freed.
void resolve_real();
bool real_resolved();
void* bootstrap_alloc(size_t n);
// dlsym needs a few hundred bytes once; 64 KiB leaves room for a few threads racing at start.
inline constexpr size_t kBootstrapArenaBytes = 64 * 1024;
extern unsigned char g_bootstrap_arena[kBootstrapArenaBytes];
// (free() asks in_own_heap, own_heap.hpp, which covers the arena while there is no heap.)
size_t bootstrap_block_size(const void* p);

// True while events are recorded. Read (relaxed) on every hook call.
extern std::atomic<bool> g_tracing;
inline bool tracing() { return g_tracing.load(std::memory_order_relaxed); }
// Switches tracing: stores g_tracing, then its g_slow bit (recorder.hpp, kSlowOff).
void set_tracing(bool on);

// Settings and identity of the current trace (set at start and again in a forked child).
struct Settings {
    uint64_t rss_interval_ms = 10;
    uint64_t flush_interval_ms = 100;
    bool quiet = false;
    pid_t pid = 0;               // the process that owns the trace (vfork children differ)
    uint64_t start_mono_ns = 0;  // CLOCK_MONOTONIC at trace start
    size_t page_size = 4096;
};
extern Settings g_settings;

// CLOCK_MONOTONIC through the vDSO (~24 ns here): the reference the trace clock follows.
inline uint64_t vdso_mono_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The trace clock: CLOCK_MONOTONIC, or, where the TSC is invariant, the TSC converted to ns
// with a rate calibrated against CLOCK_MONOTONIC. The process starts on CLOCK_MONOTONIC and
// switches once, at the writer thread's first cycle from kClockCalibrateNs after its first
// reading on, to a little ahead (never back) of it; the rate then stays fixed, so the clock
// only rises and is the same on every core. Before the switch the writer hops to each CPU it
// may run on and checks that the calibrated map agrees with CLOCK_MONOTONIC there
// (recorder.cpp, clock_check_cpus): with the kernel's clocksource `tsc` the kernel has checked
// the TSCs itself; with another one reading the TSC (kvm-clock, Hyper-V's TSC page) the check
// is what shows that CLOCK_MONOTONIC is the same function of every CPU's TSC.
//
// The TSC is read ordered (rdtsc_ordered): lfence waits until every earlier instruction has
// completed (its loads have their values), and rdtsc does not start before it (on AMD CPUs
// lfence does so once the kernel has made it dispatch-serializing, which it does at boot and
// relies on itself); the kernel's own ordered reading, the vDSO's where the CPU has no rdtscp,
// is the same sequence. rdtscp orders no more than this (its wait is for earlier loads too,
// not stores), and one sequence serves every CPU, rdtscp or not. That is what
// keeps a free timed after the malloc that another thread handed its block over from, and the
// epoch promise (FORMAT.md: the flag is won before the clock is read). ~18 ns here (AMD, a VM
// without rdtscp) against ~27 ns for the vDSO call and ~11 ns for a plain rdtsc.
enum : uint32_t { kClockUnset = 0, kClockMonotonic, kClockCalibrating, kClockTsc };
inline constexpr uint64_t kClockCalibrateNs = 50u * 1000000u;
struct TraceClock {
    std::atomic<uint32_t> mode{kClockUnset};
    std::atomic<uint64_t> calibrate_at{UINT64_MAX};  // CLOCK_MONOTONIC time of the switch
    uint64_t tsc0 = 0, mono0 = 0;                    // the first calibration pair
    uint64_t base_tsc = 0, base_ns = 0;  // kClockTsc: ns = base_ns + (tsc - base_tsc) * mult >> 32
    uint64_t mult = 0;
    // base_ns - g_settings.start_mono_ns (two's complement): the hooks' fast path makes trace
    // time of a reading with one add (tsc_trace_ns). Set by clock_events_ready (recorder.cpp)
    // before it clears kSlowClock (recorder.hpp), which the fast path tests first.
    std::atomic<uint64_t> event_base{0};
};
extern TraceClock g_clock;

uint64_t clock_slow_ns();  // recorder.cpp: CLOCK_MONOTONIC, setting the clock up at first
// The writer thread's, once a cycle: switches the clock to the TSC once it is time and the TSC
// passes the checks (recorder.cpp). clock_switch_due: CLOCK_MONOTONIC time it will be time.
void clock_writer_tick();
uint64_t clock_switch_due();
void clock_fork_child();  // recorder.cpp: a set-up or switch cut off by fork starts over

#if defined(__x86_64__)
// lfence; rdtsc, with the memory clobber keeping it after the compiler's loads and stores too.
inline uint64_t rdtsc_ordered() {
    uint32_t lo, hi;
    asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return uint64_t(hi) << 32 | lo;
}
inline uint64_t tsc_to_ns(uint64_t tsc) {
    uint64_t d = tsc - g_clock.base_tsc;
    if (static_cast<int64_t>(d) < 0) d = 0;  // not expected: the TSC is in step on all CPUs
    return g_clock.base_ns +
           static_cast<uint64_t>((static_cast<unsigned __int128>(d) * g_clock.mult) >> 32);
}
#endif

// Absolute trace-clock time (ns); the writer and sampler pace themselves with it too.
inline uint64_t mono_ns() {
#if defined(__x86_64__)
    if (PMT_LIKELY(g_clock.mode.load(std::memory_order_acquire) == kClockTsc))
        return tsc_to_ns(rdtsc_ordered());
#endif
    return clock_slow_ns();
}
// Trace time: ns since the trace started (FORMAT.md: all times are relative to the header).
inline uint64_t now_ns() {
    uint64_t t = mono_ns();
    return t > g_settings.start_mono_ns ? t - g_settings.start_mono_ns : 0;
}

// Set while plain rdtsc may time the hooks' events (recorder.cpp keeps it): the writer orders
// its collections with membarrier, and at most one program thread has ever recorded.
// The ordered reading's wait for every earlier instruction (~18 ns here against ~11 ns for
// rdtsc) does two jobs. (1) Between threads: a free timed after the malloc that another thread
// handed its block over from; with a single recording thread there is no other thread. (2) The
// Epoch promise; with membarrier that argument no longer needs the wait (recorder.cpp,
// collect_buffers). A reading that rdtsc takes early is harmless in itself: a thread's own
// times are clamped to never decrease (by the writer, which reads them: thread_records.hpp).
// The second program thread clears the flag before its first clock reading; a block it hands
// over carries that store with it (x86 stores are seen in order), so the receiving thread then
// times with the ordered reading too.
extern std::atomic<bool> g_event_rdtsc;

#if defined(__x86_64__)
// A hook's TSC reading once the clock is the TSC: rdtsc, or the ordered reading when the flag
// above is clear.
inline uint64_t event_tsc(bool plain_rdtsc) {
    if (PMT_LIKELY(plain_rdtsc)) return __builtin_ia32_rdtsc();
    return rdtsc_ordered();
}
// Trace time of a hook's event once the clock is the TSC.
inline uint64_t tsc_event_ns(bool plain_rdtsc) {
    uint64_t t = tsc_to_ns(event_tsc(plain_rdtsc));
    return t > g_settings.start_mono_ns ? t - g_settings.start_mono_ns : 0;
}
// tsc_event_ns's trace time of a reading, for the hooks' fast path, which runs only while
// g_clock.event_base holds base_ns - start_mono_ns. The same value: both the clock time and
// start_mono_ns are far below 2^63, so the signed sum is the difference or its clamp to 0.
inline uint64_t tsc_trace_ns(uint64_t tsc) {
    uint64_t d = tsc - g_clock.base_tsc;
    if (static_cast<int64_t>(d) < 0) d = 0;
    const uint64_t t =
        g_clock.event_base.load(std::memory_order_relaxed) +
        static_cast<uint64_t>((static_cast<unsigned __int128>(d) * g_clock.mult) >> 32);
    return static_cast<int64_t>(t) > 0 ? t : 0;
}
#endif

// Trace time of a hook's event.
inline uint64_t event_now_ns() {
#if defined(__x86_64__)
    if (PMT_LIKELY(g_clock.mode.load(std::memory_order_acquire) == kClockTsc))
        return tsc_event_ns(g_event_rdtsc.load(std::memory_order_relaxed));
#endif
    return now_ns();
}

// One line on stderr, formatted without allocating (snprintf into a stack buffer, write()).
void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Stops tracing after an internal failure: one line on stderr, then hooks only forward.
void fail_tracing(const char* what);
// Stops tracing without a word: the program took our trace descriptor away.
void stop_tracing_silently();

// lifecycle.cpp: a hook call made in the kGuardInit state (side_ring.hpp) of the thread that
// loaded us. True if `caller` is in our own code (libstdc++'s initialisers, linked into this
// library, allocate its emergency exception pool): the call passes through untraced. Else
// the state ends (t_in_hook = 0) and the call is the program's, traced as usual.
[[gnu::cold]] bool own_init_call(const void* caller);

}  // namespace pmt::preload
