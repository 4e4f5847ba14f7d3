# Ground truth for test_python_allocators: objects made and dropped in a loop (each iteration's
# dict, strings and tuple are freed by the next), so the loop's line holds ~0 live bytes after
# it; then a list of strings kept to the end, made after the loop, so the peak comes after it.
import sys

n = int(sys.argv[1])
total = 0
for i in range(n):
    d = {"k": i, "s": str(i) * 3, "t": (i, str(i))}  # LINE:churn
    total += len(d["s"])
del d
keep = [str(i) * 4 for i in range(n)]  # LINE:keep
print(total, len(keep))
