// Cross-thread hand-off: one thread mallocs each block and passes it through a one-slot
// mailbox to another thread that frees it at once. The pair often lands within microseconds,
// so the trace must order a free after its malloc even across threads (FORMAT.md, time
// resolution). The consumer is created first so it has the lower thread id. Prints the count.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(void) {
    pthread_t c, p;
    if (pthread_create(&c, NULL, consumer, NULL) || pthread_create(&p, NULL, producer, NULL))
        return 1;
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    printf("%d\n", kBlocks);
    return 0;
}
