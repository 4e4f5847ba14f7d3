// Python source-line stacks of the calling thread for CPython 3.11 (API in python_stack.hpp):
// finds the interpreter with dlsym, walks this thread's _PyInterpreterFrame chain without the
// GIL, and reuses the previous walk's ids for the outer frames that did not move. Interning
// lives in pystack_intern.cpp. CPython's headers give layouts only; nothing is linked.
#include "pystack_cache.hpp"
#include "runtime.hpp"
// pystack_cache.hpp brings Python.h first.
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "own_blocks.hpp"
#include "pyalloc.hpp"

namespace pmt::preload {
namespace {

using pystack::Level;
using pystack::Memo;

// kMaxSteps bounds the walk even if a frame chain were corrupt and cyclic.
constexpr int kMaxSteps = 4096;
// How far above the walker's own stack frame the interpreter's C frames may be.
constexpr uintptr_t kMaxStackSpan = uintptr_t(256) << 20;
// Stack nodes a thread may intern before its caches start afresh (memory bound).
constexpr size_t kMaxStackNodes = size_t(1) << 20;

// What the walker needs from the interpreter, resolved once by python_init().
struct Interpreter {
    PyThreadState* (*this_thread_state)() = nullptr;
    int (*is_finalizing)() = nullptr;  // may be absent: then only the TSS check guards
    // &_PyRuntime.gilstate.tstate_current: the thread state of the thread that holds the GIL
    // (NULL while nobody does). One load instead of _Py_IsFinalizing, PyGILState_Get-
    // ThisThreadState and pthread_getspecific. The offset comes from the 3.11 headers; it is
    // trusted (tstate_current_ok) only once the slow path has seen it hold this thread's own
    // GILState thread state, so a layout that differs from the headers is never dereferenced.
    const uintptr_t* tstate_current = nullptr;
    const uintptr_t* finalizing = nullptr;  // &_PyRuntime._finalizing, what _Py_IsFinalizing reads
    std::atomic<bool> tstate_current_ok{false};
    char version[32] = "";
};
Interpreter g_py;
enum : int { kUnresolved = 0, kResolving, kReady, kNoStacks };
std::atomic<int> g_state{kUnresolved};

// Bumped by an audit hook whenever CPython is about to make or run new code objects: then a
// dead code object's address may hold a different one, and the per-thread memos and code
// caches must look again. Without the hook (see install_code_watch) every call looks again.
std::atomic<uint64_t> g_code_generation{1};
bool g_code_watched = false;

// Our audit hook's entry in _PyRuntime's list: CPython frees it with PyMem_RawFree at
// finalisation (_PySys_ClearAuditHooks), but it was made in our constructor, before the
// pre-initialisation may install another raw allocator: with -X dev or PYTHONMALLOC=debug,
// malloc_debug or pymalloc_debug the debug hooks, which abort the process (a fatal error at
// exit) on a block they did not make. At the first audit event (the interpreter exists, so
// the raw allocator is final; the GIL is held; finalisation raises one before it frees the
// list) the entry is replaced by a copy made with the current raw allocator if that changed.
// The old entry is left as it is: the audit loop standing on it goes on to its (same) next;
// one 24-byte block of the old allocator, made under our guard, is never freed.
const uintptr_t* g_runtime_hooks = nullptr;  // &_PyRuntime.audit_hook_head
void (*g_get_allocator)(PyMemAllocatorDomain, PyMemAllocatorEx*) = nullptr;
PyMemAllocatorEx g_raw_at_install{};
bool g_entry_checked = true;  // until the hook is installed

int on_audit_event(const char* event, PyObject*, void*);

[[gnu::cold, gnu::noinline]] void rehome_hook_entry() {
    g_entry_checked = true;
    if (!g_runtime_hooks || !g_get_allocator) return;
    PyMemAllocatorEx now;
    g_get_allocator(PYMEM_DOMAIN_RAW, &now);
    if (now.malloc == g_raw_at_install.malloc && now.ctx == g_raw_at_install.ctx) return;
    auto** link = reinterpret_cast<_Py_AuditHookEntry**>(const_cast<uintptr_t*>(g_runtime_hooks));
    while (*link && (*link)->hookCFunction != on_audit_event) link = &(*link)->next;
    if (!*link) return;
    auto* e = static_cast<_Py_AuditHookEntry*>(
        untraced_alloc(now.malloc, now.ctx, sizeof(_Py_AuditHookEntry)));
    if (!e) return;  // then as before
    *e = **link;
    *link = e;
    note_own_block(e, true);  // its free at finalisation is not the program's
}

// Audit events of CPython 3.11 that precede making code objects (compiling source,
// unmarshalling, code()) or running fresh ones (exec/eval, as imports do after unmarshalling).
// Runs under the GIL in whatever thread raised the event; allocates nothing (but once, above).
int on_audit_event(const char* event, PyObject*, void*) {
    if (PMT_UNLIKELY(!g_entry_checked)) rehome_hook_entry();
    pyalloc_on_audit();  // the option's allocators still ours (pyalloc.hpp)
    bool code_event = event[0] == 'c' ? std::strcmp(event, "compile") == 0 ||
                                            std::strcmp(event, "code.__new__") == 0
                      : event[0] == 'e' ? std::strcmp(event, "exec") == 0
                      : event[0] == 'm' ? std::strncmp(event, "marshal.load", 12) == 0
                                        : false;
    if (code_event) g_code_generation.fetch_add(1, std::memory_order_release);
    return 0;
}

// PySys_AddAuditHook is safe before Py_Initialize (the interposer's constructor, the usual
// case: the hook survives initialisation) or with the GIL held; otherwise it would run other
// hooks on a thread state this thread does not own, so we go without.
void install_code_watch() {
    auto add_hook = reinterpret_cast<int (*)(Py_AuditHookFunction, void*)>(
        dlsym(RTLD_DEFAULT, "PySys_AddAuditHook"));
    auto initialized = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "Py_IsInitialized"));
    auto holds_gil = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "PyGILState_Check"));
    if (!add_hook || !initialized) return;
    if (initialized() && !(holds_gil && holds_gil())) return;
    g_get_allocator =
        reinterpret_cast<decltype(g_get_allocator)>(dlsym(RTLD_DEFAULT, "PyMem_GetAllocator"));
    if (g_get_allocator) g_get_allocator(PYMEM_DOMAIN_RAW, &g_raw_at_install);
    g_code_watched = add_hook(on_audit_event, nullptr) == 0;
    if (g_code_watched && g_runtime_hooks) {  // our entry: its free is not the program's
        auto* e = reinterpret_cast<const _Py_AuditHookEntry*>(*g_runtime_hooks);
        while (e && e->hookCFunction != on_audit_event) e = e->next;
        note_own_block(e, initialized());
    }
    g_entry_checked = !g_code_watched || initialized();
}

