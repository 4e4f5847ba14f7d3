/* main() ends with pthread_exit while a worker still runs; when the worker returns, the
   process has no thread of the program left and must exit with status 0 (glibc calls exit(0)
   from the last thread). Under the interposer its writer and sampler threads still count as
   threads; the sampler notices the zombie leader with only our threads left and calls exit(0). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void* worker(void* a) {
    (void)a;
    usleep(50000);
    free(malloc(1000));
    puts("worker done");
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}
