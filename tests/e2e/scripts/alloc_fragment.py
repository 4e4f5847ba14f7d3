# Fragmentation workload for the allocator comparison (issue 5): many mid-size blocks, every
# other one freed, then larger blocks that cannot reuse the holes. The requested sizes sit just
# above allocator size classes (jemalloc and mimalloc round 2,053-2,113 bytes up to 2,560 and
# 4,133 up to 5,120; glibc adds 16 bytes at most), so RSS / live at the peak depends on the
# allocator while the live bytes do not. Prints a checksum-like line that is the same for all.
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
SMALL = 2020  # + 33 bytes of bytes-object header = 2,053 requested (> 512: malloc, not pymalloc)
LARGE = 4100  # + 33 = 4,133 requested

# b"x" * n writes every byte, so every block's pages are resident (bytes(n) would calloc and
# could leave fresh pages untouched).
blocks = [b"a" * (SMALL + (i % 16) * 4) for i in range(N)]  # LINE:mid_blocks
del blocks[::2]  # free every other one: holes between live blocks  # LINE:free_half
big = [b"b" * LARGE for _ in range(N // 2)]  # LINE:large_blocks
time.sleep(0.2)  # hold the peak for a few RSS samples (every 10 ms)
print(len(blocks), len(big), sum(map(len, blocks)) + sum(map(len, big)))
