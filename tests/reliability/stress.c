/* stress N FORKS: 8 threads each malloc and free N blocks (sizes 3001..3999, odd, a range no
   libc-internal allocation uses) keeping a ring of 64 live ones, while the main thread forks
   FORKS times, starting a short-lived thread (100 blocks allocated and freed) before each
   fork; each child allocates 1000 such blocks, frees 900 and exits. A signal handler
   (SIGALRM every ms) maps and unmaps a page, interrupting the recording path. Every thread
   finally leaves 5 blocks live. Prints its own exact counts for the test to compare with the
   traces: "parent allocs A frees F live L maps M" and "child allocs 1000 frees 900 live L". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../native/page_alarm.h"

#define THREADS 8
#define RING 64

static long per_thread;
static int sink;
/* The blocks each worker leaves live, reachable to the end: LeakSanitizer (tests/sanitize) then
   does not report them (held only on an exited thread's stack, some were, some not). */
char* stress_kept[THREADS * 5]; /* not static: stores to it are kept */
static int kept_n;

struct counts {
    unsigned seed;
    long allocs, frees, live;
};

static void* worker(void* arg) {
    struct counts* c = arg;
    char* ring[RING] = {0};
    size_t sizes[RING] = {0};
    for (long i = 0; i < per_thread; ++i) {
        int k = (int)(i % RING);
        if (ring[k]) {
            free(ring[k]);
            c->frees++;
            c->live -= (long)sizes[k];
        }
        sizes[k] = pick(&c->seed);
        ring[k] = malloc(sizes[k]);
        ring[k][0] = (char)i;
        __atomic_fetch_add(&sink, ring[k][0], __ATOMIC_RELAXED);
        c->allocs++;
        c->live += (long)sizes[k];
    }
    for (int k = 5; k < RING; ++k) /* 5 blocks stay live */
        if (ring[k]) {
            free(ring[k]);
            c->frees++;
            c->live -= (long)sizes[k];
        }
    for (int k = 0; k < 5; ++k)
        if (ring[k]) stress_kept[__atomic_fetch_add(&kept_n, 1, __ATOMIC_RELAXED)] = ring[k];
    return NULL;
}

/* A short-lived thread: allocates 100 blocks, frees them, exits while the workers run. */
static void* brief(void* arg) {
    unsigned seed = (unsigned)(size_t)arg;
    void* p[100];
    for (int i = 0; i < 100; ++i) p[i] = malloc(pick(&seed));
    for (int i = 0; i < 100; ++i) free(p[i]);
    return NULL;
}

static void child(unsigned seed) {
    char* keep[1000];
    long live = 0;
    size_t sz[1000];
    for (int i = 0; i < 1000; ++i) {
        sz[i] = pick(&seed);
        keep[i] = malloc(sz[i]);
        keep[i][0] = 1;
        live += (long)sz[i];
    }
    for (int i = 0; i < 900; ++i) {
        free(keep[i]);
        live -= (long)sz[i];
    }
    printf("child allocs 1000 frees 900 live %ld\n", live);
    fflush(stdout);
    if (seed & 1) exit(0);
    _exit(0);
}

int main(int argc, char** argv) {
    per_thread = argc > 1 ? atol(argv[1]) : 1000000;
    int forks = argc > 2 ? atoi(argv[2]) : 50;
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm_every_ms(1);

    pthread_t t[THREADS];
    struct counts c[THREADS] = {{0}};
    for (int i = 0; i < THREADS; ++i) {
        c[i].seed = (unsigned)i + 1;
        pthread_create(&t[i], NULL, worker, &c[i]);
    }
    int children = 0;
    for (int i = 0; i < forks; ++i) {
        pthread_t b;
        pthread_create(&b, NULL, brief, (void*)(size_t)(1000 + i));
        pid_t pid = fork();
        if (pid == 0) {
            alarm_every_ms(0);
            child(100u + (unsigned)i);
        }
        if (pid > 0) {
            int st;
            while (waitpid(pid, &st, 0) < 0) {
            }
            children += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        pthread_join(b, NULL);
    }
    for (int i = 0; i < THREADS; ++i) pthread_join(t[i], NULL);
    alarm_every_ms(0);
    long a = 0, f = 0, l = 0;
    for (int i = 0; i < THREADS; ++i) a += c[i].allocs, f += c[i].frees, l += c[i].live;
    a += 100L * forks, f += 100L * forks; /* the short-lived threads' blocks */
    printf("parent allocs %ld frees %ld live %ld maps %ld children %d\n", a, f, l,
           __atomic_load_n(&alarm_maps, __ATOMIC_RELAXED), children);
    return 0;
}
