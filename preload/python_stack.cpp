// Python source-line stacks of the calling thread for CPython 3.11 (API in python_stack.hpp):
// finds the interpreter with dlsym, walks this thread's _PyInterpreterFrame chain without the
// GIL and interns names, locations and stack nodes in per-thread caches (pystack_tables.hpp).
// CPython's headers are used for struct layouts and inline accessors only; nothing is linked.
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_frame.h>
// Python.h must come first (it sets feature macros the C library headers read).
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <new>

#include "pystack_tables.hpp"
#include "python_stack.hpp"

namespace pmt::preload {
namespace {

using pystack::hash_bytes;
using pystack::mix64;

// Deeper stacks keep their innermost kMaxDepth frames; kMaxSteps bounds the walk even if a
// frame chain were corrupt and cyclic.
constexpr int kMaxDepth = 128;
constexpr int kMaxSteps = 4096;
// Longer names are cut (in code points); 4 bytes of UTF-8 each at most.
constexpr size_t kMaxNameChars = 1024;

// What the walker needs from the interpreter, resolved once by python_init().
struct Interpreter {
    PyThreadState* (*this_thread_state)() = nullptr;
    int (*addr2line)(PyCodeObject*, int) = nullptr;
    int (*is_finalizing)() = nullptr;  // may be absent: then only the TSS check guards
    char version[32] = "";
};
Interpreter g_py;
enum : int { kUnresolved = 0, kResolving, kReady, kNoStacks };
std::atomic<int> g_state{kUnresolved};

// Ids are unique per process (FORMAT.md), one counter per kind, starting at 1. A fork bumps the
// epoch: caches made before it clear themselves on next use, since the child's trace is new.
std::atomic<uint64_t> g_next_string{1}, g_next_location{1}, g_next_stack{1};
std::atomic<uint32_t> g_epoch{0};

// One frame of a walk: what decides its location. The linetable pointer guards against a freed
// code object whose address was reused by another one.
struct Level {
    const PyCodeObject* code;
    const _Py_CODEUNIT* instr;
    const PyObject* linetable;
};

// The previous walk of this thread, outermost frame first, with the ids it resolved to.
struct Memo {
    Level key;
    uint64_t location_id;
    uint64_t stack_id;  // the stack made of this frame and every frame outside it
};

struct CodeLocation {  // (code object, instruction offset) -> location id
    const PyCodeObject* code;
    const PyObject* filename;
    const PyObject* qualname;
    const PyObject* linetable;
    int32_t firstlineno;
    int32_t offset;  // in code units
    uint64_t id;
    uint64_t hash() const {
        return mix64(reinterpret_cast<uintptr_t>(code) ^ (uint64_t(offset) << 48));
    }
};
struct LocationKey {  // (file, function, line) -> location id: offsets of one line share an id
    uint64_t file_id, function_id, line, id;
    uint64_t hash() const {
        return mix64(file_id * 0x9e3779b97f4a7c15ULL ^ function_id << 20 ^ line);
    }
};
struct StackKey {  // (parent stack, innermost location) -> stack id
    uint64_t parent, location_id, id;
    uint64_t hash() const { return mix64(parent * 0x9e3779b97f4a7c15ULL ^ location_id); }
};
struct StringKey {  // UTF-8 text -> string id; keyed by content since string objects die
    uint64_t h;
    const char* text;
    size_t len;
    uint64_t id;
    uint64_t hash() const { return h; }
};

}  // namespace

struct PyStackCache {
    uint32_t epoch = 0;
    int depth = 0;  // levels of memo that are valid
    Memo memo[kMaxDepth];
    pystack::OpenTable<CodeLocation> code_locations;
    pystack::OpenTable<LocationKey> locations;
    pystack::OpenTable<StackKey> stacks;
    pystack::OpenTable<StringKey> strings;
    pystack::TextArena text;
    char utf8[kMaxNameChars * 4];

