# Benchmark workload: big numpy buffers. Few, large allocations (8-64 MB) and arithmetic on them:
# the case where the interposer's per-event cost should vanish behind the work.
import sys

import numpy as np

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
rng = np.random.default_rng(0)
acc = 0.0
for r in range(rounds):
    a = rng.random(1_000_000 * (1 + r % 8))
    b = a * 2.0 + 1.0
    c = np.sqrt(b)
    acc += float(c.sum())
    del a, b, c
print(f"{acc:.3f}")
