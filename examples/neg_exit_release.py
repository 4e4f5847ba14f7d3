# Negative control: several arrays released together at interpreter exit, the last one made
# right before the script ends.
# Expected finding: no window.
import numpy as np

N = 12_500_000  # float64 elements: 100 MB each

a = np.ones(N)  # LINE:a
b = np.full(N, 2.0)  # LINE:b
c = a + b  # LINE:c
print(float(c[0]))
