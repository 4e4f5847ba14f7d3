# Benchmark workload (pyperformance-like): JSON round trips of nested documents (dumps and loads
# of dicts, lists, strings and numbers); the encoder's output strings exceed pymalloc's limit.
import json
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 500
doc = {
    "users": [{"id": i, "name": f"user{i}", "email": f"u{i}@example.org", "score": i * 0.5,
               "tags": ["a", "b", str(i)], "active": i % 3 == 0} for i in range(200)],
    "meta": {"version": 3, "source": "bench", "nested": {"k": list(range(50))}},
}
total = 0
for _ in range(rounds):
    text = json.dumps(doc)
    back = json.loads(text)
    total += len(text) + len(back["users"])
print(total)
