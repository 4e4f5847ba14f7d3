# Pattern: numpy float64 arrays dominate the peak where float32 precision may do.
# Expected finding: advice "float32" naming float64_arrays.py:<a> and <b> (400 MB of the peak);
#   peak if halved ~ the peak of fixed/float64_arrays_fixed.py (conditional on precision).
#   No window.
import numpy as np

N = 25_000_000

a = np.full(N, 0.25)  # LINE:a
b = np.full(N, 1.5)  # LINE:b
a += b
head = a[:10_000].copy()
print(float(head[0]), float(b[1]))
