/* exec keeps the pid: `native_exec_chain N` first tries to exec a path that does not exist
   (the trace must carry on after the failed exec), then execs itself with N-1; at 0 it
   vforks /bin/true (the vfork child must not touch the parent's trace) and prints "done". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int sink;

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    char* keep = malloc(4096 * (size_t)(n + 1));
    memset(keep, n, 4096 * (size_t)(n + 1));
    if (n > 0) {
        char arg[16];
        snprintf(arg, sizeof arg, "%d", n - 1);
        char* args[] = {argv[0], arg, NULL};
        execv("/nonexistent/pymemtrace-test", args);
        char* after = malloc(777); /* recorded in the same trace, after the failed exec */
        after[0] = 1;
        sink += after[0];
        free(after);
        execv("/proc/self/exe", args);
        perror("execv");
        return 1;
    }
    pid_t pid = vfork();
    if (pid == 0) {
        char* args[] = {"/bin/true", NULL};
        execv(args[0], args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("done %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    free(keep);
    return 0;
}
