// The interposed allocation functions. Each one: guard, forward to the next definition,
// record, return. Recording takes the thread's buffer flag before reading the clock and drops
// it when the record is complete; free/munmap are timed before the real call, allocations after.
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>

#include "own_heap.hpp"
#include "recorder.hpp"
#include "runtime.hpp"
#include "side_ring.hpp"

using pmt::AllocKind;
using namespace pmt::preload;

namespace {

inline uint64_t addr(const void* p) { return reinterpret_cast<uint64_t>(p); }

// The program must see the real call's errno only. Recording after the real call makes no
// call that can set errno; each cold path that can (thread creation, throttle_wait,
// acquire_slow, hand_off_full, the stack walker's interning, the clock's set-up) holds an
// ErrnoGuard (runtime.hpp), so no hook pays for __errno_location on every event.

// --- The fast path of malloc, calloc and free ---
// The common event: tracing, the thread has its state, none of g_slow's reasons (recorder.hpp:
// no throttle, membarrier's light flag, the TSC clock), an address below 2^57 and room in the
// buffer. Its steps are those of record_alloc/record_free with the general checks folded into
// one word; anything else goes, by a tail call, to the general path, entered as if the fast
// path had not started (the guard held, the buffer flag not held): the hook's frame then
// needs no register saves for the cold paths. A fast path that set its buffer flag and then
// finds the writer collecting, or the buffer full, drops the flag before it has read the
// clock, which is what acquire_slow does first too.

// The general path, after a fast path gave up. Called with the traced guard held; each ends
// the hook (end_traced) and returns what the hook returns.
[[gnu::cold, gnu::noinline]] void* alloc_general(AllocKind kind, void* p, uint64_t size) {
    if (g_slow.bits.load(std::memory_order_relaxed) & kSlowClock) clock_events_ready();
    record_alloc(kind, p, size);
    end_traced();
    return p;
}
// The buffer flag held and the stack captured, but no room in the buffer or a wide address.
[[gnu::cold, gnu::noinline]] void* alloc_finish_general(ThreadState* s, AllocKind kind, void* p,
                                                        uint64_t size, uint64_t stack) {
    uint64_t t = event_now_ns();
    emit(s, [&](RecordWriter& e) { return e.alloc(kind, t, addr(p), size, stack); });
    release(s);
    end_traced();
    return p;
}
[[gnu::cold, gnu::noinline]] void free_general(void* p) {
    if (g_slow.bits.load(std::memory_order_relaxed) & kSlowClock) clock_events_ready();
    record_free(p);
    g_real.free(p);
    end_traced();
}

// After a successful allocation, with the traced guard held; ends the hook.
[[gnu::always_inline]] inline void* alloc_fast(AllocKind kind, void* p, uint64_t size) {
#if defined(__x86_64__)
    ThreadState* s = t_state;
    // After the real call, in program order: like event_now_ns's load of g_event_rdtsc, it
    // sees the flag cleared by a thread that handed this block over (runtime.hpp).
    const uint32_t w = g_slow.bits.load(std::memory_order_acquire);
    if (PMT_UNLIKELY(!fast_path_allowed(w) || !s)) return alloc_general(kind, p, size);
    s->busy.store(1, std::memory_order_relaxed);  // set_busy's light form (kSlowHeavy clear)
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (PMT_UNLIKELY(s->collecting.load(std::memory_order_acquire))) acquire_slow(s);
    // The clock is read before the stack walk, whose loads and stores then run while the
    // reading completes (the buffer flag is held, the real call is over: both rules hold).
    const uint64_t tsc = event_tsc(!(w & kSlowOrdered));
    const uint64_t stack = capture_stack(s);
    // After the walk: it may have stored definitions, even handed the buffer off. (The
    // address is tested here too: before the call its test kept a register over the call.)
    if (PMT_UNLIKELY(!s->rec.fast_fits() || (addr(p) >> rec::kTagShift) != 0))
        return alloc_finish_general(s, kind, p, size, stack);
    s->rec.fast_alloc(kind, tsc_trace_ns(tsc), addr(p), size, stack);
    release(s);
    end_traced();
    return p;
#else
    return alloc_general(kind, p, size);
#endif
}

// realloc and reallocarray: the buffer is held across the real call, so that the old block's
// release (t_before) cannot be overtaken by an epoch while the call runs.
template <class Call>
void* traced_realloc(AllocKind kind, void* old, uint64_t size, Call&& call) {
    ThreadState* s = thread_state();
    if (!s) return call();
    acquire(s);
    uint64_t t0 = event_now_ns();
    void* p = call();
    if (p || size == 0) {  // a failed call leaves the old block live: not recorded
        uint64_t stack = p ? capture_stack(s) : 0;
        uint64_t t1 = event_now_ns();
        uint64_t n = p ? size : 0;
        emit(s, [&](RecordWriter& e) {
            return e.realloc(kind, t0, t1, addr(old), addr(p), n, stack);
        });
    }
    release(s);
    return p;
}

// A call that makes a new block and releases none (malloc, calloc, realloc and reallocarray of
// NULL), with the traced guard, and the block's record; a failed call is not recorded.
// realloc(NULL, n) is an ALLOC of the realloc kind in the stream, with no free half
// (FORMAT.md): recorded as the allocation it is, on malloc's path, not as a realloc record.
template <class Call>
[[gnu::always_inline]] inline void* traced_alloc(AllocKind kind, uint64_t size, Call&& call) {
    t_in_hook = kGuardHook;  // a TracedGuard, ended by alloc_fast or below
    void* p = call();
    if (PMT_LIKELY(p != nullptr)) return alloc_fast(kind, p, size);
    end_traced();
    return p;
}

[[gnu::cold, gnu::noinline]] void* bootstrap_malloc(size_t n) {
    resolve_real();
    return g_real.malloc ? ::malloc(n) : bootstrap_alloc(n);  // arena while dlsym runs
}

// realloc of a block of ours: our heap's, or, without one, the bootstrap arena's (copied out).
[[gnu::cold, gnu::noinline]] void* realloc_own(void* old, size_t n) {
    if (own_heap_on()) return own_realloc(old, n);
    void* p = ::malloc(n);
    if (p) {
        size_t old_n = bootstrap_block_size(old);
        memcpy(p, old, old_n < n ? old_n : n);
    }
    return p;
}

// Called with the guard already held: our own code, the allocator's, or a signal handler that
// interrupted a hook (side_ring.hpp). Only the last goes to the side ring. Cold, and errno is
// the real call's.
#define PMT_CALLER __builtin_return_address(0)
[[gnu::cold, gnu::noinline]] void nested_slow(const void* caller, const SideEvent& e) {
    ErrnoGuard keep;
    if (side_wanted(caller)) side_push(e);
}
// On the nested path: whether the kGuardInit state ended with this call, the first from
// outside our code (own_init_call, runtime.hpp); the hook then starts over, traced. A test
// here, not before the nested path, leaves the fast path's code as it was.
inline bool own_init_ended(const void* caller) {
    return t_in_hook == kGuardInit && !own_init_call(caller);
}
// On the nested path, after own_init_ended: whether the block is for our own code, and so
// comes from our heap (own_heap.hpp). kGuardOwn and kGuardInit: ours. kGuardHook: the real
// allocator's own calls (glibc's reallocarray is a tail call of realloc: the caller looks like
// our hook) or a signal handler's, so the program's; our code inside a hook allocates with
// internal_malloc and co. kGuardPass: the program's.
inline bool own_call() {
    return own_heap_on() && (t_in_hook == kGuardOwn || t_in_hook == kGuardInit);
}
// Whether glibc's allocator is off limits to this thread: one of ours, once
// __libc_single_threaded has been kept set (glibc's malloc would race the program's thread,
// which takes no lock). None of the program's blocks is expected to reach our code there
// (everything our threads release is ours); such a block would be left alone.
inline bool glibc_off_limits() { return t_internal_thread && single_threaded_kept(); }
// A block of the program's allocator released by our code.
inline void forward_free(void* p) {
    if (PMT_UNLIKELY(glibc_off_limits())) return;
    g_real.free(p);
}
// realloc of a block of the program's allocator by our code (old not ours, not null).
[[gnu::cold, gnu::noinline]] void* own_code_realloc(void* old, size_t n) {
    if (!glibc_off_limits()) return g_real.realloc(old, n);
    void* p = own_malloc(n);  // and the old block left alone, as in forward_free
    if (p) {
        size_t have = malloc_usable_size(old);  // reads the chunk's header, takes no lock
        memcpy(p, old, have < n ? have : n);
    }
    return p;
}
inline int own_posix_memalign(void** out, size_t align, size_t n) {
    if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
    void* p = own_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
// Our own threads and code (kGuardOwn) only forward: not even the event is made for them
// (make() runs for a traced hook's nested call only). Zeroing a SideEvent that was then
// dropped took ~35 of the ~45 instructions of malloc's and free's nested path (callgrind), the
// path every request above pymalloc's 512 bytes takes with Python's allocators traced.
template <class Make>
inline void nested(const void* caller, Make make) {
    if (PMT_UNLIKELY(t_in_hook == kGuardHook)) nested_slow(caller, make());
}
inline SideEvent side_alloc(AllocKind kind, const void* p, uint64_t size) {
    SideEvent e{};
    e.op = SideOp::Alloc;
    e.kind = kind;
    e.addr = addr(p);
    e.size = size;
    return e;
}
// A failed call leaves the old block live: not recorded (as in traced_realloc).
inline void* nested_realloc(AllocKind kind, void* old, uint64_t size, void* p, const void* caller) {
    if (p || size == 0) {
        nested(caller, [&] {
            SideEvent e = side_alloc(kind, p, p ? size : 0);
            e.op = SideOp::Realloc;
            e.old_addr = addr(old);
            return e;
        });
    }
    return p;
}
inline void* nested_mmap(void* p, size_t len, int prot, int flags, int fd, const void* caller) {
    if (p != MAP_FAILED) {
        nested(caller, [&] {
            SideEvent e{};
            e.op = SideOp::Mmap;
            e.addr = addr(p);
            e.size = len;
            e.prot = static_cast<uint32_t>(prot);
            e.flags = static_cast<uint32_t>(flags);
            e.fd = fd;
            return e;
        });
    }
    return p;
}

// The nested path, out of line: the hooks' fast path makes no room for it.
// own_calls: malloc's, calloc's and free's first forward our own code's calls (kGuardOwn) by a
// tail call, and go on out of line again: the forwarding needs none of the frame that the
// others keep for their work after the real call. (With Python's allocators traced, every
// request pymalloc passes to malloc, above 512 bytes, is one.)
template <class Body>
[[gnu::cold, gnu::noinline]] auto out_of_line(Body body) {
    return body();
}

template <class F>
inline F& real(F*& slot) {
    if (PMT_UNLIKELY(!slot)) resolve_real();
    return *slot;
}

}  // namespace

PMT_EXPORT void* malloc(size_t n) noexcept {
    if (PMT_UNLIKELY(!g_real.malloc)) return bootstrap_malloc(n);
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (t_in_hook == kGuardPass) return g_real.malloc(n);  // (own_calls)
            if (t_in_hook == kGuardOwn) return internal_malloc(n);
            return out_of_line([=] {
                if (own_init_ended(caller)) return ::malloc(n);
                if (own_call()) return own_malloc(n);
                void* p = g_real.malloc(n);
                if (p) nested(caller, [&] { return side_alloc(AllocKind::Malloc, p, n); });
                return p;
            });
        });
    if (!tracing()) return g_real.malloc(n);
    return traced_alloc(AllocKind::Malloc, n, [&] { return g_real.malloc(n); });
}

