# Pattern: `data = step(data)` inside a function: the rebinding statement is main()'s line,
# not the module's `main()` call that made both arrays.
# Expected finding: one window of 300 MB at the peak; new: reassign_in_function.py:<step> in
#   step (called from reassign_in_function.py:<rebind> in main), old: <load> in load;
#   remedy "in-place"; peak if fixed ~ the peak of fixed/reassign_in_function_fixed.py.
import numpy as np

N = 37_500_000  # float64 elements: 300 MB


def load():
    return np.full(N, 3.0)  # LINE:load


def step(x):
    return np.sqrt(x)  # LINE:step


def main():
    data = load()
    data = step(data)  # LINE:rebind
    head = data[:10_000].copy()  # the job goes on with the new data
    return float(head[0])


print(main())
