# Ground truth for test_python_allocators. With Python's allocators traced, every object is
# attributed to the line that made it: a float is 24 bytes (sys.getsizeof), a list's pointer
# array 8 bytes per slot (PyMem_Malloc / PyMem_Realloc). Everything stays live to the end, so
# the peak holds all of it.
import sys

n = int(sys.argv[1])
floats = [float(i) for i in range(n)]  # LINE:floats
table = [None] * n  # LINE:table
for i in range(n):
    table[i] = float(i) + 0.25  # LINE:fill
print(len(floats), len(table), sys.getsizeof(table[-1]))
