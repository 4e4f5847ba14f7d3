# Fixed variant of examples/float64_arrays.py: the same arrays in float32.
import numpy as np

N = 25_000_000

a = np.full(N, 0.25, dtype=np.float32)
b = np.full(N, 1.5, dtype=np.float32)
a += b
head = a[:10_000].copy()
print(float(head[0]), float(b[1]))
