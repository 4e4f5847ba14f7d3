# Ground truth for test_peak_numpy: four float64 arrays made on the marked lines and all alive at
# the end: 100 MiB (np.arange: malloc), 60 MiB (np.empty, then filled), 40 MiB (np.zeros:
# calloc) and 20 MiB (np.ones, a numpy function written in Python: the array is made inside
# numpy, and the marked line is on its call path). Argument: 1 for the arrays, 0 for the same
# script with empty arrays (the interpreter's baseline, measured in the same test run).
import gc
import sys

import numpy as np

MIB = 1 << 20
scale = int(sys.argv[1])
gc.collect()
a = np.arange(100 * MIB // 8 * scale, dtype=np.float64)  # LINE:a
b = np.empty(60 * MIB // 8 * scale)  # LINE:b
b.fill(1.0)
c = np.zeros(40 * MIB // 8 * scale)  # LINE:c
d = np.ones(20 * MIB // 8 * scale)  # LINE:d
print(a.nbytes, b.nbytes, c.nbytes, d.nbytes)
