# Pattern: a chain of intermediates that are never released (d1 -> d2 -> d3), then unrelated
# work that makes the peak while all three are still alive.
# Expected finding: no window (nothing is released when the next is made); advice "del" for
#   chain_intermediates.py:<d1>, <d2>, <d3> (600 MB kept until exit) with a peak if freed
#   ~ the peak of fixed/chain_intermediates_fixed.py (~600 MB instead of ~1.2 GB).
import numpy as np

N = 25_000_000  # float64 elements: 200 MB

d1 = np.ones(N)  # LINE:d1
d2 = d1 * 2.0  # LINE:d2
d3 = d2 + 1.0  # LINE:d3
total = float(d3.sum())
report = np.zeros(3 * N)  # LINE:report
report[:10] = total
head = report[:10_000].copy()
print(float(head[0]))
