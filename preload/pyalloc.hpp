// PYMEMTRACE_PYTHON_ALLOCATORS=1: object-level attribution in a Python process. The
// interposer's malloc/mmap hooks see pymalloc's 1 MiB arenas, not the objects in them; with
// the option, Python's PYMEM_DOMAIN_MEM and PYMEM_DOMAIN_OBJ allocators are wrapped
// (PyMem_SetAllocator) and every PyMem_* / PyObject_* call is recorded with its Python stack
// (allocation kinds 9-14, FORMAT.md), while the calls those allocators make underneath
// (pymalloc's arena mmaps and munmaps, its malloc for requests over 512 bytes) pass through
// untraced: each byte is counted once. Off (the default) nothing here runs.
#pragma once
#include <atomic>

#include "runtime.hpp"

namespace pmt::preload {

// From the constructor, after python_init() found a supported interpreter, before the trace
// header is written, with the guard held: reads the option and wraps the two domains and the
// arena allocator (before Py_Initialize: no object exists yet). Returns whether it did.
bool pyalloc_init();
// Whether the domains are wrapped (the header's kFlagPythonAllocators).
bool pyalloc_active();

// Set by pyalloc_init. CPython's pre-initialisation may replace the allocators we wrapped
// (PYTHONMALLOC=..., -X dev: _PyMem_SetupAllocators); every audit event (python_stack.cpp's
// hook, GIL held) checks that ours are still the outermost and wraps them again if not.
extern std::atomic<bool> g_pyalloc_on;
void pyalloc_recheck();
inline void pyalloc_on_audit() {
    if (PMT_UNLIKELY(g_pyalloc_on.load(std::memory_order_relaxed))) pyalloc_recheck();
}

}  // namespace pmt::preload
