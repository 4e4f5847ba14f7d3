# Ground truth for test_python_allocators: n empty lists, each given one item by append. An
# empty list has no slot array: list_resize makes its first (4 slots, 32 bytes) with
# PyMem_Realloc(NULL, 32), a realloc of nothing, at the append's line. Every list is kept to
# the end, so the peak holds exactly n such blocks there.
import sys

n = int(sys.argv[1])
keep = []
for i in range(n):
    x = []
    x.append(i)  # LINE:append
    keep.append(x)
print(len(keep))
