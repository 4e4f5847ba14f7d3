# Pure-Python allocation churn for the allocator comparison (issue 5): lists, strings and dicts
# made and dropped in a loop, with a working set that grows and shrinks. No numpy, so it runs
# on either interpreter; the printed result is the same under every allocator.
# Most bytes are in objects over 512 bytes (list item arrays of 90 pointers, strings of ~1 kB),
# which CPython takes from malloc. Small objects live in pymalloc's 1 MiB arenas, whose count
# depends on where mmap places them (an arena not aligned to 16 KiB holds 63 pools, not 64), so
# a workload made only of small objects can differ by an arena between runs and allocators.
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30

total = 0
keep = {}
for r in range(ROUNDS):
    rows = [[i, r, "x"] * 30 for i in range(4000)]  # 4,000 lists of 90 items (720 B arrays)
    blobs = [f"{r}-{i}-" * 150 for i in range(2000)]  # strings of ~1 kB
    text = ",".join(blobs)  # one ~2 MB string
    index = {i: rows[i] for i in range(0, 4000, 4)}  # a dict of 1,000 entries
    keep[r % 8] = rows[:: 2 + r % 3]  # some rows survive a few rounds
    total += len(text) + len(index) + sum(len(v) for v in keep.values())
    del rows, blobs, text, index
print(total, len(keep))
