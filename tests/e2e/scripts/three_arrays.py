# Ground truth for test_peak_numpy: three float64 arrays of 100, 60 and 40 MiB made on the
# marked lines and all alive at the end. Argument: 1 for the arrays, 0 for the same script with
# empty arrays (the interpreter's baseline, measured in the same test run).
import gc
import sys

import numpy as np

MIB = 1 << 20
scale = int(sys.argv[1])
gc.collect()
a = np.ones(100 * MIB // 8 * scale)  # LINE:a
b = np.ones(60 * MIB // 8 * scale)  # LINE:b
c = np.ones(40 * MIB // 8 * scale)  # LINE:c
print(a.nbytes, b.nbytes, c.nbytes)
