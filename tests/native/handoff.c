// Cross-thread hand-off: one thread mallocs each block and passes it through a one-slot
// mailbox to another thread that frees it at once. The pair often lands within microseconds,
// so the trace must order a free after its malloc even across threads (FORMAT.md, time
// resolution). The consumer is created first so it has the lower thread id. Prints the count.
// Usage: native_handoff [MS]: with MS, a third thread makes membarrier(2) fail for the whole
// process MS milliseconds in (the interposer then falls back to locked stores mid-run).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "deny_membarrier.h"

enum { kBlocks = 100000 };
static _Atomic(void*) g_slot;
static atomic_int g_done;

static void* consumer(void* arg) {
    (void)arg;
    for (;;) {
        void* p = atomic_exchange(&g_slot, NULL);
        if (p) {
            free(p);
        } else if (atomic_load(&g_done)) {
            return NULL;
        }
    }
}

static void* producer(void* arg) {
    (void)arg;
    for (int i = 0; i < kBlocks; ++i) {
        void* p = malloc(64 + (size_t)(i % 7) * 16);
        while (atomic_load(&g_slot)) {
        }
        atomic_store(&g_slot, p);
    }
    while (atomic_load(&g_slot)) {
    }
    atomic_store(&g_done, 1);
    return NULL;
}

static atomic_int g_denied = -1;

static void* denier(void* arg) {
    long ms = *(const long*)arg;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&g_denied, deny_membarrier(SECCOMP_FILTER_FLAG_TSYNC));
    return NULL;
}

int main(int argc, char** argv) {
    pthread_t c, p, d;
    long deny_ms = argc > 1 ? atol(argv[1]) : -1;
    if (deny_ms >= 0 && pthread_create(&d, NULL, denier, &deny_ms)) return 1;
    if (pthread_create(&c, NULL, consumer, NULL) || pthread_create(&p, NULL, producer, NULL))
        return 1;
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    if (deny_ms >= 0) {
        pthread_join(d, NULL);
        if (atomic_load(&g_denied) != 0) {
            fprintf(stderr, "native_handoff: could not refuse membarrier\n");
            return 2;
        }
    }
    printf("%d\n", kBlocks);
    return 0;
}