    void reset(uint32_t new_epoch) {
        epoch = new_epoch;
        depth = 0;
        code_locations.clear();
        locations.clear();
        stacks.clear();
        strings.clear();
        text.clear();
    }
};

namespace {

// Appends code point cp as UTF-8; lone surrogates (surrogateescape'd file names) become U+FFFD.
inline char* put_utf8(char* p, uint32_t cp) {
    if (cp < 0x80) {
        *p++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
        *p++ = static_cast<char>(0xC0 | cp >> 6);
        *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        *p++ = static_cast<char>(0xE0 | cp >> 12);
        *p++ = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        *p++ = static_cast<char>(0xF0 | cp >> 18);
        *p++ = static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        *p++ = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    }
    return p;
}

// UTF-8 of a str object read straight from its memory: PyUnicode_AsUTF8 may allocate and needs
// the GIL, which this thread may not hold. Returns the length written to out ("?" if o is not
// a ready str).
size_t read_unicode(const PyObject* o, char* out) {
    if (!o || !(Py_TYPE(o)->tp_flags & Py_TPFLAGS_UNICODE_SUBCLASS)) {
        out[0] = '?';
        return 1;
    }
    auto* a = reinterpret_cast<const PyASCIIObject*>(o);
    unsigned kind = a->state.kind;
    const void* data;
    if (a->state.compact) {
        data = a->state.ascii ? static_cast<const void*>(a + 1)
                              : reinterpret_cast<const PyCompactUnicodeObject*>(o) + 1;
    } else {
        data = reinterpret_cast<const PyUnicodeObject*>(o)->data.any;
    }
    if (!a->state.ready || !data || (kind != 1 && kind != 2 && kind != 4)) {
        out[0] = '?';
        return 1;
    }
    size_t n = a->length < 0 ? 0 : static_cast<size_t>(a->length);
    if (n > kMaxNameChars) n = kMaxNameChars;
    if (a->state.ascii) {
        std::memcpy(out, data, n);
        return n;
    }
    char* p = out;
    for (size_t i = 0; i < n; ++i) {
        uint32_t cp = kind == 1   ? static_cast<const uint8_t*>(data)[i]
                      : kind == 2 ? static_cast<const uint16_t*>(data)[i]
                                  : static_cast<const uint32_t*>(data)[i];
        p = put_utf8(p, cp > 0x10FFFF ? 0xFFFD : cp);
    }
    return static_cast<size_t>(p - out);
}

uint64_t intern_string(PyStackCache* c, const PyObject* o, DefinitionSink& sink) {
    size_t n = read_unicode(o, c->utf8);
    const char* s = c->utf8;
    uint64_t h = hash_bytes(s, n);
    StringKey* e = c->strings.find(h, [&](const StringKey& k) {
        return k.h == h && k.len == n && std::memcmp(k.text, s, n) == 0;
    });
    if (!e) return 0;
    if (e->id) return e->id;
    const char* text = c->text.copy(s, n);
    if (!text) return 0;
    uint64_t id = g_next_string.fetch_add(1, std::memory_order_relaxed);
    *e = StringKey{h, text, n, id};
    c->strings.inserted();
    sink.define_string(id, text, n);
    return id;
}

// First use of (code, offset) in this thread: names, line number, location id.
[[gnu::cold]] uint64_t resolve_location(PyStackCache* c, const PyCodeObject* code, int offset,
                                        DefinitionSink& sink) {
    uint64_t file_id = intern_string(c, code->co_filename, sink);
    uint64_t function_id = intern_string(c, code->co_qualname, sink);
    if (!file_id || !function_id) return 0;
    // PyCode_Addr2Line only reads the code object's line table; the code object is alive
    // because one of this thread's frames holds it.
    int line = code->co_firstlineno;
    if (offset >= 0 && offset < Py_SIZE(code)) {
        line = g_py.addr2line(const_cast<PyCodeObject*>(code), offset * int(sizeof(_Py_CODEUNIT)));
    }
    uint64_t line_u = line < 0 ? 0 : static_cast<uint64_t>(line);
    LocationKey probe{file_id, function_id, line_u, 0};
    LocationKey* e = c->locations.find(probe.hash(), [&](const LocationKey& k) {
        return k.file_id == file_id && k.function_id == function_id && k.line == line_u;
    });
    if (!e) return 0;
    if (e->id) return e->id;
    uint64_t id = g_next_location.fetch_add(1, std::memory_order_relaxed);
    *e = LocationKey{file_id, function_id, line_u, id};
    c->locations.inserted();
    sink.define_location(id, file_id, function_id, line_u);
    return id;
}

uint64_t location_id(PyStackCache* c, const Level& l, DefinitionSink& sink) {
    const PyCodeObject* code = l.code;
    int offset = static_cast<int>(l.instr - _PyCode_CODE(code));
    CodeLocation probe{
        code, code->co_filename, code->co_qualname, l.linetable, code->co_firstlineno, offset, 0};
    CodeLocation* e = c->code_locations.find(probe.hash(), [&](const CodeLocation& k) {
        return k.code == probe.code && k.offset == offset && k.linetable == probe.linetable &&
               k.filename == probe.filename && k.qualname == probe.qualname &&
               k.firstlineno == probe.firstlineno;
    });
    if (!e) return 0;
    if (e->id) return e->id;
    uint64_t id = resolve_location(c, code, offset, sink);
    if (!id) return 0;
    // e is still valid: resolve_location only touched the other tables.
    probe.id = id;
    *e = probe;
    c->code_locations.inserted();
    return id;
}

uint64_t stack_node(PyStackCache* c, uint64_t parent, uint64_t location, DefinitionSink& sink) {
    StackKey probe{parent, location, 0};
    StackKey* e = c->stacks.find(probe.hash(), [&](const StackKey& k) {
        return k.parent == parent && k.location_id == location;
    });
    if (!e) return 0;
    if (e->id) return e->id;
    uint64_t id = g_next_stack.fetch_add(1, std::memory_order_relaxed);
    *e = StackKey{parent, location, id};
    c->stacks.inserted();
    sink.define_stack(id, parent, location);
    return id;
}

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
    g_py.addr2line =
        reinterpret_cast<int (*)(PyCodeObject*, int)>(dlsym(RTLD_DEFAULT, "PyCode_Addr2Line"));
    g_py.is_finalizing = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "_Py_IsFinalizing"));
    supported = supported && g_py.this_thread_state && g_py.addr2line;
    g_state.store(supported ? kReady : kNoStacks, std::memory_order_release);
    return supported;
}

}  // namespace