PMT_EXPORT void* calloc(size_t n, size_t m) noexcept {
    if (PMT_UNLIKELY(!g_real.calloc)) {
        resolve_real();
        if (!g_real.calloc) {  // dlsym's own calloc: the arena is static, hence zeroed
            size_t total;
            return __builtin_mul_overflow(n, m, &total) ? nullptr : bootstrap_alloc(total);
        }
    }
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (t_in_hook == kGuardPass) return g_real.calloc(n, m);  // (own_calls)
            if (t_in_hook == kGuardOwn) return internal_calloc(n, m);
            return out_of_line([=] {
                if (own_init_ended(caller)) return ::calloc(n, m);
                if (own_call()) return own_calloc(n, m);
                void* p = g_real.calloc(n, m);
                if (p) nested(caller, [&] { return side_alloc(AllocKind::Calloc, p, n * m); });
                return p;
            });
        });
    if (!tracing()) return g_real.calloc(n, m);
    return traced_alloc(AllocKind::Calloc, n * m, [&] { return g_real.calloc(n, m); });
}

PMT_EXPORT void free(void* p) noexcept {
    if (PMT_UNLIKELY(in_own_heap(p))) return own_free(p);  // (a bootstrap block: nothing)
    if (!p) return;
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (t_in_hook == kGuardPass && g_real.free) return g_real.free(p);  // (own_calls)
            if (t_in_hook == kGuardOwn && g_real.free) return forward_free(p);
            return out_of_line([=] {
                if (own_init_ended(caller)) return ::free(p);
                real(g_real.free)(p);
                return nested(caller, [&] {
                    SideEvent e{};
                    e.op = SideOp::Free;
                    e.addr = addr(p);
                    return e;
                });
            });
        });
