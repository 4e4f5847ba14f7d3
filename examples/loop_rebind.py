# Pattern: a loop that rebinds a big array each iteration without `del`: every iteration the
# previous array and the new one coexist.
# Expected finding: one window entry (5 repetitions) of 200 MB at the peak, new and old both
#   loop_rebind.py:<update>; remedy "in-place"; peak if fixed ~ the peak of
#   fixed/loop_rebind_fixed.py.
import numpy as np

N = 25_000_000  # float64 elements: 200 MB

x = np.ones(N)  # LINE:first
for i in range(5):
    x = x * 1.01 + 0.5  # LINE:update
head = x[:10_000].copy()  # the job goes on with the result
print(float(head[0]))
