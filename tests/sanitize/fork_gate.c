/* The sanitized stress program's fork gate (TSan, see CMakeLists.txt): fork waits until no
   other thread is inside the sanitizer's allocator, as glibc's fork does for its own malloc and
   as TSan's fork handler does itself from LLVM 19 on (llvm-project PR 96600).

   Why: clang 16's TSan locks only its internal allocator at fork, not the one malloc uses
   (its ForkBefore calls AllocatorLock, which is InternalAllocatorLock alone). A child forked
   while another thread held one of that allocator's size-class locks, refilling or draining
   its cache, blocks forever in its next malloc of that class. Our fork-child handler allocates
   (the child's new trace) and so does stress.c's child. Seen in pmt_san_stress: 1 child hung
   in 1,319 forks (30 runs; 1 run in 3 in an earlier session), its main thread in malloc ->
   SizeClassAllocator64::GetFromAllocator -> Semaphore::Wait (futex), its other threads (our
   writer and sampler, started by our child handler) idle. Reproduced without any code of
   ours: a thread held (gdb) inside GetFromAllocator while another forks; the child's malloc
   of that size class never returns. With this gate: 0 hangs and 0 reports in 1,000 forks (10
   runs of 100, ~59 s each as without it); a first form that gated only the hooks' calls: 0
   in 1,000 too; one that gated all calls but left libc's without the flag below deadlocked.

   How: this program's malloc family is defined here: each call counts itself in g_in, unless
   a fork closed the gate, and goes on to TSan's. libc and libstdc++ (the writer's vectors,
   zstd) reach these by name; the interposer's objects call pmt_san_dlsym instead of dlsym
   (objcopy renames it there), which hands them these too (fork_gate_hooks.c). TSan also drains a
   thread's cache when the thread ends, so threads are started through pmt_san_pthread_create
   (renamed the same way) and tracked: one that returned from its start routine is waited for until
   the kernel says it is gone. Order of the fork handlers: exit_prepare (no thread may begin to end;
   those ending are waited for), the interposer's prepare (its locks), alloc_prepare (the allocator
   gate), TSan's; after fork the reverse. Nothing here changes what the interposer does, only when
   fork may proceed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_int g_in;      /* calls inside the allocator now */
static atomic_int g_closed;  /* a fork is in progress: new calls wait */
static atomic_int g_ending;  /* threads marking themselves EXITING now */
static atomic_int g_no_exit; /* a fork is in progress: no thread may begin to end */

/* Dekker-style: the counter first, then the flag (all accesses sequentially consistent). */
static void pass(atomic_int* in, atomic_int* closed) {
    for (;;) {
        atomic_fetch_add(in, 1);
        if (!atomic_load(closed)) return;
        atomic_fetch_sub(in, 1);
        while (atomic_load(closed)) sched_yield();
    }
}
static void close_and_drain(atomic_int* in, atomic_int* closed) {
    atomic_store(closed, 1);
    while (atomic_load(in)) sched_yield();
}

/* Started threads: slot = tid << 2 | state. */
enum { FREE = 0, RUNNING = 1, EXITING = 2, SLOTS = 1024 };
static _Atomic uint64_t g_slots[SLOTS];
static __thread int t_slot = -1;

static pid_t tid_now(void) { return (pid_t)syscall(SYS_gettid); }
static int gone(uint64_t slot) {
    return syscall(SYS_tgkill, getpid(), (pid_t)(slot >> 2), 0) == -1 && errno == ESRCH;
}

/* A free slot, or one whose exiting thread is gone. */
static int claim_slot(uint64_t value) {
    for (;;) {
        for (int i = 0; i < SLOTS; ++i) {
            uint64_t s = atomic_load(&g_slots[i]);
            if ((s & 3) == RUNNING || ((s & 3) == EXITING && !gone(s))) continue;
            if (atomic_compare_exchange_strong(&g_slots[i], &s, value)) return i;
        }
        sched_yield(); /* more than SLOTS threads at once: wait for one to end */
    }
}

/* Before the interposer's prepare handler, its locks still free: an ending thread may still
   need them (a signal handler recording into a full buffer) or the allocator. */
static void exit_prepare(void) {
    close_and_drain(&g_ending, &g_no_exit);
    for (int i = 0; i < SLOTS; ++i) {
        uint64_t s = atomic_load(&g_slots[i]);
        if ((s & 3) != EXITING) continue;
        while (!gone(s)) sched_yield();
        atomic_compare_exchange_strong(&g_slots[i], &s, (uint64_t)FREE);
    }
}
static void exit_after(void) { atomic_store(&g_no_exit, 0); }
static void exit_child(void) {
    atomic_store(&g_ending, 0);
    atomic_store(&g_no_exit, 0);
}

/* After the interposer's prepare handler: a thread holding one of its locks may be about to
   allocate (the writer collecting buffers), so the gate closes only once they are ours. */