PyStackCache* pystack_cache_new() {
    void* p = std::calloc(1, sizeof(PyStackCache));
    if (!p) return nullptr;
    auto* c = new (p) PyStackCache();
    c->epoch = g_epoch.load(std::memory_order_relaxed);
    return c;
}

void pystack_cache_free(PyStackCache* c) {
    if (!c) return;
    c->~PyStackCache();
    std::free(c);
}

bool python_init() {
    int s = g_state.load(std::memory_order_acquire);
    if (s == kReady) return true;
    if (s != kUnresolved) return false;
    return resolve_interpreter();
}

const char* python_version() {
    return g_state.load(std::memory_order_acquire) >= kReady ? g_py.version : "";
}

uint64_t python_stack_id(PyStackCache* c, DefinitionSink& sink) {
    if (__builtin_expect(g_state.load(std::memory_order_acquire) != kReady, 0)) {
        if (!python_init()) return 0;
    }
    if (!c) return 0;
    uint32_t epoch = g_epoch.load(std::memory_order_relaxed);
    if (__builtin_expect(c->epoch != epoch, 0)) c->reset(epoch);
    // Finalization frees other threads' states while theirs may still be in the TSS slot.
    if (g_py.is_finalizing && g_py.is_finalizing()) return 0;
    // This thread's own state from the GILState TSS slot (not the GIL holder's): NULL before
    // the interpreter exists, after it is gone, and in threads Python never saw.
    PyThreadState* ts = g_py.this_thread_state();
    if (!ts || ts->thread_id != static_cast<unsigned long>(pthread_self()) || !ts->cframe) return 0;

    // Innermost first. This thread is inside a C call from its innermost frame, so the chain is
    // stable while we read it even without the GIL.
    Level cur[kMaxDepth];
    int m = 0;
    int steps = 0;
    for (const _PyInterpreterFrame* f = ts->cframe->current_frame; f && m < kMaxDepth;
         f = f->previous) {
        if (++steps > kMaxSteps) return 0;
        const PyCodeObject* code = f->f_code;
        const _Py_CODEUNIT* instr = f->prev_instr;
        // Incomplete frames (before their first RESUME) have no meaningful line yet.
        if (!code || (f->owner != FRAME_OWNED_BY_GENERATOR &&
                      instr < _PyCode_CODE(code) + code->_co_firsttraceable)) {
            continue;
        }
        cur[m++] = Level{code, instr, code->co_linetable};
    }

    // Outer frames that did not move since the previous walk keep their stack ids.
    int k = 0;
    int n = c->depth;
    while (k < m && k < n) {
        const Level& l = cur[m - 1 - k];
        const Level& e = c->memo[k].key;
        if (l.instr != e.instr || l.code != e.code || l.linetable != e.linetable) break;
        ++k;
    }
    if (k == m && k == n) return m ? c->memo[m - 1].stack_id : 0;

    uint64_t parent = k ? c->memo[k - 1].stack_id : 0;
    for (int i = k; i < m; ++i) {
        const Level& l = cur[m - 1 - i];
        Memo& memo = c->memo[i];
        bool same_frame = i < n && memo.key.instr == l.instr && memo.key.code == l.code &&
                          memo.key.linetable == l.linetable;
        uint64_t location = same_frame ? memo.location_id : location_id(c, l, sink);
        uint64_t id = location ? stack_node(c, parent, location, sink) : 0;
        if (!id) {  // out of memory: keep the memo consistent, report no stack
            c->depth = i;
            return 0;
        }
        memo = Memo{l, location, id};
        parent = id;
    }
    c->depth = m;
    return parent;
}

void python_after_fork_child() {
    g_next_string.store(1, std::memory_order_relaxed);
    g_next_location.store(1, std::memory_order_relaxed);
    g_next_stack.store(1, std::memory_order_relaxed);
    g_epoch.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace pmt::preload
