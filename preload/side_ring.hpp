// Events of signal handlers that interrupt one of our hooks (issue 7). A hook holds the
// reentrancy guard (t_in_hook) from its start to its end, and maybe its thread's buffer flag:
// a call made by a handler that interrupted it cannot record as usual (it would wait for the
// flag forever). It used to pass through untraced. Now such a call does the real call and
// puts the event's essentials into its thread's side ring (fixed size, no allocation, no
// lock); the interrupted hook moves them into the thread's buffer before it returns. A ring
// that is full counts the event as lost: the End chunk says how many (FORMAT.md).
//
// Which nested calls are a handler's: t_in_hook tells a hook (kGuardHook) from our own code
// (kGuardOwn: our threads, start, fork, exec, exit; everything there passes through), and
// within a hook the caller's address tells our own cold-path calls (the stack tables' calloc,
// pthread_setspecific's) and the real allocator's own (jemalloc's mmap) apart from the
// program's: calls from our library, libc, ld.so, libstdc++ or the allocator pass through.
#pragma once
#include <atomic>
#include <cstdint>

#include "pmt/format.hpp"
#include "runtime.hpp"

namespace pmt::preload {

// Values of t_in_hook (0: no guard). `true` is kGuardOwn. kGuardInit: the loading thread
// after our constructor, while the rest of our library's initialisers run (lifecycle.cpp,
// own_init_call). kGuardPass: the program's own calls made under our guard, so that they are
// not recorded twice (Python's allocator domains, pyalloc.cpp) or at all (after the trace
// ended): forwarded like kGuardOwn's, but to the program's allocator, never to our heap.
enum : uint8_t { kGuardOwn = 1, kGuardHook = 2, kGuardInit = 3, kGuardPass = 4 };

enum class SideOp : uint8_t { Alloc, Free, Realloc, Mmap, Munmap, Mremap };

struct SideEvent {
    SideOp op;
    AllocKind kind;  // Alloc, Realloc
    int32_t fd;      // Mmap
    uint32_t prot, flags;
    uint64_t addr, size;          // the new block or mapping (Free, Munmap: the released one)
    uint64_t old_addr, old_size;  // Realloc, Mremap
};

// One per thread. Only this thread touches it: the handler (pushing) runs on top of the
// hook (draining), never the other way round, so signal fences are all the ordering needed.
struct SideRing {
    static constexpr uint32_t kSlots = 32;
    uint32_t head, tail;  // pushed, drained (free-running; zero at thread start)
    SideEvent slot[kSlots];
};
extern __thread SideRing t_side __attribute__((tls_model("initial-exec")));

inline bool side_pending() {
    return __atomic_load_n(&t_side.head, __ATOMIC_RELAXED) != t_side.tail;
}
// Moves the ring's events into the thread's buffer (cold: only after a handler's call).
void side_drain();

// The end of a traced hook: drops the guard and drains whatever a handler left in the ring.
inline void end_traced() {
    t_in_hook = 0;
    if (PMT_UNLIKELY(side_pending())) side_drain();
}

// The guard of a traced hook. Whatever a handler left in the ring is drained on the way out.
class TracedGuard {
public:
    TracedGuard() { t_in_hook = kGuardHook; }
    ~TracedGuard() { end_traced(); }
    TracedGuard(const TracedGuard&) = delete;
    TracedGuard& operator=(const TracedGuard&) = delete;
};

// Whether a call made with the guard already held (t_in_hook != 0) is a signal handler's that
// interrupted a hook, returning to `caller`; cold. Then the caller does the real call and, if
// it succeeded, side_push()es the event.
bool side_wanted(const void* caller);
void side_push(const SideEvent& e);

// Finds the code our hooks and their callees run (the library constructor, once).
void side_init();
// Events lost to a full ring since the trace started (the End chunk's lost_events).
uint64_t side_lost();
void side_fork_child();  // the child's trace starts at 0

}  // namespace pmt::preload