#if defined(__x86_64__)
    // tracing() and the fast path's reasons in one load (kSlowOff mirrors g_tracing).
    const uint32_t w = g_slow.bits.load(std::memory_order_acquire);
    if (w & kSlowOff) return g_real.free(p);
    t_in_hook = kGuardHook;  // a TracedGuard, ended here or by free_general
    ThreadState* s = t_state;
    if (PMT_UNLIKELY(!fast_path_allowed(w) || !s || (addr(p) >> rec::kTagShift) != 0))
        return free_general(p);
    s->busy.store(1, std::memory_order_relaxed);  // set_busy's light form (kSlowHeavy clear)
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // The writer collecting, or (the buffer ours once it is not) no room: nothing recorded
    // yet, the general path starts over.
    if (PMT_UNLIKELY(s->collecting.load(std::memory_order_acquire) || !s->rec.fast_fits())) {
        release(s);
        return free_general(p);
    }
    s->rec.fast_free(fast_free_time(s, w, addr(p)), addr(p));
    release(s);
    g_real.free(p);
    end_traced();
#else
    if (!tracing()) return g_real.free(p);
    t_in_hook = kGuardHook;
    free_general(p);
#endif
}

PMT_EXPORT void* realloc(void* old, size_t n) noexcept {
    if (PMT_UNLIKELY(in_own_heap(old))) return realloc_own(old, n);
    if (PMT_UNLIKELY(!g_real.realloc)) {
        resolve_real();
        if (!g_real.realloc) return old ? nullptr : bootstrap_alloc(n);
    }
    if (PMT_UNLIKELY(t_in_hook)) {
        if (own_init_ended(PMT_CALLER)) return ::realloc(old, n);
        if (own_call()) return old ? own_code_realloc(old, n) : own_malloc(n);
        return nested_realloc(AllocKind::Realloc, old, n, g_real.realloc(old, n), PMT_CALLER);
    }
    if (!tracing()) return g_real.realloc(old, n);
    if (!old) return traced_alloc(AllocKind::Realloc, n, [&] { return g_real.realloc(old, n); });
    TracedGuard g;
    return traced_realloc(AllocKind::Realloc, old, n, [&] { return g_real.realloc(old, n); });
}

