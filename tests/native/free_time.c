/* free_time: the times of frees that reuse the thread's latest clock reading (a lone program
   thread, preload/recorder.hpp, fast_free_time). The main thread waits out the trace clock's
   switch to the TSC, then: (1) mallocs a 1001-byte block, sleeps 40 ms (four sampler ticks,
   no allocation) and frees it; (2) mallocs 256 blocks of 1002 bytes and frees them one every
   25 us (busy waits, no allocation): 6.4 ms, less than a tick apart at its ends, more than
   kFreeReuse frees. Sizes 1001 and 1002 are ones no libc-internal allocation uses. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BURST 256

char* volatile free_time_sink; /* keeps the compiler from removing a malloc/free pair */

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
    puts("ok");
    return 0;
}
