// The interposer's own initialisation must not be in the trace (libstdc++'s initialisers,
// linked into libpymemtrace.so, malloc its exception pool after our constructor). Without an
// argument this program allocates nothing; with one it makes exactly one block, malloc(12345),
// which stays live. Exit 0.
#include <stdlib.h>

static void* volatile g_keep;

int main(int argc, char** argv) {
    (void)argv;
    if (argc > 1) {
        g_keep = malloc(12345);
        if (!g_keep) return 1;
    }
    return 0;
}