PMT_EXPORT void* reallocarray(void* old, size_t n, size_t m) noexcept {
    size_t total = 0;
    if (PMT_UNLIKELY(in_own_heap(old)))
        return __builtin_mul_overflow(n, m, &total) ? nullptr : realloc_own(old, total);
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::reallocarray(old, n, m);
            if (own_call()) {
                size_t bytes = 0;
                if (__builtin_mul_overflow(n, m, &bytes)) {
                    errno = ENOMEM;
                    return static_cast<void*>(nullptr);
                }
                return old ? own_code_realloc(old, bytes) : own_malloc(bytes);
            }
            void* p = real(g_real.reallocarray)(old, n, m);
            size_t total = 0;
            if (__builtin_mul_overflow(n, m, &total)) return p;  // ENOMEM, old block kept
            return nested_realloc(AllocKind::ReallocArray, old, total, p, caller);
        });
    if (!tracing()) return real(g_real.reallocarray)(old, n, m);
    if (__builtin_mul_overflow(n, m, &total)) {
        TracedGuard g;
        return g_real.reallocarray(old, n, m);  // ENOMEM
    }
    if (!old)
        return traced_alloc(AllocKind::ReallocArray, total,
                            [&] { return g_real.reallocarray(old, n, m); });
    TracedGuard g;
    return traced_realloc(AllocKind::ReallocArray, old, total,
                          [&] { return g_real.reallocarray(old, n, m); });
}

