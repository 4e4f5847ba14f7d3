# Fixed variant of examples/reassign.py: the same computation done in place, so only one
# 400 MB array ever exists. Its peak is the ground truth for reassign.py's "peak if fixed".
import numpy as np

N = 50_000_000  # float64 elements: 400 MB


def load():
    return np.ones(N)


def step(x):
    np.multiply(x, 2.0, out=x)
    return x


data = load()
data = step(data)
head = np.round(data[:10_000], 2)
print(float(head[0]))
