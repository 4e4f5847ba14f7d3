# The Python workload of the kill loop (kill_loop.py): allocates and frees bytearrays of known
# sizes at random and, before each allocation, appends to a side file the time
# (CLOCK_MONOTONIC ns, the clock of the trace and of the killer) and the exact bytes its own
# blocks will hold once that allocation is made (bytearray(n) mallocs n + 1 bytes), and after
# it a "done" line with the time: a process preempted between the two lines and killed there
# never made that block, however long ago its first line was written.
# Usage: kill_workload.py SIDE_FILE SEED
import os
import random
import sys
import time

side = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
rng = random.Random(int(sys.argv[2]))
blocks = []
live = 0
os.write(side, b"start %d\n" % time.monotonic_ns())
while True:
    if blocks and rng.random() < 0.25:
        b = blocks.pop(rng.randrange(len(blocks)))
        live -= len(b) + 1
        del b
        continue
    n = rng.randrange(4096, 4 << 20)  # every block > 4 KiB (see kill_loop.py)
    os.write(side, b"%d %d\n" % (time.monotonic_ns(), live + n + 1))
    b = bytearray(n)  # ALLOCATING LINE (alone: list.append's own growth is on the next)
    os.write(side, b"done %d\n" % time.monotonic_ns())  # the block exists by this time
    blocks.append(b)
    b = None
    live += n + 1
    if live > (96 << 20):  # keep the footprint bounded: drop half the blocks
        for b in blocks[: len(blocks) // 2]:
            live -= len(b) + 1
        del blocks[: len(blocks) // 2]
        b = None
    time.sleep(rng.random() * 0.002)