// A fork bumps the epoch: caches made before it clear themselves on next use, since the
// child's trace is new and defines everything again.
std::atomic<uint32_t> g_epoch{0};

// Set once the interpreter is resolved (kReady), code creation is watched and
// tstate_current_ok holds: what python_stack_id's fast path needs, in one load.
std::atomic<bool> g_fast{false};

// Writes the decimal digits of v at p; returns the end.
char* put_decimal(char* p, unsigned v) {
    char tmp[12];
    int n = 0;
    do tmp[n++] = static_cast<char>('0' + v % 10);
    while ((v /= 10) != 0);
    while (n) *p++ = tmp[--n];
    return p;
}

[[gnu::cold]] bool resolve_interpreter() {
    int expected = kUnresolved;
    if (!g_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) {
        return expected == kReady;  // resolved already, or another thread is at it right now
    }
    // Py_Version exists from 3.11 on; older interpreters give their version only as text.
    auto* hex = static_cast<const unsigned long*>(dlsym(RTLD_DEFAULT, "Py_Version"));
    auto* get_version = reinterpret_cast<const char* (*)()>(dlsym(RTLD_DEFAULT, "Py_GetVersion"));
    bool supported = false;
    if (hex) {
        unsigned long v = *hex;
        char* p = put_decimal(g_py.version, unsigned(v >> 24 & 0xFF));
        *p++ = '.';
        p = put_decimal(p, unsigned(v >> 16 & 0xFF));
        *p++ = '.';
        p = put_decimal(p, unsigned(v >> 8 & 0xFF));
        *p = '\0';
        // Layouts of the frame, code and str structs are those of 3.11.x only.
        supported = (v >> 16) == 0x030B;
    } else if (get_version) {
        const char* s = get_version();
        size_t n = 0;
        while (s && s[n] && s[n] != ' ' && n + 1 < sizeof g_py.version) ++n;
        std::memcpy(g_py.version, s, n);
        g_py.version[n] = '\0';
    }
    g_py.this_thread_state = reinterpret_cast<PyThreadState* (*)()>(
        dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState"));
    g_py.is_finalizing = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "_Py_IsFinalizing"));
    if (auto* runtime = static_cast<const char*>(dlsym(RTLD_DEFAULT, "_PyRuntime"))) {
        g_runtime_hooks = reinterpret_cast<const uintptr_t*>(
            runtime + offsetof(_PyRuntimeState, audit_hook_head));
        g_py.tstate_current = reinterpret_cast<const uintptr_t*>(
            runtime + offsetof(_PyRuntimeState, gilstate.tstate_current));
        g_py.finalizing =
            reinterpret_cast<const uintptr_t*>(runtime + offsetof(_PyRuntimeState, _finalizing));
    }
    supported = supported && g_py.this_thread_state;
    if (supported) install_code_watch();
    g_state.store(supported ? kReady : kNoStacks, std::memory_order_release);
    return supported;
}

