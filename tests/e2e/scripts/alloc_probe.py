# Which allocator really serves this process's malloc: asks malloc_usable_size about a block of
# 2,053 bytes (glibc: 2,056, the 2,064-byte chunk minus its header; jemalloc: its 2,560 size
# class; mimalloc: its own bin size) and lists the allocator libraries mapped into the process.
# Prints "usable=<n> mapped=<comma-separated names or none>".
import ctypes

libc = ctypes.CDLL(None)  # the process's global symbols: the interposer's malloc comes first
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.malloc_usable_size.restype = ctypes.c_size_t
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]

p = libc.malloc(2053)
usable = libc.malloc_usable_size(p)
libc.free(p)

mapped = set()
with open("/proc/self/maps") as maps:
    for line in maps:
        for name in ("jemalloc", "mimalloc"):
            if name in line:
                mapped.add(name)
print(f"usable={usable} mapped={','.join(sorted(mapped)) or 'none'}")
