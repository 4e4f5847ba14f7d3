/* Shared by the C programs whose tests compare a trace with exact counts (native_lone_thread,
   tests/reliability/stress.c): the sizes of their own blocks, 3001..3999 and odd, a range no
   libc-internal allocation uses, and a SIGALRM handler, every ms, that maps and unmaps a page,
   interrupting the recording path wherever it is. */
#ifndef PMT_TESTS_PAGE_ALARM_H
#define PMT_TESTS_PAGE_ALARM_H

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>

/* Atomic: SIGALRM runs the handler on any thread, several at once (a plain increment lost
   counts, and TSan reported both as races). Lock-free atomics are async-signal-safe. */
static long alarm_maps;

static size_t pick(unsigned* seed) { return 3001 + 2 * (size_t)(rand_r(seed) % 499); }

static void on_alarm(int sig) {
    (void)sig;
    void* p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        munmap(p, 4096);
        __atomic_fetch_add(&alarm_maps, 1, __ATOMIC_RELAXED);
    }
}

static void alarm_every_ms(int on) {
    if (on) {
        struct sigaction sa = {0};
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
    }
    struct itimerval it = {{0, on ? 1000 : 0}, {0, on ? 1000 : 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

#endif