// Whether the thread's caches passed their memory bounds (then they start afresh).
bool must_reset(const PyStackCache* c) {
    return c->text.bytes() > pystack::kMaxTextBytes || c->stacks.size() > kMaxStackNodes;
}

// A walk of m frames that equals the memo's outer m-1 levels: the stack id of its innermost
// frame l from the recent innermost frames (the memo's level m-1 set from it), or 0.
inline uint64_t recent_hit(PyStackCache* c, const Level& l, int m) {
    const int k = m - 1;
    const uint64_t parent = k ? c->memo[k - 1].stack_id : 0;
    const PyStackCache::Recent& r = c->recent[PyStackCache::recent_slot(l.instr, parent)];
    if (r.key.code != l.code || r.key.instr != l.instr || r.parent != parent) return 0;
    c->memo[k].set(l, r.code_serial, r.location_id, r.stack_id);
    c->depth = m;
    return r.stack_id;
}

// Levels k..m-1 (outermost first) of a walk of m frames whose outer k frames equal the memo's
// (the previous walk had n levels): their ids, the memo and the recent innermost frames
// updated. cur holds the walk innermost first; only cur[0..m-1-k] is read unless the caches
// must start afresh (must_reset), which needs all of it.
// A stale memo (PyStackCache::memo_stale, k is then 0) is walked level by level too: a level
// whose code object still has the memo's serial and whose instruction is the memo's keeps
// its location id, and its stack id while every level outside it did.
[[gnu::noinline]] uint64_t intern_walk(PyStackCache* c, DefinitionSink& sink, const Level* cur,
                                       int m, int k, int n) {
    const bool stale = c->memo_stale;
    if (PMT_UNLIKELY(stale)) {
        c->memo_stale = false;  // every level this call leaves in the memo is checked
        k = 0;
    }
    if (k == m - 1) {  // only the innermost frame differs from the previous walk
        if (uint64_t id = recent_hit(c, cur[0], m)) return id;
    }
    ErrnoGuard keep;                    // interning allocates
    if (PMT_UNLIKELY(must_reset(c))) {  // (the fast path never passes a partial cur here)
        c->reset();  // new ids from here on; the old ones stay valid in the trace
        k = n = 0;
    }
    uint64_t parent = k ? c->memo[k - 1].stack_id : 0;
    bool same_chain = stale;  // every level so far is the stale memo's, with its ids
    for (int i = k; i < m; ++i) {
        const Level& l = cur[m - 1 - i];
        Memo& memo = c->memo[i];
        // The same code object as at this level last time (the frame moved to another
        // instruction, or a caller changed): its serial is known, no need to verify it again.
        // In a stale memo the address may hold another code object now: its serial says.
        bool same_code = i < n && memo.key.code == l.code;
        uint64_t serial = 0;
        if (same_code) {
            if (PMT_LIKELY(!stale)) {
                serial = memo.code_serial;
            } else {
                serial = pystack::code_serial_of(c, l.code, sink);
                same_code = serial == memo.code_serial;
            }
        }
        const bool same_level = same_code && memo.key.instr == l.instr;
        uint64_t location =
            same_level ? memo.location_id : pystack::location_id(c, l, serial, sink);
        uint64_t id;
        if (same_chain && same_level) {
            id = memo.stack_id;  // stack_node(parent, location) gave it: both are the same
        } else {
            same_chain = false;
            id = location ? pystack::stack_node(c, parent, location, sink) : 0;
        }
        if (!id) {  // out of memory: keep the memo consistent, report no stack
            c->depth = i;
            return 0;
        }
        memo.set(l, serial, location, id);
        parent = id;
    }
    c->depth = m;
    if (m) {
        const Memo& inner = c->memo[m - 1];
        const uint64_t outer = m > 1 ? c->memo[m - 2].stack_id : 0;
        c->recent[PyStackCache::recent_slot(inner.key.instr, outer)] = PyStackCache::Recent{
            inner.key, outer, inner.code_serial, inner.location_id, inner.stack_id};
    }
    return parent;
}

