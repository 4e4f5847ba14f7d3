/* The allocator the interposer's hooks find with dlsym(RTLD_NEXT) in the sanitized program: the
   gated one of fork_gate.c, reached through one instrumented frame each. fork_gate.c is not
   instrumented (its malloc runs before TSan is initialised), so without these frames TSan's
   reports would lose the hook's function that allocated, which tsan.supp names. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define FRAME __attribute__((disable_tail_calls, noinline))
FRAME static void* h_malloc(size_t n) { return malloc(n); }
FRAME static void* h_calloc(size_t k, size_t n) { return calloc(k, n); }
FRAME static void* h_realloc(void* p, size_t n) { return realloc(p, n); }
FRAME static void* h_reallocarray(void* p, size_t k, size_t n) { return reallocarray(p, k, n); }
FRAME static void h_free(void* p) { free(p); }
FRAME static int h_posix_memalign(void** p, size_t a, size_t n) { return posix_memalign(p, a, n); }
FRAME static void* h_aligned_alloc(size_t a, size_t n) { return aligned_alloc(a, n); }
FRAME static void* h_memalign(size_t a, size_t n) { return memalign(a, n); }
FRAME static void* h_valloc(size_t n) { return valloc(n); }
FRAME static void* h_pvalloc(size_t n) { return pvalloc(n); }

/* dlsym(RTLD_NEXT) from this program would find TSan's functions, past fork_gate.c's. */
void* pmt_san_dlsym(void* handle, const char* name) {
    static const struct {
        const char* name;
        void* fn;
    } gated[] = {{"malloc", (void*)h_malloc},
                 {"calloc", (void*)h_calloc},
                 {"realloc", (void*)h_realloc},
                 {"reallocarray", (void*)h_reallocarray},
                 {"free", (void*)h_free},
                 {"posix_memalign", (void*)h_posix_memalign},
                 {"aligned_alloc", (void*)h_aligned_alloc},
                 {"memalign", (void*)h_memalign},
                 {"valloc", (void*)h_valloc},
                 {"pvalloc", (void*)h_pvalloc}};
    if (handle == RTLD_NEXT)
        for (size_t i = 0; i < sizeof gated / sizeof gated[0]; ++i)
            if (strcmp(name, gated[i].name) == 0) return gated[i].fn;
    return dlsym(handle, name); /* same object as the caller: RTLD_NEXT means the same */
}
