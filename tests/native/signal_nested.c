/* signal_nested SECONDS PAIRS: the main thread mallocs and frees in a tight loop (so most
   signals land inside one of the interposer's hooks) while a POSIX timer sends SIGALRM every
   200 us (faster, the handler's own time makes the signals arrive back to back); the handler maps
   and unmaps PAIRS mappings of 3 pages (a length nothing else here uses). mmap/munmap are
   async-signal-safe; malloc in a handler is not, even in glibc. Prints "signals S maps M unmaps U":
   every one of those calls must be in the trace, or be counted as lost in its End chunk. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define LEN (3 * 4096)

static int pairs;
static volatile sig_atomic_t signals, maps, unmaps;
static volatile int sink;

static void on_alarm(int sig) {
    (void)sig;
    signals++;
    for (int i = 0; i < pairs; ++i) {
        void* p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) continue;
        maps++;
        if (munmap(p, LEN) == 0) unmaps++;
    }
}

int main(int argc, char** argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    pairs = argc > 2 ? atoi(argv[2]) : 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    timer_t timer;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGALRM;
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) return 1;
    struct itimerspec its = {{0, 200000}, {0, 200000}};
    timer_settime(timer, 0, &its, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        for (int i = 0; i < 1000; ++i) {
            char* p = malloc(24 + (size_t)(i % 7) * 8);
            p[0] = (char)i;
            sink += p[0];
            free(p);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 <
             seconds);
    struct itimerspec off = {{0, 0}, {0, 0}};
    timer_settime(timer, 0, &off, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, NULL); /* a pending one: not counted, not run */
    printf("signals %d maps %d unmaps %d\n", (int)signals, (int)maps, (int)unmaps);
    return 0;
}
