// Python source-line stacks of the calling thread, for CPython 3.11, read straight from the
// interpreter's frame chain (no API call that allocates, takes the GIL or runs Python code).
// Runs inside the traced process on allocating threads: never allocates through the
// interposed functions except under the caller's reentrancy guard, never aborts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pmt::preload {

// Receives the definitions (FORMAT.md: string, location, stack records) of ids that the
// calling thread has not emitted before. Implemented by the per-thread recorder.
class DefinitionSink {
public:
    virtual void define_string(uint64_t id, const char* s, size_t n) = 0;
    virtual void define_location(uint64_t id, uint64_t file_id, uint64_t function_id,
                                 uint64_t line) = 0;
    virtual void define_stack(uint64_t id, uint64_t parent_id, uint64_t location_id) = 0;

protected:
    ~DefinitionSink() = default;
};

// Per-thread interning caches (opaque). Created lazily by the recorder for each thread.
struct PyStackCache;
PyStackCache* pystack_cache_new();
void pystack_cache_free(PyStackCache* c);
// Forgets the previous walk remembered in c (ids and definitions stay), so the next call
// resolves every frame through the hash tables: lets tests and benchmarks reach that path.
void pystack_cache_forget_walk(PyStackCache* c);

// Resolves the interpreter's symbols with dlsym(RTLD_DEFAULT); safe and cheap to call again.
// Returns false when the process has no (supported) Python: only 3.11.x layouts are known, so
// other versions get a version string but no stacks. Call it before Py_Initialize (the
// interposer's constructor) so it can install its code-creation audit hook (see below); it
// allocates through malloc, so the caller holds its reentrancy guard.
bool python_init();
// Whether python_init() could install its audit hook (it can before Py_Initialize, or with the
// GIL held). The hook tells the walker when new code objects appear; without it every call
// re-checks each frame's code object by content, which is slower (still correct).
bool python_watches_code_creation();
// "3.11.2", or "" when the process has no Python.
const char* python_version();

// The stack id (FORMAT.md) of the calling thread's Python frames, innermost first; 0 when the
// thread has no Python frames (no thread state, interpreter not running or finalizing).
// Stacks deeper than 128 frames keep their innermost 128. Functions are named by co_qualname.
// New strings, locations and stack nodes are reported to sink before the id is returned; ids
// come from process-wide counters, so two threads may give one stack different ids.
uint64_t python_stack_id(PyStackCache* cache, DefinitionSink& sink);

// Calls fn(ctx, n), one of the interpreter's allocators, with the interposer's guard held, so
// that the block is not in the trace (lifecycle.cpp); the walker's test build, which has no
// guard, just calls it.
void* untraced_alloc(void* (*fn)(void*, size_t), void* ctx, size_t n);

// Called in a forked child (only the forking thread survives) after the recorder dropped every
// thread's cache: the child's trace starts afresh, so nothing defined in the parent is assumed.
void python_after_fork_child();

}  // namespace pmt::preload
