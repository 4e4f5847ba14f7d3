// Internal to the Python stack walker: the per-thread cache (PyStackCache) and the interning
// steps shared by python_stack.cpp (the walk) and pystack_intern.cpp (names, locations, stack
// nodes). Needs CPython 3.11's headers with Py_BUILD_CORE for the frame layout.
#pragma once
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <Python.h>
#include <internal/pycore_frame.h>
// For _PyRuntimeState's layout only. Its atomics come from C11 <stdatomic.h>, which C++17
// lacks; CPython's GCC-builtin variant has the same layout (a struct of one uintptr_t / int).
#undef HAVE_STD_ATOMIC
#include <internal/pycore_runtime.h>
// Python.h must come first (it sets feature macros the C library headers read).
#include <cstddef>
#include <cstdint>

#include "pystack_tables.hpp"
#include "python_stack.hpp"

namespace pmt::preload::pystack {

// Deeper stacks keep their innermost kMaxDepth frames.
constexpr int kMaxDepth = 128;
// Longer names are cut (in code points); 4 bytes of UTF-8 each at most.
constexpr size_t kMaxNameChars = 1024;
// A thread whose interned text passes this starts its caches afresh (new ids): bounds the
// memory of programs that compile code in a loop forever (every new code object is cached).
constexpr size_t kMaxTextBytes = size_t(32) << 20;

// One frame of a walk: the code object and instruction decide its location. Within one
// code-creation generation (PyStackCache::generation) the pointers identify the code object.
struct Level {
    const PyCodeObject* code;
    const _Py_CODEUNIT* instr;
};

// The previous walk of a thread, outermost frame first, with what it resolved to.
struct Memo {
    Level key;
    uint64_t code_serial;  // CodeInfo::id of key.code
    uint64_t location_id;
    uint64_t stack_id;  // the stack made of this frame and every frame outside it
    // The frame object of this level when it was last walked in full (full_walk): what
    // python_stack_id's comparison follows instead of the frames' own links. A stale one
    // only makes that comparison fail: it is never read before a live frame links to it.
    const _PyInterpreterFrame* frame;
    void set(const Level& l, uint64_t serial, uint64_t location, uint64_t stack) {
        key = l;
        code_serial = serial;
        location_id = location;
        stack_id = stack;
    }
};

// A code object as this thread knows it. A freed code object's address (and those of its name
// and line table objects) is soon reused by pymalloc, so a hit is trusted as is only while no
// code object was made since it was checked (PyStackCache::generation); after that, only if the
// names and the line table still have the recorded content. Otherwise it gets a new serial.
struct CodeInfo {
    const PyCodeObject* code;
    const PyObject* filename;
    const PyObject* qualname;
    const PyObject* linetable;
    const char* linetable_copy;
    const char* file_text;
    const char* function_text;
    uint32_t linetable_len, file_len, function_len;
    int32_t firstlineno;
    uint64_t file_id, function_id;
    uint64_t checked_generation;
    uint64_t id;       // serial within this thread's cache, from 1
    LineCursor lines;  // where the previous line look-up left linetable_copy
    uint64_t hash() const { return mix64(reinterpret_cast<uintptr_t>(code)); }
};
struct CodeOffset {  // (code serial, instruction offset) -> location id
    uint64_t serial;
    int64_t offset;  // in code units
    uint64_t id;
    uint64_t hash() const { return mix64(serial * 0x9e3779b97f4a7c15ULL ^ uint64_t(offset)); }
};
struct LocationKey {  // (file, function, line) -> location id: offsets of one line share it
    uint64_t file_id, function_id, line, id;
    uint64_t hash() const {
        return mix64(file_id * 0x9e3779b97f4a7c15ULL ^ function_id << 24 ^ line);
    }
};
struct StackKey {  // (parent stack, innermost location) -> stack id
    uint64_t parent, location_id, id;
    uint64_t hash() const { return mix64(parent * 0x9e3779b97f4a7c15ULL ^ location_id); }
};
struct StringKey {  // UTF-8 text -> string id, by content
    uint64_t h;
    const char* text;
    size_t len;
    uint64_t id;
    uint64_t hash() const { return h; }
};

// The location id of frame l. serial: the code's serial when the caller knows l.code is the
// object it saw in the previous walk, else 0; set to the serial used. 0 when out of memory.
uint64_t location_id(PyStackCache* c, const Level& l, uint64_t& serial, DefinitionSink& sink);
// This thread's serial for code (verified by content once per generation, recorded when new);
// 0 when out of memory.
uint64_t code_serial_of(PyStackCache* c, const PyCodeObject* code, DefinitionSink& sink);
// The id of the stack whose innermost frame is at location and whose outer frames are parent.
uint64_t stack_node(PyStackCache* c, uint64_t parent, uint64_t location, DefinitionSink& sink);
// Id counters back to 1 (a forked child's trace starts afresh).
void reset_id_counters();

}  // namespace pmt::preload::pystack

