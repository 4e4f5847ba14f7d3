// Per-thread recording: each thread owns a buffer of fixed-layout records (thread_records.hpp)
// guarded by a pair of flags that the writer thread checks to collect it.
// Used by hooks.cpp (record_*), the sampler (rss) and the writer (collect/return buffers).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "python_stack.hpp"
#include "runtime.hpp"
#include "thread_records.hpp"

namespace pmt::preload {

inline constexpr size_t kBufferBytes = 64 * 1024;
inline constexpr size_t kBufferWords = kBufferBytes / sizeof(uint64_t);

// One thread's payload of records. Full ones are chained per thread until the writer takes
// them.
struct Buffer {
    Buffer* next = nullptr;
    size_t words = 0;  // payload words, set when the buffer is handed to the writer
    // A full buffer's: the clock reading of the thread's latest event when it was handed off,
    // at least every time in it and at most every later one of the thread (collect_handed).
    uint64_t bound_ns = 0;
    uint64_t data[kBufferWords];
};

struct alignas(64) ThreadState final : DefinitionSink {
    // 1 while the thread records: set before it reads the clock, cleared once the record is
    // complete (the Epoch promise, FORMAT.md). Written by this thread only.
    std::atomic<uint32_t> busy{0};
    // 1 while the writer collects this thread's buffers. Written by the writer only.
    std::atomic<uint32_t> collecting{0};
    RecordWriter rec;
    Buffer* current = nullptr;
    // Full buffers, newest first: the thread pushes, the writer takes them all at once (a
    // Treiber stack with one pusher and one taker, so no ABA), without the buffer flags.
    std::atomic<Buffer*> handed{nullptr};
    uint32_t tid = 0;
    // fast_free_time's: the sampler tick of this thread's latest clock reading for a free.
    uint32_t free_tick = 0;
    // One of our threads (the sampler): its buffer flag is always a full barrier (set_busy),
    // so that a cycle without membarrier can collect it (collect_handed).
    bool internal = false;
    PyStackCache* cache = nullptr;
    ThreadState* next_registered = nullptr;  // guarded by the registry mutex
    std::atomic<bool> exited{false};         // the thread's pthread key destructor ran

