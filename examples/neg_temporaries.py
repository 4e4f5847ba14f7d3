# Negative control: temporaries that never overlap (allocate, use, `del`, repeat).
# Expected finding: no window.
import numpy as np

N = 25_000_000  # float64 elements: 200 MB

totals = []
for i in range(4):
    t = np.full(N, float(i))  # LINE:temp
    totals.append(float(t.sum()))
    del t
head = np.array(totals * 1000)
print(head[:4])
