# pymemtrace demo: a small numpy job whose peak is twice what it needs to be.
#
# Expected finding (run `make demo`): the peak is about 240 MB above the interpreter's baseline,
# reached inside step() during its second call. At the peak, the line `return x * 1.5` in step()
# holds 160 MB (the old `data` and the new one are alive together: `data = step(data)` keeps the
# old array until the new one is complete), and the line `return np.arange(...)` in load() holds
# 80 MB (`raw` is an intermediate that is kept although nothing uses it after the first step).
# Remedies: `del raw` after the first step (-80 MB) and an in-place update such as
# `np.multiply(data, 1.5, out=data)` (-80 MB): the same job fits in 80 MB.
import numpy as np

N = 10_000_000  # float64 elements: 80 MB per array


def load():
    return np.arange(N, dtype=np.float64)  # 80 MB, kept by `raw` for the whole run


def step(x):
    return x * 1.5  # a new 80 MB array while the caller still holds x


def main():
    raw = load()
    data = step(raw)  # raw is never used again, but stays alive
    data = step(data)  # old and new `data` alive together: the peak
    print(f"demo: result {data[-1]:.1f}, {data.nbytes * 3 / 1e6:.0f} MB of arrays at the peak")


if __name__ == "__main__":
    main()
