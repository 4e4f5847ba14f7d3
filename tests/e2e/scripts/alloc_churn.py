# Pure-Python allocation churn for the allocator comparison (issue 5): dicts, lists, strings and
# tuples made and dropped in a loop, with a working set that grows and shrinks. No numpy, so it
# runs on either interpreter. The printed result is the same under every allocator.
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30

total = 0
keep = {}
for r in range(ROUNDS):
    rows = [{"id": i, "name": f"row-{r}-{i}", "tags": (r, i % 7, str(i))} for i in range(20000)]
    text = ",".join(row["name"] for row in rows)  # one large string (malloc)
    keep[r % 8] = [row["tags"] for row in rows[:: 2 + r % 3]]  # some survive a few rounds
    total += len(text) + sum(len(v) for v in keep.values())
    del rows, text
print(total, len(keep))