PMT_EXPORT int posix_memalign(void** out, size_t align, size_t n) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::posix_memalign(out, align, n);
            if (own_call()) return own_posix_memalign(out, align, n);
            int r = real(g_real.posix_memalign)(out, align, n);
            if (r == 0)
                nested(caller, [&] { return side_alloc(AllocKind::PosixMemalign, *out, n); });
            return r;
        });
    if (!tracing()) return real(g_real.posix_memalign)(out, align, n);
    TracedGuard g;
    int r = g_real.posix_memalign(out, align, n);
    if (r == 0) record_alloc(AllocKind::PosixMemalign, *out, n);
    return r;
}

PMT_EXPORT void* aligned_alloc(size_t align, size_t n) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::aligned_alloc(align, n);
            if (own_call()) return own_memalign(align, n);
            void* p = real(g_real.aligned_alloc)(align, n);
            if (p) nested(caller, [&] { return side_alloc(AllocKind::AlignedAlloc, p, n); });
            return p;
        });
    if (!tracing()) return real(g_real.aligned_alloc)(align, n);
    TracedGuard g;
    void* p = g_real.aligned_alloc(align, n);
    if (p) record_alloc(AllocKind::AlignedAlloc, p, n);
    return p;
}

PMT_EXPORT void* memalign(size_t align, size_t n) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::memalign(align, n);
            if (own_call()) return own_memalign(align, n);
            void* p = real(g_real.memalign)(align, n);
            if (p) nested(caller, [&] { return side_alloc(AllocKind::Memalign, p, n); });
            return p;
        });
    if (!tracing()) return real(g_real.memalign)(align, n);
    TracedGuard g;
    void* p = g_real.memalign(align, n);
    if (p) record_alloc(AllocKind::Memalign, p, n);
    return p;
}

PMT_EXPORT void* valloc(size_t n) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::valloc(n);
            if (own_call()) return own_memalign(4096, n);
            void* p = real(g_real.valloc)(n);
            if (p) nested(caller, [&] { return side_alloc(AllocKind::Valloc, p, n); });
            return p;
        });
    if (!tracing()) return real(g_real.valloc)(n);
    TracedGuard g;
    void* p = g_real.valloc(n);
    if (p) record_alloc(AllocKind::Valloc, p, n);
    return p;
}

PMT_EXPORT void* pvalloc(size_t n) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::pvalloc(n);
            if (own_call()) return own_memalign(4096, (n + 4095) & ~size_t{4095});
            void* p = real(g_real.pvalloc)(n);
            if (p) nested(caller, [&] { return side_alloc(AllocKind::Pvalloc, p, n); });
            return p;
        });
    if (!tracing()) return real(g_real.pvalloc)(n);
    TracedGuard g;
    void* p = g_real.pvalloc(n);
    if (p) record_alloc(AllocKind::Pvalloc, p, n);
    return p;
}

// --- mappings ------------------------------------------------------------------------------

