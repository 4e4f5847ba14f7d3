// A mutex of our own for the locks our threads share with the program's (BasicLockable, for
// std::lock_guard). Not pthread_mutex_t: while the program has a single thread of its own,
// glibc 2.34+ takes a normal mutex without an atomic instruction (__libc_single_threaded,
// which own_heap.hpp may keep set while our threads run), so a pthread mutex between one of
// our threads and a program thread would not exclude anything. Three states (0 free, 1 held,
// 2 held with waiters), FUTEX_WAIT/WAKE; no allocation, no errno change visible to callers
// (the syscalls' errno is restored). Sanitized builds keep std::mutex, which TSan understands.
#pragma once
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define PMT_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define PMT_SANITIZED 1
#endif

namespace pmt::preload {

#if defined(PMT_SANITIZED)
using FutexLock = std::mutex;
#else
class FutexLock {
public:
    void lock() {
        uint32_t c = 0;
        if (word_.compare_exchange_strong(c, 1, std::memory_order_acquire)) return;
        if (c != 2) c = word_.exchange(2, std::memory_order_acquire);
        while (c != 0) {
            int saved = errno;
            syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, 2, nullptr,
                    nullptr, 0);
            errno = saved;
            c = word_.exchange(2, std::memory_order_acquire);
        }
    }
    void unlock() {
        if (word_.exchange(0, std::memory_order_release) == 2) {
            int saved = errno;
            syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAKE_PRIVATE, 1, nullptr,
                    nullptr, 0);
            errno = saved;
        }
    }

private:
    std::atomic<uint32_t> word_{0};
};
#endif

}  // namespace pmt::preload
