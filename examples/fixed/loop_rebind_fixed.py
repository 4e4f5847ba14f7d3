# Fixed variant of examples/loop_rebind.py: the update is done in place.
import numpy as np

N = 25_000_000  # float64 elements: 200 MB

x = np.ones(N)
for i in range(5):
    x *= 1.01
    x += 0.5
head = x[:10_000].copy()
print(float(head[0]))