// Every frame from f0 outwards, then the outer frames that did not move since the previous
// walk keep their stack ids.
[[gnu::noinline]] uint64_t full_walk(PyStackCache* c, DefinitionSink& sink,
                                     const _PyInterpreterFrame* f0) {
    Level cur[pystack::kMaxDepth];
    const _PyInterpreterFrame* frames[pystack::kMaxDepth];
    int m = 0;
    int steps = 0;
    bool plain = true;
    for (const _PyInterpreterFrame* f = f0; f && m < pystack::kMaxDepth; f = f->previous) {
        if (++steps > kMaxSteps) return 0;
        const PyCodeObject* code = f->f_code;
        const _Py_CODEUNIT* instr = f->prev_instr;
        if (!code) continue;
        // Incomplete frames (before their first RESUME) have no meaningful line yet; a
        // generator's frame is complete once it exists.
        if (instr < _PyCode_CODE(code) + code->_co_firsttraceable) {
            if (f->owner != FRAME_OWNED_BY_GENERATOR) continue;
            plain = false;
        }
        frames[m] = f;
        cur[m++] = Level{code, instr};
    }
    for (int i = 0; i < m; ++i) c->memo[i].frame = frames[m - 1 - i];

    int k = 0;
    int n = c->depth;
    if (PMT_UNLIKELY(c->memo_stale)) {  // a new code generation: every level checked
        c->memo_plain = plain;
        return intern_walk(c, sink, cur, m, 0, n);
    }
    while (k < m && k < n) {
        const Level& l = cur[m - 1 - k];
        const Level& e = c->memo[k].key;
        if (l.instr != e.instr || l.code != e.code) break;
        ++k;
    }
    if (k == m && k == n) return m ? c->memo[m - 1].stack_id : 0;
    c->memo_plain = plain;
    return intern_walk(c, sink, cur, m, k, n);
}

// The walk equals the memo but for its innermost frame f0 (n levels): f0's id, unless f0 is
// incomplete or the caches must start afresh (then the full walk decides).
[[gnu::noinline]] uint64_t innermost_moved(PyStackCache* c, DefinitionSink& sink,
                                           const _PyInterpreterFrame* f0, int n) {
    const PyCodeObject* code = f0->f_code;
    const _Py_CODEUNIT* instr = f0->prev_instr;
    if (code) {
        bool plain = instr >= _PyCode_CODE(code) + code->_co_firsttraceable;
        if ((plain || f0->owner == FRAME_OWNED_BY_GENERATOR) && !must_reset(c)) {
            Level l{code, instr};
            c->memo_plain = plain;
            c->memo[n - 1].frame = f0;
            // The recent frames were forgotten when the memo went stale (checked_stack_id).
            if (PMT_LIKELY(!c->memo_stale)) {
                if (uint64_t id = recent_hit(c, l, n)) return id;
            }
            return intern_walk(c, sink, &l, n, n - 1, n);
        }
    }
    return full_walk(c, sink, f0);
}

}  // namespace

// The walker's memory, for a build of it without the interposer (tests/pystack); the
// interposer's own definitions (bootstrap.cpp) replace these.
[[gnu::weak]] void* internal_malloc(size_t n) { return std::malloc(n); }
[[gnu::weak]] void* internal_calloc(size_t n, size_t m) { return std::calloc(n, m); }
[[gnu::weak]] void internal_free(void* p) { std::free(p); }
[[gnu::weak]] void* untraced_alloc(void* (*fn)(void*, size_t), void* ctx, size_t n) {
    return fn(ctx, n);
}
// The option of pyalloc.cpp, which that build leaves out: off.
[[gnu::weak]] std::atomic<bool> g_pyalloc_on{false};
[[gnu::weak]] void pyalloc_recheck() {}

PyStackCache* pystack_cache_new() {
    void* p = internal_calloc(1, sizeof(PyStackCache));
    if (!p) return nullptr;
    auto* c = new (p) PyStackCache();
    c->epoch = g_epoch.load(std::memory_order_relaxed);
    c->self = static_cast<unsigned long>(pthread_self());
    return c;
}

