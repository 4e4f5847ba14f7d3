# Negative control: two arrays that are both kept and used until the end are not a window.
# Expected finding: no window (both are released only at interpreter exit).
import numpy as np

N = 25_000_000  # float64 elements: 200 MB each

a = np.ones(N)  # LINE:a
b = a * 2.0  # LINE:b
print(float(a[0] + b[0]))
