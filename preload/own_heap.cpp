// The interposer's own heap and the single-thread flag (own_heap.hpp).
#include "own_heap.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "futex_lock.hpp"
#include "recorder.hpp"
#include "runtime.hpp"

namespace pmt::preload {

OwnRange g_own_range{reinterpret_cast<uintptr_t>(g_bootstrap_arena), kBootstrapArenaBytes};

namespace {

// Address space only: pages cost memory once touched. Our largest blocks are the writer's
// encoder columns and the stack walker's tables (the live-block table has mappings of its own).
constexpr uint64_t kReserve = uint64_t(8) << 30;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kHeader = 16;  // in front of every block; keeps blocks 16-aligned
constexpr int kClasses = 12;      // 32 << c bytes, header included: 32 B .. 64 KiB
constexpr uint64_t kSmallMax = uint64_t(32) << (kClasses - 1);
// A freed run's pages go back to the kernel from this size on; smaller runs stay resident for
// reuse, as glibc keeps blocks below its mmap threshold (a first store to a page costs ~11 us
// on a VM with shadow paging: a buffer freed and made again each cycle must not pay it).
constexpr uint64_t kReleaseBytes = uint64_t(4) << 20;
enum : uint64_t { kSmall = 0, kLarge = 1, kAligned = 2 };

struct Header {
    uint64_t kind;
    uint64_t value;  // kSmall: class; kLarge: bytes of the run; kAligned: offset to the block
};
static_assert(sizeof(Header) == kHeader);

struct FreeRun {  // a freed large run, listed through its own first bytes
    uint64_t bytes;
    FreeRun* next;
};

bool g_on = false;
FutexLock g_lock;
uint64_t g_top = 0;  // next unused address of the reservation
uint64_t g_end = 0;
void* g_free[kClasses] = {};
FreeRun* g_runs = nullptr;
std::atomic<bool> g_kept{false};

[[maybe_unused]] long raw_mmap(uint64_t len) {
    return syscall(SYS_mmap, nullptr, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

// Strict overcommit (mode 2) charges a private writable mapping in full, MAP_NORESERVE or
// not: 8 GiB of the program's commit limit. Read without stdio (no allocation this early).
[[maybe_unused]] bool overcommit_strict() {
    int fd = static_cast<int>(
        syscall(SYS_openat, AT_FDCWD, "/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC));
    if (fd < 0) return false;
    char c = 0;
    long n = syscall(SYS_read, fd, &c, 1);
    syscall(SYS_close, fd);
    return n == 1 && c == '2';
}

// Carves `bytes` (a multiple of 16) from the reservation. Under g_lock.
void* carve(uint64_t bytes) {
    if (bytes > g_end - g_top) return nullptr;
    void* p = reinterpret_cast<void*>(g_top);
    g_top += bytes;
    return p;
}

int size_class(uint64_t total) {  // total <= kSmallMax
    int c = 0;
    while ((uint64_t(32) << c) < total) ++c;
    return c;
}

void* with_header(void* block, uint64_t kind, uint64_t value) {
    auto* h = static_cast<Header*>(block);
    h->kind = kind;
    h->value = value;
    return static_cast<char*>(block) + kHeader;
}

Header* header_of(const void* p) {
    return reinterpret_cast<Header*>(reinterpret_cast<uintptr_t>(p) - kHeader);
}

// The pages wholly inside [a, a + bytes) go back to the kernel (they read as zeros again).
void release_pages(uintptr_t a, uint64_t bytes) {
    uintptr_t lo = (a + kPage - 1) & ~(kPage - 1), hi = (a + bytes) & ~(kPage - 1);
    if (hi > lo) {
        int saved = errno;
        syscall(SYS_madvise, lo, hi - lo, MADV_DONTNEED);
        errno = saved;
    }
}

// fresh: set when the block was carved now (its bytes are zeros).
void* alloc_locked(uint64_t n, bool* fresh) {
    *fresh = false;
    if (n > kReserve) return nullptr;
    const uint64_t total = (n + kHeader + 15) & ~uint64_t(15);
    if (total <= kSmallMax) {
        const int c = size_class(total);
        void* b = g_free[c];
        if (b) {
            g_free[c] = *static_cast<void**>(b);
        } else {
            b = carve(uint64_t(32) << c);
            *fresh = true;
        }
        return b ? with_header(b, kSmall, static_cast<uint64_t>(c)) : nullptr;
    }
    const uint64_t bytes = (total + kPage - 1) & ~(kPage - 1);
    for (FreeRun** link = &g_runs; *link; link = &(*link)->next) {
        FreeRun* r = *link;
        const uint64_t have = r->bytes;
        if (have >= bytes && have <= 2 * bytes) {
            *link = r->next;
            return with_header(r, kLarge, have);
        }
    }
    void* b = carve(bytes);
    *fresh = true;
    return b ? with_header(b, kLarge, bytes) : nullptr;
}

void free_locked(void* p) {
    Header* h = header_of(p);
    if (h->kind == kAligned) {
        p = static_cast<char*>(p) - h->value;
        h = header_of(p);
    }
    if (h->kind == kSmall) {
        void* b = h;
        *static_cast<void**>(b) = g_free[h->value];
        g_free[h->value] = b;
        return;
    }
    const uint64_t bytes = h->value;
    auto* r = reinterpret_cast<FreeRun*>(h);
    if (bytes >= kReleaseBytes)
        release_pages(reinterpret_cast<uintptr_t>(r) + sizeof(FreeRun), bytes - sizeof(FreeRun));
    r->bytes = bytes;
    r->next = g_runs;
    g_runs = r;
}

size_t usable(const void* p) {
    const Header* h = header_of(p);
    uint64_t skip = 0;
    if (h->kind == kAligned) {
        skip = h->value;
        h = header_of(static_cast<const char*>(p) - skip);
    }
    const uint64_t total = h->kind == kSmall ? uint64_t(32) << h->value : h->value;
    return static_cast<size_t>(total - kHeader - skip);
}

}  // namespace

void own_heap_init() {
#if !defined(PMT_SANITIZED)
    if (g_on) return;
    ErrnoGuard keep;
    rlimit as{};
    if (syscall(SYS_getrlimit, RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) return;
    if (overcommit_strict()) return;
    long r = raw_mmap(kReserve);
    if (r < 0 && r > -4096) return;
    // With transparent huge pages "always", a first touch could fault in 2 MiB at once.
    syscall(SYS_madvise, r, kReserve, MADV_NOHUGEPAGE);
    g_top = static_cast<uint64_t>(r);
    g_end = g_top + kReserve;
    g_own_range = OwnRange{static_cast<uintptr_t>(r), kReserve};
    g_on = true;
#endif
}

bool own_heap_on() { return g_on; }

void* own_malloc(size_t n) {
    std::lock_guard<FutexLock> lock(g_lock);
    bool fresh;
    return alloc_locked(n, &fresh);
}

void* own_calloc(size_t n, size_t m) {
    size_t total;
    if (__builtin_mul_overflow(n, m, &total)) return nullptr;
    void* p;
    bool fresh;
    {
        std::lock_guard<FutexLock> lock(g_lock);
        p = alloc_locked(total, &fresh);
    }
    if (p && !fresh) memset(p, 0, total);  // carved now: never written, zeros already
    return p;
}

void* own_realloc(void* p, size_t n) {
    if (!p) return own_malloc(n);
    const size_t have = usable(p);
    if (n <= have) return p;
    void* q = own_malloc(n);
    if (!q) return nullptr;
    memcpy(q, p, have);
    own_free(p);
    return q;
}

void* own_memalign(size_t align, size_t n) {
    if (align & (align - 1)) return nullptr;
    if (align <= kHeader) return own_malloc(n);
    if (n > kReserve) return nullptr;
    char* raw = static_cast<char*>(own_malloc(n + align + kHeader));
    if (!raw) return nullptr;
    const uintptr_t q = (reinterpret_cast<uintptr_t>(raw) + kHeader + align - 1) & ~(align - 1);
    return with_header(reinterpret_cast<void*>(q - kHeader), kAligned,
                       q - reinterpret_cast<uintptr_t>(raw));
}

void own_free(void* p) {
    if (!p || !g_on) return;  // off: a bootstrap arena block, never freed
    std::lock_guard<FutexLock> lock(g_lock);
    free_locked(p);
}

void own_heap_fork_prepare() { g_lock.lock(); }
void own_heap_fork_parent() { g_lock.unlock(); }
void own_heap_fork_child() { g_lock.unlock(); }  // the one thread left held it (prepare)

int start_thread_of_ours(pthread_t* thread, void* (*fn)(void*), void* arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    // glibc's view: the program has no thread but this one. Only a program thread may set the
    // flag back: one of ours could race a pthread_create of the program's.
    const bool single = g_on && !t_internal_thread && __libc_single_threaded;
    const int rc = pthread_create(thread, nullptr, fn, arg);
    if (single) {
        __libc_single_threaded = 1;
        g_kept.store(true, std::memory_order_relaxed);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return rc;
}

bool single_threaded_kept() { return g_kept.load(std::memory_order_relaxed); }

void single_threaded_release() {
    if (single_threaded_kept()) __libc_single_threaded = 0;
}

}  // namespace pmt::preload

#if !defined(PMT_SANITIZED)  // (the sanitized test programs link these sources; no flag there)
// --- Credentials ---------------------------------------------------------------------------
// glibc changes the credentials of every thread (its SIGSETXID broadcast) only when
// __libc_single_threaded is clear; with it kept set, a set*id call would change the calling
// thread's alone and leave ours with the old ones. So the flag is cleared for good first.
namespace {
using namespace pmt::preload;
template <class F, class... A>
int forward_setxid(F& slot, const char* name, A... a) {
    single_threaded_release();
    if (!slot) {
        const uint8_t saved = t_in_hook;
        t_in_hook = true;  // dlsym's calloc is ours
        slot = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
        t_in_hook = saved;
    }
    if (!slot) {
        errno = ENOSYS;
        return -1;
    }
    return slot(a...);
}
int (*g_setuid)(uid_t), (*g_setgid)(gid_t), (*g_seteuid)(uid_t), (*g_setegid)(gid_t);
int (*g_setreuid)(uid_t, uid_t), (*g_setregid)(gid_t, gid_t);
int (*g_setresuid)(uid_t, uid_t, uid_t), (*g_setresgid)(gid_t, gid_t, gid_t);
int (*g_setgroups)(size_t, const gid_t*);
}  // namespace

PMT_EXPORT int setuid(uid_t u) noexcept { return forward_setxid(g_setuid, "setuid", u); }
PMT_EXPORT int setgid(gid_t g) noexcept { return forward_setxid(g_setgid, "setgid", g); }
PMT_EXPORT int seteuid(uid_t u) noexcept { return forward_setxid(g_seteuid, "seteuid", u); }
PMT_EXPORT int setegid(gid_t g) noexcept { return forward_setxid(g_setegid, "setegid", g); }
PMT_EXPORT int setreuid(uid_t r, uid_t e) noexcept {
    return forward_setxid(g_setreuid, "setreuid", r, e);
}
PMT_EXPORT int setregid(gid_t r, gid_t e) noexcept {
    return forward_setxid(g_setregid, "setregid", r, e);
}
PMT_EXPORT int setresuid(uid_t r, uid_t e, uid_t s) noexcept {
    return forward_setxid(g_setresuid, "setresuid", r, e, s);
}
PMT_EXPORT int setresgid(gid_t r, gid_t e, gid_t s) noexcept {
    return forward_setxid(g_setresgid, "setresgid", r, e, s);
}
PMT_EXPORT int setgroups(size_t n, const gid_t* list) noexcept {
    return forward_setxid(g_setgroups, "setgroups", n, list);
}
#endif
