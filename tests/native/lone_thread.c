/* lone_thread [N]: the main thread mallocs and frees N blocks (sizes 3001..3999, odd, a range no
   libc-internal allocation uses) keeping a ring of 64 live, while a SIGALRM handler (every ms)
   maps and unmaps a page, interrupting the recording path. Between flushes the interposer's
   writer takes such a lone thread's full buffers without membarrier (preload/recorder.cpp,
   collect_handed). Halfway a second thread mallocs 1000 blocks of the range and exits; the
   main thread frees them (a hand-off), and from then on the writer collects with membarrier
   again. Finally 5 ring blocks stay live. Prints its exact counts for the test to compare
   with the trace: "allocs A frees F live L maps M". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "page_alarm.h"

#define RING 64
#define HANDED 1000

static int sink;
char* lone_kept[5]; /* not static: the live blocks stay reachable (LeakSanitizer) */
static char* handed[HANDED];
static size_t handed_size[HANDED];

static void* second(void* arg) {
    unsigned seed = (unsigned)(size_t)arg;
    for (int i = 0; i < HANDED; ++i) {
        handed_size[i] = pick(&seed);
        handed[i] = malloc(handed_size[i]);
        handed[i][0] = 1;
    }
    return NULL;
}

int main(int argc, char** argv) {
    long n = argc > 1 ? atol(argv[1]) : 500000;
    alarm_every_ms(1);

    unsigned seed = 7;
    long allocs = 0, frees = 0, live = 0;
    char* ring[RING] = {0};
    size_t sizes[RING] = {0};
    for (long i = 0; i < n; ++i) {
        if (i == n / 2) {
            pthread_t t;
            pthread_create(&t, NULL, second, (void*)(size_t)99);
            pthread_join(t, NULL);
            for (int k = 0; k < HANDED; ++k) free(handed[k]);
            allocs += HANDED;
            frees += HANDED;
        }
        int k = (int)(i % RING);
        if (ring[k]) {
            free(ring[k]);
            frees++;
            live -= (long)sizes[k];
        }
        sizes[k] = pick(&seed);
        ring[k] = malloc(sizes[k]);
        ring[k][0] = (char)i;
        __atomic_fetch_add(&sink, ring[k][0], __ATOMIC_RELAXED);
        allocs++;
        live += (long)sizes[k];
    }
    for (int k = 5; k < RING; ++k)
        if (ring[k]) {
            free(ring[k]);
            frees++;
            live -= (long)sizes[k];
        }
    for (int k = 0; k < 5; ++k) lone_kept[k] = ring[k];
    alarm_every_ms(0);
    printf("allocs %ld frees %ld live %ld maps %ld\n", allocs, frees, live,
           __atomic_load_n(&alarm_maps, __ATOMIC_RELAXED));
    return 0;
}
