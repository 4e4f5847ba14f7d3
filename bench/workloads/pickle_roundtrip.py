# Benchmark workload (pyperformance-like): pickle dumps and loads of a list of records (tuples,
# dicts, floats, strings and a custom class), protocol 5.
import pickle
import sys


class Point:
    def __init__(self, x, y, label):
        self.x, self.y, self.label = x, y, label


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
data = [{"p": Point(i, i * 1.5, f"pt{i}"), "t": (i, str(i), i / 3.0), "l": list(range(i % 20))}
        for i in range(3000)]
total = 0
for _ in range(rounds):
    blob = pickle.dumps(data, protocol=5)
    back = pickle.loads(blob)
    total += len(blob) + len(back)
print(total)