namespace {

void* traced_mmap(void* (*fn)(void*, size_t, int, int, int, off_t), void* a, size_t len, int prot,
                  int flags, int fd, off_t off) {
    TracedGuard g;
    void* p = fn(a, len, prot, flags, fd, off);
    if (p == MAP_FAILED) return p;
    if (ThreadState* s = thread_state()) {
        acquire(s);
        uint64_t stack = capture_stack(s);
        uint64_t t = event_now_ns();
        emit(s, [&](RecordWriter& e) {
            return e.mmap(t, addr(p), len, static_cast<uint32_t>(prot),
                          static_cast<uint32_t>(flags), fd, stack);
        });
        release(s);
    }
    return p;
}

}  // namespace

PMT_EXPORT void* mmap(void* a, size_t len, int prot, int flags, int fd, off_t off) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::mmap(a, len, prot, flags, fd, off);
            return nested_mmap(real(g_real.mmap)(a, len, prot, flags, fd, off), len, prot, flags,
                               fd, caller);
        });
    if (!tracing()) return real(g_real.mmap)(a, len, prot, flags, fd, off);
    return traced_mmap(g_real.mmap, a, len, prot, flags, fd, off);
}

PMT_EXPORT void* mmap64(void* a, size_t len, int prot, int flags, int fd, off_t off) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::mmap64(a, len, prot, flags, fd, off);
            return nested_mmap(real(g_real.mmap64)(a, len, prot, flags, fd, off), len, prot, flags,
                               fd, caller);
        });
    if (!tracing()) return real(g_real.mmap64)(a, len, prot, flags, fd, off);
    return traced_mmap(g_real.mmap64, a, len, prot, flags, fd, off);
}

// Timed before the call and held across it: only a successful unmap is recorded.
PMT_EXPORT int munmap(void* a, size_t len) noexcept {
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::munmap(a, len);
            int r = real(g_real.munmap)(a, len);
            if (r == 0) {
                nested(caller, [&] {
                    SideEvent e{};
                    e.op = SideOp::Munmap;
                    e.addr = addr(a);
                    e.size = len;
                    return e;
                });
            }
            return r;
        });
    if (!tracing()) return real(g_real.munmap)(a, len);
    TracedGuard g;
    ThreadState* s = thread_state();
    if (!s) return g_real.munmap(a, len);
    acquire(s);
    uint64_t t = event_now_ns();
    int r = g_real.munmap(a, len);
    if (r == 0) emit(s, [&](RecordWriter& e) { return e.munmap(t, addr(a), len); });
    release(s);
    return r;
}

// mremap is variadic: the new address is passed only with MREMAP_FIXED.
PMT_EXPORT void* mremap(void* old, size_t old_len, size_t new_len, int flags, ...) noexcept {
    void* target = nullptr;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        target = va_arg(ap, void*);
        va_end(ap);
    }
    if (PMT_UNLIKELY(t_in_hook))
        return out_of_line([=, caller = PMT_CALLER] {
            if (own_init_ended(caller)) return ::mremap(old, old_len, new_len, flags, target);
            void* p = real(g_real.mremap)(old, old_len, new_len, flags, target);
            if (p != MAP_FAILED) {
                nested(caller, [&] {
                    SideEvent e{};
                    e.op = SideOp::Mremap;
                    e.old_addr = addr(old);
                    e.old_size = old_len;
                    e.addr = addr(p);
                    e.size = new_len;
                    return e;
                });
            }
            return p;
        });
    if (!tracing()) return real(g_real.mremap)(old, old_len, new_len, flags, target);
    TracedGuard g;
    ThreadState* s = thread_state();
    if (!s) return g_real.mremap(old, old_len, new_len, flags, target);
    acquire(s);
    uint64_t t0 = event_now_ns();
    void* p = g_real.mremap(old, old_len, new_len, flags, target);
    if (p != MAP_FAILED) {
        uint64_t stack = capture_stack(s);
        uint64_t t1 = event_now_ns();
        emit(s, [&](RecordWriter& e) {
            return e.mremap(t0, t1, addr(old), old_len, addr(p), new_len, stack);
        });
    }
    release(s);
    return p;
}
