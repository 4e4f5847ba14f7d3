// The interposer's own heap: every block our code allocates (on our threads, and on the
// program's threads inside our hooks or under our guard) comes from here, never from the
// program's allocator. Two reasons:
// - While the program has a single thread of its own, glibc 2.34+ runs malloc and free
//   without their arena locks and atomics (__libc_single_threaded); the pthread_create that
//   starts our writer clears that flag for good and costs a single-threaded program ~6% of
//   its CPU in an allocation-heavy loop (regex 1.063x with a library that only starts a
//   sleeping thread). With nothing of ours in glibc's heap, the flag can be set back after
//   our threads start (start_thread_of_ours): our threads then never enter glibc's malloc,
//   nor take a pthread mutex (futex_lock.hpp), nor bind a symbol lazily (-z now).
// - A hook may run inside the program's allocator (jemalloc preloaded before us, holding its
//   lock while it calls mmap): allocating from it there could deadlock.
// One reservation of address space (kReserve, MAP_NORESERVE: no memory until touched), size
// classes of 32 B .. 64 KiB (header included) with a free list each, larger blocks as page
// runs (freed ones reused when they fit within 2x; the pages of those of 4 MiB and more go
// back to the kernel), one futex lock. Without the reservation (an address-space limit,
// strict overcommit, a refused mmap, a sanitized build) our code allocates from the program's
// allocator as before and the flag is left alone.
#pragma once
#include <pthread.h>

#include <cstddef>
#include <cstdint>

namespace pmt::preload {

// [lo, lo + size): the heap's reservation, or, while it has none, the static bootstrap arena
// (runtime.hpp). Set once, before any block in it exists; free() asks on every call.
struct OwnRange {
    uintptr_t lo;
    uintptr_t size;
};
extern OwnRange g_own_range;
inline bool in_own_heap(const void* p) {
    return reinterpret_cast<uintptr_t>(p) - g_own_range.lo < g_own_range.size;
}

// Reserves the heap (resolve_real calls it first, once per process).
void own_heap_init();
bool own_heap_on();

// Only with own_heap_on(). own_free and own_realloc take a block of this heap (or null).
void* own_malloc(size_t n);
void* own_calloc(size_t n, size_t m);
void* own_realloc(void* p, size_t n);
void* own_memalign(size_t align, size_t n);  // align: a power of two
void own_free(void* p);

// Fork: the lock is taken around fork (prepare), so the child never inherits it held.
void own_heap_fork_prepare();
void own_heap_fork_parent();
void own_heap_fork_child();

// pthread_create for our threads (anchor, writer, sampler), with every signal blocked (the
// thread inherits that mask). Started by a program thread while the program has no thread of
// its own and our heap is on, it sets __libc_single_threaded back to 1.
int start_thread_of_ours(pthread_t* thread, void* (*fn)(void*), void* arg);
// Whether we have set it back at least once in this process (a block of glibc's that one of
// our threads releases must then not reach glibc: see hooks.cpp).
bool single_threaded_kept();
// A program thread about to change credentials (set*id): glibc applies the change to every
// thread only when the flag is clear, so it is cleared for good first.
void single_threaded_release();

}  // namespace pmt::preload