void pystack_cache_free(PyStackCache* c) {
    if (!c) return;
    c->~PyStackCache();
    internal_free(c);
}

void pystack_cache_forget_walk(PyStackCache* c) {
    if (c) c->depth = 0;
}

bool python_init() {
    int s = g_state.load(std::memory_order_acquire);
    if (s == kReady) return true;
    if (s != kUnresolved) return false;
    return resolve_interpreter();
}

bool python_watches_code_creation() {
    return g_state.load(std::memory_order_acquire) == kReady && g_code_watched;
}

const char* python_version() {
    return g_state.load(std::memory_order_acquire) >= kReady ? g_py.version : "";
}

namespace {

// Where the caller's stack is (for the cframe check): the stack pointer, which unlike
// __builtin_frame_address does not make the function set up a frame.
inline uintptr_t stack_pointer() {
#if defined(__x86_64__)
    uintptr_t sp;
    asm volatile("mov %%rsp, %0" : "=r"(sp));
    return sp;
#else
    return reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
#endif
}

// The running _PyCFrame is a local of an evaluation loop on this thread's stack, above us
// (tstate->root_cframe never has frames). Checking that keeps us from following garbage if
// the state was freed under us: finalization frees daemon threads' states without clearing
// their TSS slots, and those threads may be allocating without the GIL.
inline bool cframe_above_us(const PyThreadState* ts) {
    return reinterpret_cast<uintptr_t>(ts->cframe) - stack_pointer() < kMaxStackSpan;
}

// Frames from f0 outwards (all checks done): the common walks compared in place, the others
// through full_walk.
inline uint64_t walk_from(PyStackCache* c, DefinitionSink& sink, const _PyInterpreterFrame* f0);

// python_stack_id with every check: first call, new epoch or code generation, a thread that
// does not hold the GIL, finalization, no code-creation hook.
[[gnu::noinline]] uint64_t checked_stack_id(PyStackCache* c, DefinitionSink& sink) {
    if (__builtin_expect(g_state.load(std::memory_order_acquire) != kReady, 0)) {
        ErrnoGuard keep;
        if (!python_init()) return 0;
    }
    if (!c) return 0;
    uint32_t epoch = g_epoch.load(std::memory_order_relaxed);
    if (__builtin_expect(c->epoch != epoch, 0)) {
        ErrnoGuard keep;
        c->reset();
        c->epoch = epoch;
    }
    uint64_t generation =
        g_code_watched ? g_code_generation.load(std::memory_order_acquire) : c->generation + 1;
    if (generation != c->generation) {
        c->generation = generation;
        // The memo's code objects may have died and their addresses been reused: the memo is
        // kept, but its levels are confirmed by content before their ids are reused
        // (full_walk, intern_walk); walk_from's in-place comparison needs memo_plain.
        c->memo_stale = c->depth > 0;
        c->memo_plain = false;
        c->forget_recent();
    }
    // python_stack_id's fast path: this generation once g_fast holds (else 0, never one).
    c->fast_generation = g_fast.load(std::memory_order_acquire) ? generation : 0;
    // The common case: this thread holds the GIL, so the GIL holder's state is its own (a
    // thread's state is the GIL holder's only between its own swap-in and swap-out), and the
    // interpreter is not finalizing (then the slow path below returns 0). Else:
    PyThreadState* ts = nullptr;
    if (PMT_LIKELY(g_py.tstate_current_ok.load(std::memory_order_relaxed)) &&
        __atomic_load_n(g_py.finalizing, __ATOMIC_RELAXED) == 0) {
        ts = reinterpret_cast<PyThreadState*>(
            __atomic_load_n(g_py.tstate_current, __ATOMIC_RELAXED));
        if (ts && ts->thread_id != c->self) ts = nullptr;
    }
    if (!ts) {
        // Finalization frees other threads' states while theirs may still be in the TSS slot.
        if (g_py.is_finalizing && g_py.is_finalizing()) return 0;
        // This thread's own state from the GILState TSS slot (not the GIL holder's): NULL
        // before the interpreter exists, after it is gone, and in threads Python never saw.
        ts = g_py.this_thread_state();
        if (!ts || ts->thread_id != c->self) return 0;
        if (PMT_UNLIKELY(!g_py.tstate_current_ok.load(std::memory_order_relaxed)) &&
            g_py.tstate_current &&
            __atomic_load_n(g_py.tstate_current, __ATOMIC_RELAXED) == uintptr_t(ts)) {
            g_py.tstate_current_ok.store(true, std::memory_order_relaxed);
            if (g_code_watched) g_fast.store(true, std::memory_order_release);
        }
    }
    if (!cframe_above_us(ts)) return 0;
    return walk_from(c, sink, ts->cframe->current_frame);
}

inline uint64_t walk_from(PyStackCache* c, DefinitionSink& sink, const _PyInterpreterFrame* f0) {
    // Innermost first. This thread is inside a C call from its innermost frame, so the chain is
    // stable while we read it even without the GIL.
    int n = c->depth;
    // The common walks: every frame as in the previous walk, or all but the innermost one.
    // Compared during the walk, innermost first, against the memo (outermost first). Memo
    // entries were checked when made; memo_plain says none was taken before its code's first
    // traceable instruction, so a frame equal to one is one the full walk keeps, and an
    // incomplete frame (which the full walk skips) never equals one. Anything else (other
    // depth, skipped frames, more frames moved) takes the full walk below.
    //
    // Each outer frame is the memo's frame object (Memo::frame) if the frame inside it links to
    // that one: the next frame is then read at an address the memo holds, not at the one just
    // loaded, so the reads of all levels can run at once instead of one after the other (the
    // chain's own loads were the cost of deep stacks; objdump shows g taken from the memo's
    // load). A frame is read only once the live frame inside it has been seen to link to it,
    // and every level below depth has a frame (full_walk and innermost_moved set them).
    //
    // A level is compared by its instruction pointer alone: within one code-creation
    // generation (the memo is not stale: memo_plain) it identifies the code object too.
    // prev_instr points into its code object's own bytes (3.11's bytecode is inline, at
    // co_code_adaptive; before the first instruction it points one unit before it, inside the
    // object still). The frame's code object is alive; it was alive when the memo level was
    // made too (no code object was made since, or the generation would have moved), as was the
    // memo's, and two live objects share no byte: equal pointers are the same code object.
    // (Dropping the f_code loads and compares: ~3 instructions per level.)
    if (PMT_LIKELY(n > 0 && c->memo_plain && f0)) {
        const Memo* inner = c->memo + (n - 1);
        const Memo* e = inner;
        const _PyInterpreterFrame* g = f0;
        while (e != c->memo) {  // (ends at a fixed offset from c: no count to set up)
            --e;
            const _PyInterpreterFrame* next = e->frame;
            if (g->previous != next) return full_walk(c, sink, f0);
            g = next;
            if (g->prev_instr != e->key.instr) return full_walk(c, sink, f0);
        }
        // All outer frames matched, and the chain ends there (or the memo holds the innermost
        // kMaxDepth frames of a deeper stack, where the full walk stops too).
        if (!g->previous || n == pystack::kMaxDepth) {
            if (f0->prev_instr == inner->key.instr) return inner->stack_id;
            return innermost_moved(c, sink, f0, n);
        }
    }
    return full_walk(c, sink, f0);
}

}  // namespace

