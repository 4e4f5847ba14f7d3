# Fixed variant of examples/chain_intermediates.py: each intermediate is deleted after its
# last use.
import numpy as np

N = 25_000_000  # float64 elements: 200 MB

d1 = np.ones(N)
d2 = d1 * 2.0
del d1
d3 = d2 + 1.0
del d2
total = float(d3.sum())
del d3
report = np.zeros(3 * N)
report[:10] = total
head = report[:10_000].copy()
print(float(head[0]))
