# Pattern: a name rebound to data computed from it (`data = step(data)`): the old array stays
# alive until the new one is complete.
# Expected finding: one window of 400 MB at the peak; new: reassign.py:<step> in step
#   (called from reassign.py:<rebind>), old: reassign.py:<load> in load; remedy "in-place";
#   peak ~0.81 GB, peak if fixed ~0.41 GB = the peak of fixed/reassign_fixed.py.
import numpy as np

N = 50_000_000  # float64 elements: 400 MB


def load():
    return np.ones(N)  # LINE:load


def step(x):
    return x * 2.0  # LINE:step


data = load()
data = step(data)  # LINE:rebind
head = np.round(data[:10_000], 2)  # the job goes on with the new data
print(float(head[0]))
