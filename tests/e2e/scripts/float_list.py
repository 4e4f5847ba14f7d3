# Ground truth for test_python_objects: a list of N distinct floats built on the marked line.
# Pure Python (runs on any CPython 3.11): the float objects live in pymalloc arenas (mmap), the
# list's pointer array comes from malloc/realloc; both are made while that line runs.
import sys

n = int(sys.argv[1])
floats = [float(i) + 0.5 for i in range(n)]  # LINE:floats
print(len(floats))
