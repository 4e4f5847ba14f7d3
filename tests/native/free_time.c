/* free_time: the times of frees that take their allocation's time (a lone program thread,
   preload/recorder.hpp, fast_free_time: a free whose block's allocation is the thread's latest
   record, within one sampler tick). The main thread waits out the trace clock's switch to the
   TSC, then: (1) mallocs a 1001-byte block, sleeps 40 ms (four sampler ticks, no allocation)
   and frees it; (2) mallocs 256 blocks of 1002 bytes and frees them one every 25 us (busy
   waits, no allocation); (3) 20 times: mallocs 1004 and 1005 bytes, sleeps 3 ms and frees the
   first, then the second. Sizes 1001-1005 are ones no libc-internal allocation uses. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BURST 256

/* keep the compiler from removing a malloc/free pair */
char* volatile free_time_sink;
char* volatile free_time_first;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

int main(void) {
    for (int i = 0; i < 15; ++i) { /* past the clock's calibration (~50 ms) */
        free_time_sink = malloc(64);
        free(free_time_sink);
        sleep_ms(10);
    }
    free_time_sink = malloc(1001);
    sleep_ms(40);
    free(free_time_sink);

    static char* burst[BURST];
    for (int i = 0; i < BURST; ++i) {
        burst[i] = malloc(1002);
        burst[i][0] = 1;
    }
    for (int i = 0; i < BURST; ++i) {
        double until = now_s() + 25e-6;
        while (now_s() < until) {
        }
        free(burst[i]);
    }
    for (int i = 0; i < 20; ++i) {
        free_time_first = malloc(1004);
        free_time_sink = malloc(1005);
        sleep_ms(3);
        free(free_time_first);
        free(free_time_sink);
    }
    puts("ok");
    return 0;
}
