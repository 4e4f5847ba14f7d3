/* Calls every interposed function once with a known size and prints what it did, so a test
   can check each record in the trace (kind, size, order) against this program's own output.
   Everything is released before exit; the peak is reached just before the first release. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile int sink;

int main(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* The first traced call makes this thread's recording state (the hooks' cold path, which
       keeps errno itself: their fast path does not save it); a successful malloc leaves errno. */
    errno = EDOM;
    void* m = malloc(1000);
    if (errno != EDOM) {
        printf("errno changed by the first malloc\n");
        return 1;
    }
    void* c = calloc(10, 100);
    void* r = realloc(NULL, 3000);
    r = realloc(r, 5000);
    void* ra = reallocarray(NULL, 7, 1000);
    void* pm = NULL;
    if (posix_memalign(&pm, 64, 11000) != 0) return 1;
    void* aa = aligned_alloc(256, 13 * 256);
    void* ma = memalign(128, 17000);
    void* va = valloc(19000);
    void* pv = pvalloc(23000);
    char* map = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return 1;
    memset(map, 1, 64 * page);
    munmap(map + 48 * page, 16 * page); /* partial: 48 pages stay */
    char* grown = mremap(map, 48 * page, 96 * page, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) return 1;
    /* Touch every block: without a use, the compiler may delete a malloc/free pair. */
    void* blocks[] = {m, c, r, ra, pm, aa, ma, va, pv};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; ++i) {
        if (!blocks[i]) return 1;
        sink += ((volatile char*)blocks[i])[0] = (char)i;
    }
    printf("malloc 1000\ncalloc 1000\nrealloc 3000->5000\nreallocarray 7000\n");
    printf("posix_memalign 11000\naligned_alloc 3328\nmemalign 17000\nvalloc 19000\n");
    printf("pvalloc 23000\nmmap %zu munmap %zu mremap %zu\n", 64 * page, 16 * page, 96 * page);
    free(m);
    free(c);
    free(r);
    free(ra);
    free(pm);
    free(aa);
    free(ma);
    free(va);
    free(pv);
    munmap(grown, 96 * page);
    /* errno must survive the hooks: a failing call sets it, a traced free must not clobber it */
    void* big = malloc((size_t)1 << 62);
    if (big != NULL) return 1;
    int e = errno;
    void* small = malloc(10);
    sink += ((volatile char*)small)[0] = 1;
    free(small);
    if (errno != e) {
        printf("errno changed\n");
        return 1;
    }
    /* and a failing realloc, munmap or mremap leaves its own errno: their hooks record around
       the real call (nothing is recorded for a failure) */
    void* kept = malloc(100);
    errno = 0;
    if (realloc(kept, (size_t)1 << 62) != NULL || errno != ENOMEM) {
        printf("errno of a failed realloc changed\n");
        return 1;
    }
    free(kept);
    errno = 0;
    if (munmap((void*)1, page) == 0 || errno != EINVAL) {
        printf("errno of a failed munmap changed\n");
        return 1;
    }
    errno = 0;
    if (mremap((void*)1, page, 2 * page, 0) != MAP_FAILED || errno != EINVAL) {
        printf("errno of a failed mremap changed\n");
        return 1;
    }
    return 0;
}
