# pymemtrace demo: a small numpy job whose peak is 240 MB of arrays where 80 MB would do.
#
# Expected finding (run `make demo`): the peak is about 240 MB above the interpreter's baseline,
# reached during the second call of step(). At the peak, the line `return x * 1.5` in step()
# holds 160 MB and the line `return np.arange(...)` in load() holds 80 MB. The report shows:
# - one window of 80 MB at the peak: `data = step(data)` makes the new `data` (step's line)
#   while the old one (also from step's line) is still alive, until the rebinding releases it;
#   remedy: update in place (`np.multiply(data, 1.5, out=data)`);
# - `raw` (load's line, 80 MB) is kept although nothing uses it after the first step: `del raw`.
# Either fix brings the peak down by 80 MB; both together, by 160 MB.
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
    total = float(data.sum())  # the job goes on with the new data
    print(f"demo: sum {total:.4g}, {data.nbytes * 3 / 1e6:.0f} MB of arrays at the peak")


if __name__ == "__main__":
    main()
