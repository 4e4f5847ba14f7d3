/* Many short-lived threads: each allocates, hands a block to the next, and exits. The trace
   must hold every thread's events (none lost at thread exit) and the process must not grow:
   exited threads' state is reclaimed. Blocks freed by another thread than their allocator. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static volatile int sink;

static void* worker(void* arg) {
    free(arg); /* allocated by the previous thread */
    for (int i = 0; i < 100; ++i) {
        char* p = malloc(1000 + (size_t)i);
        p[0] = (char)i; /* used, so the compiler keeps the pair */
        sink += p[0];
        free(p);
    }
    return malloc(4242);
}

int main(void) {
    void* carry = malloc(4242);
    for (int i = 0; i < 300; ++i) {
        pthread_t t;
        pthread_create(&t, NULL, worker, carry);
        pthread_join(t, &carry);
    }
    free(carry);
    printf("threads 300\n");
    return 0;
}