static void alloc_prepare(void) { close_and_drain(&g_in, &g_closed); }
static void alloc_parent(void) { atomic_store(&g_closed, 0); }
static void alloc_child(void) {
    /* Only this thread exists here, under a new tid; threads started from now on (the
       interposer's child handler starts its writer) claim fresh slots. */
    for (int i = 0; i < SLOTS; ++i)
        if (i != t_slot) atomic_store(&g_slots[i], (uint64_t)FREE);
    if (t_slot >= 0) atomic_store(&g_slots[t_slot], (uint64_t)tid_now() << 2 | RUNNING);
    atomic_store(&g_in, 0);
    atomic_store(&g_closed, 0);
}

/* Handlers run in reverse order of registration before fork, in order after it. This one
   comes before the interposer's constructor registers its handlers... */
__attribute__((constructor(101))) static void register_alloc_gate(void) {
    pthread_atfork(alloc_prepare, alloc_parent, alloc_child);
}
/* ...this one after (the interposer's constructor starts its writer: the first thread). */
static pthread_once_t g_exit_gate_once = PTHREAD_ONCE_INIT;
static void register_exit_gate(void) { pthread_atfork(exit_prepare, exit_after, exit_child); }

/* TSan runs a pending signal's handler when an intercepted call returns, that is inside one
   of ours. Should the handler allocate, this thread already holds the gate: it goes on, and
   fork waits for it as for the call it interrupted. */
static __thread int t_held;
static void enter(void) {
    if (t_held) {
        ++t_held;
        atomic_fetch_add(&g_in, 1);
        return;
    }
    pass(&g_in, &g_closed);
    t_held = 1;
}
static void leave(void) {
    --t_held;
    atomic_fetch_sub(&g_in, 1);
}

struct start {
    void* (*fn)(void*);
    void* arg;
};

static void* gated_start(void* p) {
    struct start s = *(struct start*)p;
    free(p);
    t_slot = claim_slot((uint64_t)tid_now() << 2 | RUNNING);
    void* r = s.fn(s.arg);
    pass(&g_ending, &g_no_exit);
    atomic_store(&g_slots[t_slot], (uint64_t)tid_now() << 2 | EXITING);
    atomic_fetch_sub(&g_ending, 1);
    return r; /* TSan's end of thread follows: it drains this thread's allocator cache */
}

int pmt_san_pthread_create(pthread_t* t, const pthread_attr_t* attr, void* (*fn)(void*),
                           void* arg) {
    pthread_once(&g_exit_gate_once, register_exit_gate);
    struct start* s = malloc(sizeof *s);
    if (!s) return EAGAIN;
    s->fn = fn;
    s->arg = arg;
    int rc = pthread_create(t, attr, gated_start, s);
    if (rc != 0) free(s);
    return rc;
}

/* The allocator of the whole program behind the gate: libc's and libstdc++'s calls (the writer's
   vectors, zstd) reach these by name; the interposer's hooks get them from pmt_san_dlsym. */
void* __interceptor_malloc(size_t);
void* __interceptor_calloc(size_t, size_t);
void* __interceptor_realloc(void*, size_t);
void* __interceptor_reallocarray(void*, size_t, size_t);
void __interceptor_free(void*);
int __interceptor_posix_memalign(void**, size_t, size_t);
void* __interceptor_aligned_alloc(size_t, size_t);
void* __interceptor_memalign(size_t, size_t);
void* __interceptor_valloc(size_t);
void* __interceptor_pvalloc(size_t);

/* The interposer's reentrancy flag (preload/runtime.hpp): under LD_PRELOAD every allocation
   runs inside one of its hooks, with the flag set, so a signal handler that interrupts it
   only forwards. Here libc's calls come straight to this file: they set it the same way. It
   matters: TSan runs pending handlers when its malloc returns; one that recorded could wait
   for a lock of the interposer that a forking thread holds while it waits for this call. */
extern __thread unsigned char pmt_in_hook __asm__("_ZN3pmt7preload9t_in_hookE");

#define GATED(ret, name, params, args)     \
    ret name params {                      \
        unsigned char saved = pmt_in_hook; \
        pmt_in_hook = 1;                   \
        enter();                           \
        ret v = __interceptor_##name args; \
        leave();                           \
        pmt_in_hook = saved;               \
        return v;                          \
    }
GATED(void*, malloc, (size_t n), (n))
GATED(void*, calloc, (size_t k, size_t n), (k, n))
GATED(void*, realloc, (void* p, size_t n), (p, n))
GATED(void*, reallocarray, (void* p, size_t k, size_t n), (p, k, n))
GATED(int, posix_memalign, (void** p, size_t a, size_t n), (p, a, n))
GATED(void*, aligned_alloc, (size_t a, size_t n), (a, n))
GATED(void*, memalign, (size_t a, size_t n), (a, n))
GATED(void*, valloc, (size_t n), (n))
GATED(void*, pvalloc, (size_t n), (n))
void free(void* p) {
    unsigned char saved = pmt_in_hook;
    pmt_in_hook = 1;
    enter();
    __interceptor_free(p);
    leave();
    pmt_in_hook = saved;
}
