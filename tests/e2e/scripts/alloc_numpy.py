# numpy workload for the allocator comparison (issue 5): array buffers from 8 kB to 16 MB made,
# combined and released (numpy's data allocator calls malloc/calloc/realloc), with a result
# that is the same under every allocator.
import numpy as np

ROUNDS = 6
acc = 0.0
for r in range(ROUNDS):
    a = np.arange(2_000_000, dtype=np.float64) + r  # 16 MB
    b = np.sqrt(a) * 2.0                             # 16 MB temporary
    c = np.concatenate([a, b])                       # 32 MB
    parts = [c[i::97].copy() for i in range(97)]     # many mid-size copies (~330 kB each)
    small = [np.full(1000, i, dtype=np.float64) for i in range(300)]  # 8 kB blocks
    acc += float(c.sum()) + sum(float(p[0]) for p in parts) + sum(float(s[0]) for s in small)
    del a, b, c, parts, small
print(f"{acc:.10e}")
