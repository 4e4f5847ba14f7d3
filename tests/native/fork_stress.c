/* fork while threads allocate: four threads churn malloc/realloc/free while the main thread
   forks 40 times; each child allocates, starts a thread, and exits (exit or _exit in turn).
   A deadlock in the fork handlers shows as SIGALRM (exit 142) instead of "ok". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;
static volatile int sink;

static void* churn(void* arg) {
    unsigned seed = (unsigned)(size_t)arg;
    void* slots[64] = {0};
    while (!stop) {
        unsigned i = (unsigned)rand_r(&seed) % 64;
        size_t n = 16 + (size_t)rand_r(&seed) % 70000;
        if (slots[i] && (rand_r(&seed) & 1))
            slots[i] = realloc(slots[i], n);
        else {
            free(slots[i]);
            slots[i] = malloc(n);
        }
    }
    for (int i = 0; i < 64; ++i) free(slots[i]);
    return NULL;
}

static void* child_thread(void* arg) {
    (void)arg;
    char* p = malloc(12345);
    p[0] = 1;
    sink += p[0];
    free(p);
    return NULL;
}

int main(void) {
    alarm(120);
    pthread_t th[4];
    for (int i = 0; i < 4; ++i) pthread_create(&th[i], NULL, churn, (void*)(size_t)(i + 1));
    int failures = 0;
    for (int k = 0; k < 40; ++k) {
        pid_t pid = fork();
        if (pid == 0) {
            char* p = malloc(100000);
            p[0] = 1;
            sink += p[0];
            pthread_t t;
            pthread_create(&t, NULL, child_thread, NULL);
            pthread_join(t, NULL);
            free(p);
            if (k % 2) _exit(7);
            exit(7);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 7) ++failures;
    }
    stop = 1;
    for (int i = 0; i < 4; ++i) pthread_join(th[i], NULL);
    printf(failures ? "failures %d\n" : "ok\n", failures);
    return failures != 0;
}
