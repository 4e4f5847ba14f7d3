# Benchmark workload: pure-Python allocation churn. Millions of short-lived small objects
# (tuples, dicts, lists, strings) made and dropped in a loop: the pymalloc-heavy case, where the
# interposer sees arena mmaps and the many small mallocs of lists and dicts.
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
total = 0
for r in range(rounds):
    rows = [{"id": i, "name": str(i), "tags": [i, i + 1]} for i in range(20_000)]
    index = {row["name"]: row for row in rows}
    total += len(index) + sum(len(row["tags"]) for row in rows)
    del rows, index
print(total)
