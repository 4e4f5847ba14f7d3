# Fixed variant of examples/reassign_in_function.py: np.sqrt writes into its input (out=).
import numpy as np

N = 37_500_000  # float64 elements: 300 MB


def load():
    return np.full(N, 3.0)


def step(x):
    return np.sqrt(x, out=x)


def main():
    data = load()
    data = step(data)
    head = data[:10_000].copy()
    return float(head[0])


print(main())
