# Fixed variant of examples/list_of_floats.py: a numpy float64 array, built in place.
import numpy as np

N = 4_000_000

xs = np.arange(N, dtype=np.float64)
xs *= 0.5
total = float(xs.sum())
head = xs[:100_000].copy()
print(total, head[1], np.__name__)
