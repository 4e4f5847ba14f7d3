# Pattern: numpy float64 arrays dominate the peak where float32 precision may do.
# Expected finding: advice "float32" naming float64_arrays.py:<a> and <b> (400 MB of the peak);
#   peak if halved ~ the peak of fixed/float64_arrays_fixed.py (conditional on precision).
#   No window.
import numpy as np

N = 25_000_000

a = np.linspace(0.0, 1.0, N)  # LINE:a
b = np.linspace(1.0, 2.0, N)  # LINE:b
a += b
head = a[:10_000].copy()
print(float(head[0]), float(b[1]))
