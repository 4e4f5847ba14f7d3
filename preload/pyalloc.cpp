// Wrappers of Python's allocator domains (pyalloc.hpp). Each wrapper calls the allocator it
// replaced with the pass guard held (kGuardPass: everything underneath, pymalloc's arena mmaps
// and its malloc for large requests, goes untraced to the program's allocator) and records the
// call like the malloc hooks do (hooks.cpp): the thread's buffer flag, the Python stack, the
// clock. MEM and OBJ require the GIL, so the wrappers run with it held; they take no lock the
// hooks do not. A free of a block made before the wrapping (or through an allocator that was
// not wrapped then) is a free of an address the writer does not hold: an unknown free.
#include <Python.h>
// Python.h first (it sets feature macros the C library headers read).
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "pyalloc.hpp"
#include "recorder.hpp"
#include "side_ring.hpp"

namespace pmt::preload {

std::atomic<bool> g_pyalloc_on{false};

namespace {

using pmt::AllocKind;

inline uint64_t addr(const void* p) { return reinterpret_cast<uint64_t>(p); }

// One wrapping of one domain: the allocator it calls and the kinds it records. A domain wrapped
// again (its allocator was replaced) gets a new slot, so an allocator that wrapped ours (e.g.
// tracemalloc's) and is wrapped in turn never leads back into the same slot.
struct Wrap {
    PyMemAllocatorEx prev;
    AllocKind malloc_kind, calloc_kind, realloc_kind;
};
constexpr int kMaxWraps = 16;
Wrap g_wraps[kMaxWraps];
int g_wrap_count = 0;  // written with the GIL held (or before Py_Initialize)

struct Api {
    void (*get)(PyMemAllocatorDomain, PyMemAllocatorEx*);
    void (*set)(PyMemAllocatorDomain, PyMemAllocatorEx*);
    void (*get_arena)(PyObjectArenaAllocator*);
    void (*set_arena)(PyObjectArenaAllocator*);
};
Api g_api;
PyObjectArenaAllocator g_prev_arena;
bool g_active = false;

// Not traced: our own code, a hook's nested call, or tracing off. (Any other guard value is a
// state that a call from the program's code ends, as this one is: it is traced.)
inline bool guarded() {
    return t_in_hook == kGuardOwn || t_in_hook == kGuardHook || t_in_hook == kGuardPass;
}
inline bool pass() { return guarded() || !tracing(); }

// The fast paths of hooks.cpp's malloc and free (see there): tracing, the thread has its state,
// none of g_slow's reasons, an address below 2^57 and room in the buffer. Return false, having
// recorded nothing and with the buffer flag dropped, when the general path must do it.
[[gnu::always_inline]] inline bool fast_alloc(AllocKind kind, const void* p, uint64_t size) {
#if defined(__x86_64__)
    ThreadState* s = t_state;
    const uint32_t bits = g_slow.bits.load(std::memory_order_acquire);
    if (PMT_UNLIKELY(!fast_path_allowed(bits) || !s || (addr(p) >> rec::kTagShift) != 0))
        return false;
    s->busy.store(1, std::memory_order_relaxed);  // set_busy's light form (kSlowHeavy clear)
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (PMT_UNLIKELY(s->collecting.load(std::memory_order_acquire))) acquire_slow(s);
    const uint64_t tsc = event_tsc(!(bits & kSlowOrdered));
    const uint64_t stack = capture_stack(s);
    if (PMT_UNLIKELY(!s->rec.fast_fits())) {  // the walk's definitions filled the buffer
        const uint64_t t = event_now_ns();
        emit(s, [&](RecordWriter& e) { return e.alloc(kind, t, addr(p), size, stack); });
    } else {
        s->rec.fast_alloc(kind, tsc_trace_ns(tsc), addr(p), size, stack);
    }
    release(s);
    return true;
#else
    (void)kind, (void)p, (void)size;
    return false;
#endif
}

// bits: g_slow's word, loaded by the caller before its guard.
[[gnu::always_inline]] inline bool fast_free(const void* p, uint32_t bits) {
#if defined(__x86_64__)
    ThreadState* s = t_state;
    if (PMT_UNLIKELY(!fast_path_allowed(bits) || !s || (addr(p) >> rec::kTagShift) != 0))
        return false;
    s->busy.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (PMT_UNLIKELY(s->collecting.load(std::memory_order_acquire) || !s->rec.fast_fits())) {
        release(s);
        return false;
    }
    s->rec.fast_free(fast_free_time(s, bits, addr(p)), addr(p));
    release(s);
    return true;
#else
    (void)p, (void)bits;
    return false;
#endif
}

[[gnu::cold, gnu::noinline]] void alloc_general(AllocKind kind, const void* p, uint64_t size) {
    if (g_slow.bits.load(std::memory_order_relaxed) & kSlowClock) clock_events_ready();
    record_alloc(kind, p, size);
}

[[gnu::cold, gnu::noinline]] void free_general(const void* p) {
    if (g_slow.bits.load(std::memory_order_relaxed) & kSlowClock) clock_events_ready();
    record_free(p);
}

// The allocator's call (made with the pass guard, as everything underneath it is) and
// the record of the block it returned; a failed call is not recorded.
template <class Call>
[[gnu::always_inline]] inline void* wrapped_alloc(AllocKind kind, uint64_t size, Call&& call) {
    t_in_hook = kGuardPass;
    void* p = call();
    t_in_hook = kGuardHook;
    if (PMT_LIKELY(p != nullptr) && !fast_alloc(kind, p, size)) alloc_general(kind, p, size);
    end_traced();
    return p;
}

void* w_malloc(void* ctx, size_t n) {
    const Wrap& w = *static_cast<const Wrap*>(ctx);
    if (pass()) return w.prev.malloc(w.prev.ctx, n);
    return wrapped_alloc(w.malloc_kind, n, [&] { return w.prev.malloc(w.prev.ctx, n); });
}

void* w_calloc(void* ctx, size_t nelem, size_t elsize) {
    const Wrap& w = *static_cast<const Wrap*>(ctx);
    if (pass()) return w.prev.calloc(w.prev.ctx, nelem, elsize);
    const uint64_t size = uint64_t(nelem) * elsize;  // recorded only when p != NULL: no overflow
    return wrapped_alloc(w.calloc_kind, size,
                         [&] { return w.prev.calloc(w.prev.ctx, nelem, elsize); });
}

// As traced_realloc (hooks.cpp): the buffer flag held across the call. The domains' realloc
// never frees and returns NULL (a size of 0 is served as 1 byte): NULL is a failure, the old
// block stays live, nothing is recorded.
// The common case takes fast_alloc's path: none of g_slow's reasons and the thread has its
// state, so the flag is set in its light form and both readings are the TSC's, made into trace
// time as event_now_ns would (tsc_trace_ns); the record is the same. (regex with the option:
// 236 K reallocs, ~213 instructions each besides the real call and the stack walk; callgrind.)
void* w_realloc(void* ctx, void* old, size_t n) {
    const Wrap& w = *static_cast<const Wrap*>(ctx);
    if (pass()) return w.prev.realloc(w.prev.ctx, old, n);
    // realloc(NULL, n) releases nothing: the stream has an ALLOC of the realloc kind for it
    // and no free half (FORMAT.md), so it is recorded as the allocation it is, on w_malloc's
    // path; the writer can then take it and its free as a pair (CPython's regular expressions
    // start each match's stack so: 3.1 M of regex's 3.1 M reallocs with the option).
    if (!old)
        return wrapped_alloc(w.realloc_kind, n, [&] { return w.prev.realloc(w.prev.ctx, old, n); });
    t_in_hook = kGuardHook;
#if defined(__x86_64__)
    if (ThreadState* f = t_state) {
        const uint32_t bits = g_slow.bits.load(std::memory_order_acquire);
        if (PMT_LIKELY(fast_path_allowed(bits))) {
            f->busy.store(1, std::memory_order_relaxed);  // set_busy's light form
            std::atomic_signal_fence(std::memory_order_seq_cst);
            if (PMT_UNLIKELY(f->collecting.load(std::memory_order_acquire))) acquire_slow(f);
            const uint64_t tsc0 = event_tsc(!(bits & kSlowOrdered));
            t_in_hook = kGuardPass;
            void* p = w.prev.realloc(w.prev.ctx, old, n);
            t_in_hook = kGuardHook;
            if (p) {
                const uint64_t stack = capture_stack(f);
                // After the call and the walk, as event_now_ns reads g_event_rdtsc then.
                const uint32_t now = g_slow.bits.load(std::memory_order_acquire);
                const uint64_t t1 = tsc_trace_ns(event_tsc(!(now & kSlowOrdered)));
                const uint64_t t0 = tsc_trace_ns(tsc0);
                emit(f, [&](RecordWriter& e) {
                    return e.realloc(w.realloc_kind, t0, t1, addr(old), addr(p), n, stack);
                });
            }
            release(f);
            end_traced();
            return p;
        }
    }
#endif
    ThreadState* s = thread_state();
    if (!s) {
        t_in_hook = kGuardPass;
        void* p = w.prev.realloc(w.prev.ctx, old, n);
        end_traced();
        return p;
    }
    acquire(s);
    const uint64_t t0 = event_now_ns();
    t_in_hook = kGuardPass;
    void* p = w.prev.realloc(w.prev.ctx, old, n);
    t_in_hook = kGuardHook;
    if (p) {
        const uint64_t stack = capture_stack(s);
        const uint64_t t1 = event_now_ns();
        emit(s, [&](RecordWriter& e) {
            return e.realloc(w.realloc_kind, t0, t1, addr(old), addr(p), n, stack);
        });
    }
    release(s);
    end_traced();
    return p;
}

// Timed before the real free, as the free hook is, which also reads tracing() and the fast
// path's reasons in one load (kSlowOff mirrors g_tracing).
void w_free(void* ctx, void* p) {
    const Wrap& w = *static_cast<const Wrap*>(ctx);
    if (!p || guarded()) return w.prev.free(w.prev.ctx, p);
    const uint32_t bits = g_slow.bits.load(std::memory_order_acquire);
    if (bits & kSlowOff) return w.prev.free(w.prev.ctx, p);
    t_in_hook = kGuardHook;
    if (!fast_free(p, bits)) free_general(p);
    t_in_hook = kGuardPass;
    w.prev.free(w.prev.ctx, p);
    end_traced();
}

// pymalloc's arenas: never recorded (their objects are). Mostly reached from inside a domain
// wrapper (the guard is held already); this covers pymalloc calls that are not.
void* w_arena_alloc(void*, size_t n) {
    const uint8_t saved = guarded() ? t_in_hook : 0;
    t_in_hook = saved ? saved : uint8_t(kGuardPass);
    void* p = g_prev_arena.alloc(g_prev_arena.ctx, n);
    t_in_hook = saved;
    return p;
}
void w_arena_free(void*, void* p, size_t n) {
    const uint8_t saved = guarded() ? t_in_hook : 0;
    t_in_hook = saved ? saved : uint8_t(kGuardPass);
    g_prev_arena.free(g_prev_arena.ctx, p, n);
    t_in_hook = saved;
}

// An allocator with all four functions (only such a one can be wrapped).
bool complete(const PyMemAllocatorEx& a) { return a.malloc && a.calloc && a.realloc && a.free; }

// Wraps the domain's current allocator in a new slot; false when the slots are used up.
bool wrap(PyMemAllocatorDomain domain) {
    if (g_wrap_count >= kMaxWraps) return false;
    Wrap& w = g_wraps[g_wrap_count];
    g_api.get(domain, &w.prev);
    if (!complete(w.prev)) return false;
    const bool obj = domain == PYMEM_DOMAIN_OBJ;
    w.malloc_kind = obj ? AllocKind::PyObjectMalloc : AllocKind::PyMemMalloc;
    w.calloc_kind = obj ? AllocKind::PyObjectCalloc : AllocKind::PyMemCalloc;
    w.realloc_kind = obj ? AllocKind::PyObjectRealloc : AllocKind::PyMemRealloc;
    ++g_wrap_count;
    PyMemAllocatorEx mine{&w, w_malloc, w_calloc, w_realloc, w_free};
    g_api.set(domain, &mine);
    return true;
}

// Ours is the outermost allocator of the domain.
bool wrapped(PyMemAllocatorDomain domain) {
    PyMemAllocatorEx cur;
    g_api.get(domain, &cur);
    return cur.malloc == w_malloc;
}

template <class F>
F sym(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

bool pyalloc_init() {
    const char* v = secure_getenv("PYMEMTRACE_PYTHON_ALLOCATORS");
    if (!v || strcmp(v, "1") != 0) return false;
    if (g_active) return true;
    g_api.get = sym<decltype(g_api.get)>("PyMem_GetAllocator");
    g_api.set = sym<decltype(g_api.set)>("PyMem_SetAllocator");
    g_api.get_arena = sym<decltype(g_api.get_arena)>("PyObject_GetArenaAllocator");
    g_api.set_arena = sym<decltype(g_api.set_arena)>("PyObject_SetArenaAllocator");
    if (!g_api.get || !g_api.set || !g_api.get_arena || !g_api.set_arena) return false;
    // Both domains or neither: MEM wrapped alone would record Python's blocks in a trace
    // whose header says they are not traced (the flag below is set only on success).
    for (PyMemAllocatorDomain d : {PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ}) {
        PyMemAllocatorEx cur;
        g_api.get(d, &cur);
        if (!complete(cur)) return false;
    }
    g_api.get_arena(&g_prev_arena);
    if (g_prev_arena.alloc && g_prev_arena.free) {
        PyObjectArenaAllocator mine{nullptr, w_arena_alloc, w_arena_free};
        g_api.set_arena(&mine);
    }
    // Cannot fail now: both are complete and no slot is used yet (g_active is false, so this
    // is the first wrapping).
    wrap(PYMEM_DOMAIN_MEM);
    wrap(PYMEM_DOMAIN_OBJ);
    g_active = true;
    g_pyalloc_on.store(true, std::memory_order_relaxed);
    return true;
}

bool pyalloc_active() { return g_active; }

void pyalloc_recheck() {
    for (PyMemAllocatorDomain d : {PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ}) {
        if (!wrapped(d)) wrap(d);
    }
}

}  // namespace pmt::preload