    void define_string(uint64_t id, const char* s, size_t n) override;
    void define_location(uint64_t id, uint64_t file_id, uint64_t function_id,
                         uint64_t line) override;
    void define_stack(uint64_t id, uint64_t parent_id, uint64_t location_id) override;
};

extern __thread ThreadState* t_state __attribute__((tls_model("initial-exec")));
// Set for the life of each of our threads (writer.cpp, spawn_internal_thread).
extern __thread bool t_internal_thread __attribute__((tls_model("initial-exec")));

// Why a hook may not take its fast path (hooks.cpp), one bit per reason: each mirrors a flag
// the general path reads (g_throttle, g_light_acquire, g_clock.mode, g_event_rdtsc), so that
// the fast path tests one word where it loaded and tested four. The flag is stored first,
// then its bit (recorder.cpp, slow_bit); a record that loaded the word before a change goes on
// with the old value, as it did with the flag it had loaded. kSlowOrdered does not leave the
// fast path: it only makes it read the clock ordered (runtime.hpp, g_event_rdtsc).
// Alone on its cache line: nothing the writer stores evicts it from the recording threads.
enum : uint32_t {
    kSlowThrottle = 1,  // g_throttle: the writer fell behind, recording threads wait
    kSlowHeavy = 2,     // !g_light_acquire: the thread's buffer flag needs a full barrier
    kSlowClock = 4,     // the trace clock is not (yet) the TSC, or g_clock.event_base not set
    kSlowOrdered = 8,   // !g_event_rdtsc: events are timed with lfence; rdtsc
    kSlowOff = 16,      // !g_tracing: free reads it with the others, before its guard
};
struct alignas(64) SlowWord {
    std::atomic<uint32_t> bits;
    // The sampler's tick count (sampler.cpp), never 0 while the sampler ticks at least every
    // kFreeTickMaxMs; 0 otherwise (before it starts, after it stops, in a fork child until its
    // own sampler runs, with RSS sampling slower or off). On bits' line: the free that loads
    // bits finds it there (fast_free_time).
    std::atomic<uint32_t> tick;
};
extern SlowWord g_slow;
inline bool fast_path_allowed(uint32_t w) { return (w & ~uint32_t(kSlowOrdered)) == 0; }
inline constexpr uint64_t kFreeTickMaxMs = 10;

// The general path's part of kSlowClock: once the clock is the TSC, sets g_clock.event_base
// for the current trace start and clears the bit (cold; a fork child's trace sets the bit
// again, recorder_fork_child).
void clock_events_ready();

ThreadState* create_thread_state();
// Set while the writer is too far behind; recording threads wait before they record.
extern std::atomic<uint32_t> g_throttle;
void throttle_wait();     // cold: sleeps until the writer's cycle is over
void throttle_release();  // the writer, after each cycle
// The calling thread's state, made on its first event. Callers hold none of our locks here,
// which is what makes it the place to wait for a writer that fell behind.
inline ThreadState* thread_state() {
    if (PMT_UNLIKELY(g_throttle.load(std::memory_order_relaxed))) throttle_wait();
    ThreadState* s = t_state;
    return PMT_LIKELY(s != nullptr) ? s : create_thread_state();
}

// The buffer is this thread's while it has busy set and collecting is clear; the writer's
// while it has collecting set and busy is clear. Dekker's mutual exclusion: each side stores
// its own flag, orders that store before its load of the other side's flag, and backs off if
// it sees the other's. The writer's side is rare (once per cycle per thread), the thread's is
// every event, so the ordering is asymmetric (recorder.cpp, collect_buffers, has the whole
// argument): with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) registered, the thread's
// store-load order is kept by a compiler barrier only and the writer's membarrier call forces
// it on every running thread; without it (old kernel, seccomp), the thread's store is a full
// barrier (xchg) and the writer uses a fence. Contended only while the writer copies this
// thread's buffer or waits for a record to finish; either side may be preempted meanwhile
// (few cores, many threads): after a short spin the waiter yields its time slice.
extern std::atomic<bool> g_light_acquire;  // membarrier is registered and works
void acquire_slow(ThreadState* s);
inline void set_busy(ThreadState* s) {
    if (PMT_LIKELY(g_light_acquire.load(std::memory_order_relaxed)) && !s->internal) {
        s->busy.store(1, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
        s->busy.store(1, std::memory_order_seq_cst);
    }
}
inline void acquire(ThreadState* s) {
    set_busy(s);
    if (PMT_UNLIKELY(s->collecting.load(std::memory_order_acquire))) acquire_slow(s);
}
inline void release(ThreadState* s) { s->busy.store(0, std::memory_order_release); }

// Hands the full current buffer off (ThreadState::handed) and starts a fresh one (cold path).
void hand_off_full(ThreadState* s);

// Stores one record with f(rec); a record that does not fit goes into a fresh buffer.
template <class F>
inline void emit(ThreadState* s, F&& f) {
    if (PMT_LIKELY(f(s->rec))) return;
    hand_off_full(s);
    f(s->rec);
}

// The trace time of a free of addr on a hook's fast path (w: g_slow's bits, loaded by the
// hook). While one program thread records (kSlowOrdered clear), a free whose block's
// allocation is the thread's latest record (a PAIR, FORMAT.md) takes that allocation's time
// when the sampler has not ticked since the thread's latest reading for a free: the block lived
// less than a tick (kFreeTickMaxMs, longer only while the sampler itself is held up), and the
// trace says it lived 0 ns. Any other free reads the clock. rdtsc is ~11 ns on an AMD VM, where
// the allocation's reading overlaps its stack walk but the free's has nothing to overlap:
// regex, a malloc+free pair per search, 1.45x -> 1.37x. With more program threads every free
// reads the clock (ordered): the order between threads stays exact (FORMAT.md, "Stream
// order"). Only pairs: a free after other events keeps its own time, which the analyzer
// compares with the script's last allocation (a release at exit is not the script's).
#if defined(__x86_64__)
[[gnu::always_inline]] inline uint64_t fast_free_time(ThreadState* s, uint32_t w, uint64_t addr) {
    if (!(w & kSlowOrdered)) {
        const uint32_t tick = g_slow.tick.load(std::memory_order_relaxed);
        if (tick != 0 && tick == s->free_tick && s->rec.follows_alloc_of(addr))
            return s->rec.last_time();
        s->free_tick = tick;
    }
    return tsc_trace_ns(event_tsc(!(w & kSlowOrdered)));
}
#endif

inline uint64_t capture_stack(ThreadState* s) { return python_stack_id(s->cache, *s); }

// One traced allocation or free, with the buffer flag, the Python stack and the clock, for the
// hooks (hooks.cpp) and the Python-allocator wrappers (pyalloc.cpp); called with the traced
// guard held. Inlined into each hook: as a call, its own register saves and restores cost ~17
// of the ~112 instructions malloc took per allocation besides the stack walk (callgrind, churn).
[[gnu::always_inline]] inline void record_alloc(AllocKind kind, const void* p, uint64_t size) {
    if (ThreadState* s = thread_state()) {
        acquire(s);
        uint64_t stack = capture_stack(s);
        uint64_t t = event_now_ns();
        const auto a = reinterpret_cast<uint64_t>(p);
        emit(s, [&](RecordWriter& e) { return e.alloc(kind, t, a, size, stack); });
        release(s);
    }
}

inline void record_free(const void* p) {
    if (ThreadState* s = thread_state()) {
        acquire(s);
        uint64_t t = event_now_ns();
        const auto a = reinterpret_cast<uint64_t>(p);
        emit(s, [&](RecordWriter& e) { return e.free(t, a); });
        release(s);
    }
}

// Writer side. Takes every thread's full buffers and its current one (in record order per
// thread) and appends them to out; empty threads contribute nothing. return_buffers gives them
// back to the pool once the writer is done with them.
void collect_buffers(std::vector<Buffer*>& out);
// The cycle between flushes, without membarrier, when at most one program thread has ever
// recorded: that thread's full buffers (not its current one) and our threads' buffers. Sets
// *cut to the time below which every event is collected. Returns Taken, Nothing (no full
// buffer: the next flush collects everything) or Full (more threads: collect_buffers).
enum class Handed { Taken, Nothing, Full };
Handed collect_handed(std::vector<Buffer*>& out, uint64_t* cut);
void return_buffers(std::vector<Buffer*>& bufs);

// Thread lifetime and fork (called from lifecycle.cpp).
// Creates the pthread key whose destructor marks a thread exited; registers membarrier.
void recorder_init();
void recorder_fork_prepare();
void recorder_fork_parent();
void recorder_fork_child();  // drops other threads' state, restarts this thread's buffer

}  // namespace pmt::preload
