// Runs a program with membarrier(2) refused from its start (a seccomp filter survives exec),
// under the interposer: LD_PRELOAD is set to LIB for PROG only.
// Usage: native_deny_membarrier LIB PROG [ARG...]. Exits 2 if the filter cannot be installed.
#include "deny_membarrier.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: native_deny_membarrier LIB PROG [ARG...]\n");
        return 2;
    }
    if (deny_membarrier(0) != 0) {
        perror("native_deny_membarrier: seccomp");
        return 2;
    }
    if (setenv("LD_PRELOAD", argv[1], 1) != 0) return 2;
    execvp(argv[2], argv + 2);
    perror("native_deny_membarrier: exec");
    return 2;
}
