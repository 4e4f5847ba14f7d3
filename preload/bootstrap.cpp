// Finding the real functions (dlsym(RTLD_NEXT)) and surviving the allocations dlsym itself
// makes: dlsym calls calloc for its error state, and calloc is us, with no real calloc yet.
// Those calls are served from a static arena; free() of an arena pointer is ignored.
#include <dlfcn.h>
#include <linux/futex.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "own_heap.hpp"
#include "runtime.hpp"

namespace pmt::preload {

__thread uint8_t t_in_hook __attribute__((tls_model("initial-exec"))) = 0;
RealFunctions g_real;
alignas(16) unsigned char g_bootstrap_arena[kBootstrapArenaBytes];

namespace {

constexpr size_t kArenaBytes = kBootstrapArenaBytes;
constexpr size_t kAlign = 16;  // g_bootstrap_arena's alignment
unsigned char* const g_arena = g_bootstrap_arena;
std::atomic<size_t> g_arena_used{0};

// 0 = not resolved, 1 = resolving (dlsym is running), 2 = done.
std::atomic<int> g_resolve_state{0};

template <class F>
void lookup(F& slot, const char* name) {
    slot = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

bool real_resolved() { return g_resolve_state.load(std::memory_order_acquire) == 2; }

void resolve_real() {
    int expected = 0;
    if (!g_resolve_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        // Another thread resolves (or this one, re-entered from dlsym's calloc): wait unless
        // it is us, in which case the caller falls back to the arena.
        if (expected == 1 && t_in_hook) return;
        // Sleep, not spin: a dlsym stuck in another thread must not cost a core.
        const timespec slice{0, 10 * 1000000};
        int state;
        while ((state = g_resolve_state.load(std::memory_order_acquire)) != 2)
            syscall(SYS_futex, &g_resolve_state, FUTEX_WAIT_PRIVATE, state, &slice, nullptr, 0);
        return;
    }
    uint8_t saved = t_in_hook;
    t_in_hook = true;  // marks "this thread is resolving" for the re-entrant calls above
    own_heap_init();   // before dlsym's calloc: its block then comes from our heap
    RealFunctions r{};
    lookup(r.malloc, "malloc");
    lookup(r.calloc, "calloc");
    lookup(r.realloc, "realloc");
    lookup(r.reallocarray, "reallocarray");
    lookup(r.free, "free");
    lookup(r.posix_memalign, "posix_memalign");
    lookup(r.aligned_alloc, "aligned_alloc");
    lookup(r.memalign, "memalign");
    lookup(r.valloc, "valloc");
    lookup(r.pvalloc, "pvalloc");
    lookup(r.mmap, "mmap");
    lookup(r.mmap64, "mmap64");
    lookup(r.munmap, "munmap");
    lookup(r.mremap, "mremap");
    lookup(r.execve, "execve");
    lookup(r.execv, "execv");
    lookup(r.execvp, "execvp");
    lookup(r.execvpe, "execvpe");
    lookup(r.exit_now, "_exit");
    lookup(r.exit_now_c99, "_Exit");
    if (!r.mmap64) r.mmap64 = r.mmap;
    g_real = r;
    t_in_hook = saved;
    g_resolve_state.store(2, std::memory_order_release);
    syscall(SYS_futex, &g_resolve_state, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

void* bootstrap_alloc(size_t n) {
    if (own_heap_on()) return own_malloc(n);
    // A size header in front of each block lets realloc() copy an arena block out.
    // The header sits in the last bytes of a 16-byte prefix, so blocks stay 16-aligned.
    size_t need = (n + 2 * kAlign - 1) & ~(kAlign - 1);
    size_t off = g_arena_used.fetch_add(need, std::memory_order_relaxed);
    if (off + need > kArenaBytes) return nullptr;
    unsigned char* p = g_arena + off;
    *reinterpret_cast<size_t*>(p + kAlign - sizeof(size_t)) = n;
    return p + kAlign;
}

// runtime.hpp. Called from hooks, after g_real is resolved.
void* internal_malloc(size_t n) { return own_heap_on() ? own_malloc(n) : g_real.malloc(n); }
void* internal_calloc(size_t n, size_t m) {
    return own_heap_on() ? own_calloc(n, m) : g_real.calloc(n, m);
}
void* internal_memalign(size_t align, size_t n) {
    if (own_heap_on()) return own_memalign(align, n);
    void* p = nullptr;
    return g_real.posix_memalign(&p, align, n) == 0 ? p : nullptr;
}
void internal_free(void* p) {
    if (!p) return;
    if (in_own_heap(p))
        own_free(p);
    else
        g_real.free(p);
}

size_t bootstrap_block_size(const void* p) {
    return *reinterpret_cast<const size_t*>(reinterpret_cast<const unsigned char*>(p) -
                                            sizeof(size_t));
}

}  // namespace pmt::preload
