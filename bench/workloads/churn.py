# Benchmark workload: pure-Python allocation churn. Hundreds of thousands of short-lived objects
# made and dropped in a loop: small dicts (pymalloc, seen by the interposer as arena mmaps) and
# lists and strings over pymalloc's 512-byte limit (each one a malloc/free the interposer records).
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
total = 0
for r in range(rounds):
    rows = [{"id": i, "name": str(i) * 100, "tags": list(range(i % 100))} for i in range(20_000)]
    index = {row["name"][:8]: row for row in rows}
    total += len(index) + sum(len(row["tags"]) for row in rows)
    del rows, index
print(total)