namespace pmt::preload {

struct PyStackCache {
    uint32_t epoch = 0;  // fork generation the ids below belong to
    // pthread_self() of the thread that made the cache: a cache serves that thread only.
    unsigned long self = 0;
    int depth = 0;  // levels of memo that are valid
    // No memo level was taken before its code's first traceable instruction (a generator's
    // frame may be): python_stack_id's fast comparison relies on it.
    bool memo_plain = false;
    // The memo was made in an earlier code-creation generation: intern_walk reuses a level's
    // ids only once its code object is confirmed by content (code_serial_of) in this one.
    bool memo_stale = false;
    // Code-creation generation (python_stack.cpp) the memo was made in: a new code object may
    // sit where a dead one was, so the memo is only trusted within one generation.
    uint64_t generation = 0;
    // generation once python_stack_id's fast path may serve this cache (g_fast held when
    // checked_stack_id last ran), else 0: one compare for both.
    uint64_t fast_generation = 0;
    uint64_t next_code_serial = 1;
    pystack::Memo memo[pystack::kMaxDepth];
    // The innermost frames of recent walks, by (code, instruction, stack id of the frames
    // outside): a frame that alternates between allocating instructions while its callers stay
    // put (a loop body) finds its stack id here instead of in the hash tables. Direct-mapped by
    // (instruction, parent): a loop body allocating at more sites than a short list holds
    // (object, buffer and int allocations at one line each take their own instruction) keeps
    // them all. Trusted within one code-creation generation, like memo; cleared with it.
    struct Recent {
        pystack::Level key;
        uint64_t parent, code_serial, location_id, stack_id;
    };
    static constexpr unsigned kRecentBits = 6;
    static constexpr unsigned kRecent = 1u << kRecentBits;
    Recent recent[kRecent];
    static unsigned recent_slot(const _Py_CODEUNIT* instr, uint64_t parent) {
        uint64_t h = (reinterpret_cast<uintptr_t>(instr) ^ parent << 24) * 0x9e3779b97f4a7c15ULL;
        return unsigned(h >> (64 - kRecentBits));
    }
    void forget_recent() {
        for (Recent& r : recent) r.key.code = nullptr;  // a walk never has a null code
    }
    pystack::OpenTable<pystack::CodeInfo> codes;
    pystack::OpenTable<pystack::CodeOffset> offsets;
    pystack::OpenTable<pystack::LocationKey> locations;
    pystack::OpenTable<pystack::StackKey> stacks;
    pystack::OpenTable<pystack::StringKey> strings;
    pystack::TextArena text;
    char utf8[pystack::kMaxNameChars * 4];

    void reset() {
        depth = 0;
        memo_stale = false;
        forget_recent();
        next_code_serial = 1;
        codes.clear();
        offsets.clear();
        locations.clear();
        stacks.clear();
        strings.clear();
        text.clear();
    }
};

}  // namespace pmt::preload
