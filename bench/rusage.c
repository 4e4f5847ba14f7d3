/* pmt_rusage RESULT_FILE COMMAND [ARGS...]: runs COMMAND as its child and writes the child's
 * "maxrss_kb user_s sys_s" (wait4, the child and its waited-for descendants) to RESULT_FILE;
 * exits with the child's status (128 + N when killed by signal N).
 *
 * Why: Linux carries a process's peak RSS across exec (the old image's high-water mark goes into
 * the process's rusage), and a child forked or vforked from the benchmark driver starts with the
 * driver's. A Python driver of ~15 MB then hides every smaller peak (a child of a 60 MB process
 * running /bin/true reports ~75 MB). This launcher is a few hundred kB, so its child's figure is
 * the command's own. PMT_RUSAGE_PRELOAD, when set, becomes the child's LD_PRELOAD: the launcher
 * itself must not run under a preloaded library. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: pmt_rusage RESULT_FILE COMMAND [ARGS...]\n");
        return 2;
    }
    FILE* out = fopen(argv[1], "w");
    if (!out) {
        fprintf(stderr, "pmt_rusage: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "pmt_rusage: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        const char* preload = getenv("PMT_RUSAGE_PRELOAD");
        if (preload) {
            setenv("LD_PRELOAD", preload, 1);
            unsetenv("PMT_RUSAGE_PRELOAD");
        }
        execvp(argv[2], argv + 2);
        fprintf(stderr, "pmt_rusage: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "pmt_rusage: wait4: %s\n", strerror(errno));
            return 2;
        }
    }
    fprintf(out, "%ld %ld.%06ld %ld.%06ld\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec,
            (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    if (fclose(out) != 0) return 2;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
