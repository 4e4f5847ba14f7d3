# Pattern: millions of numbers kept as a Python list of floats (8-byte pointer + 32-byte
# pymalloc block each) instead of a numpy array (8 bytes each). numpy is imported only so the
# baseline matches the fixed variant.
# Expected finding: advice "numpy-array" for list_of_floats.py:<build>, about 4,000,000 floats,
#   ~160 MB with the list, 32 MB as an array; peak if so ~ the peak of
#   fixed/list_of_floats_fixed.py. No window.
import numpy as np

N = 4_000_000

xs = [i * 0.5 for i in range(N)]  # LINE:build
total = sum(xs)
head = xs[:100_000]  # the job goes on with the list
print(total, head[1], np.__name__)