// The common case without a call or a stack frame of its own: code creation watched and no
// new code since the previous walk (nor a fork: it bumps the generation too), this thread holds the
// GIL (so the GIL holder's state is its own: a thread's state is the GIL holder's only between its
// own swap-in and swap-out) and the interpreter is not finalizing. Anything else goes through
// checked_stack_id.
// (g_fast is folded into the cache's fast_generation, which checked_stack_id sets.)
uint64_t python_stack_id(PyStackCache* c, DefinitionSink& sink) {
    if (PMT_LIKELY(c && c->fast_generation == g_code_generation.load(std::memory_order_acquire) &&
                   __atomic_load_n(g_py.finalizing, __ATOMIC_RELAXED) == 0)) {
        auto* ts = reinterpret_cast<const PyThreadState*>(
            __atomic_load_n(g_py.tstate_current, __ATOMIC_RELAXED));
        if (PMT_LIKELY(ts && ts->thread_id == c->self)) {
            if (!cframe_above_us(ts)) return 0;
            return walk_from(c, sink, ts->cframe->current_frame);
        }
    }
    return checked_stack_id(c, sink);
}

void python_after_fork_child() {
    pystack::reset_id_counters();
    g_epoch.fetch_add(1, std::memory_order_relaxed);
    // python_stack_id's fast path checks only the generation.
    g_code_generation.fetch_add(1, std::memory_order_release);
}

}  // namespace pmt::preload
