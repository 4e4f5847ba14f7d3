// Making fresh pages present in one call. On a KVM guest with shadow paging (the Firecracker VM
// of 1 Dec 2026) a first store to a page costs ~11 us; madvise(MADV_POPULATE_WRITE) makes a
// range present for ~0.8 us a page (and ~5.5 us at the first access). Header-only:
// exit_replay.cpp is also built without the rest of the interposer (tests/native).
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace pmt::preload {

// Populates the whole pages of [p, p + bytes) for writing (Linux 5.14+; older kernels refuse,
// and the pages fault in as they are touched). May set errno: callers that run on a program
// thread hold an ErrnoGuard.
inline void populate_pages(void* p, size_t bytes) {
#ifndef MADV_POPULATE_WRITE
    constexpr int MADV_POPULATE_WRITE = 23;
#endif
    constexpr uintptr_t kPage = 4096;
    const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kPage - 1);
    if (e > a) madvise(reinterpret_cast<void*>(a), e - a, MADV_POPULATE_WRITE);
}

}  // namespace pmt::preload
