// Run with another allocator preloaded BEFORE the interposer (LD_PRELOAD="libjemalloc.so.2
// libpymemtrace.so"): the program's malloc is then jemalloc's, and the first event the
// interposer sees is an mmap jemalloc makes while it holds its own lock. Many small and
// mid-sized blocks, made and freed. Exit 0 when done.
#include <stdlib.h>

int main(void) {
    size_t n = 300000;
    void** small = malloc(sizeof(void*) * n);
    void** mid = malloc(sizeof(void*) * n);
    if (!small || !mid) return 1;
    for (size_t i = 0; i < n; i++) {
        small[i] = malloc(8);
        mid[i] = malloc(600);
    }
    for (size_t i = 0; i < n; i++) {
        free(small[i]);
        free(mid[i]);
    }
    free(small);
    free(mid);
    return 0;
}
