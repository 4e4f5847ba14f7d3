# Benchmark workload (pyperformance-like): regular expressions over a generated log text
# (search, findall, sub, split), with the match objects and result lists that they allocate.
import re
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
lines = [f"2026-11-25 12:{i % 60:02d}:{i % 59:02d} host{i % 7}.example.org GET /api/v1/items/{i} "
         f"status={200 + i % 5} bytes={i * 37 % 9999} ua=\"client/{i % 13}\"" for i in range(4000)]
text = "\n".join(lines)
patterns = [re.compile(p) for p in (r"status=(\d+)", r"host(\d)\.example\.org",
                                    r"/items/(\d+) ", r"bytes=(\d{3,4})\b", r"\"client/1[0-2]\"")]
total = 0
for _ in range(rounds):
    for p in patterns:
        total += len(p.findall(text))
    total += len(re.sub(r"\d", "#", text[:200_000]))
    total += sum(1 for line in text.split("\n") if patterns[0].search(line))
print(total)
