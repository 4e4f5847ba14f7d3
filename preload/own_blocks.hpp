// Blocks the interposer makes untraced (under its guard) that the program frees: our audit
// hook's entry in _PyRuntime's list (python_stack.cpp), which CPython frees at finalisation
// with PyMem_RawFree, that is through a traced free(). Its free would be a free of a block the
// trace never saw (an unknown free, "1 free of blocks made before tracing started" in every
// report). The writer drops such a free when its address is one noted here: only on its
// unknown-free path, so free's fast path costs nothing more.
// Header-only (inline variables): python_stack.cpp and exit_replay.cpp are also built without
// the rest of the interposer (tests/pystack, tests/native).
#pragma once
#include <atomic>
#include <cstdint>

namespace pmt::preload {

// Up to kOwnBlocks addresses, 0 for a free slot; bit 0 set: the block was made with CPython's
// raw allocator after its pre-initialisation changed it, that is by the debug hooks, which free
// the underlying block, 2 * sizeof(size_t) bytes before the one they returned (its size and API
// id: Objects/obmalloc.c's debug layout); the block's own address is taken too, in case the new
// allocator was another.
constexpr int kOwnBlocks = 4;
inline std::atomic<uint64_t> g_own_blocks[kOwnBlocks];
constexpr uint64_t kDebugHeaderBytes = 2 * sizeof(size_t);

// Notes p (made untraced, freed by the program later; a full table: left out). `debug`: made
// with CPython's raw allocator after its pre-initialisation changed it (the debug hooks: -X dev,
// PYTHONMALLOC=debug, malloc_debug, pymalloc_debug). Any thread; the free comes after it.
inline void note_own_block(const void* p, bool debug) {
    if (!p) return;
    const uint64_t v = reinterpret_cast<uintptr_t>(p) | (debug ? 1 : 0);
    for (auto& s : g_own_blocks) {
        uint64_t zero = 0;
        if (s.compare_exchange_strong(zero, v, std::memory_order_release)) return;
    }
}

// The writer, for a free of an address it does not hold: whether that is the free of one of
// our noted blocks (then forgotten: one free per block).
inline bool own_block_freed(uint64_t addr) {
    for (auto& s : g_own_blocks) {
        uint64_t v = s.load(std::memory_order_acquire);
        const uint64_t block = v & ~uint64_t{1};
        if (v == 0 || (addr != block && !(v & 1 && addr == block - kDebugHeaderBytes))) continue;
        if (s.compare_exchange_strong(v, 0)) return true;
    }
    return false;
}

}  // namespace pmt::preload
