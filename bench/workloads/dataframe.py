# Benchmark workload (pandas-free dataframe-ish): a column store of 200 k rows as lists,
# filtered, grouped by key and aggregated, joined and sorted, as an analysis script would.
import random
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
rng = random.Random(0)
n = 200_000
cols = {
    "city": [rng.choice(["Oslo", "Lima", "Pune", "Kyiv", "Nice", "Baku"]) for _ in range(n)],
    "amount": [rng.random() * 100 for _ in range(n)],
    "qty": [rng.randrange(1, 20) for _ in range(n)],
}
lookup = {"Oslo": "NO", "Lima": "PE", "Pune": "IN", "Kyiv": "UA", "Nice": "FR", "Baku": "AZ"}
total = 0.0
for _ in range(rounds):
    keep = [i for i, q in enumerate(cols["qty"]) if q > 3]
    sub = {k: [v[i] for i in keep] for k, v in cols.items()}
    sub["value"] = [a * q for a, q in zip(sub["amount"], sub["qty"])]
    groups = {}
    for city, value in zip(sub["city"], sub["value"]):
        groups.setdefault(city, []).append(value)
    agg = {lookup[c]: (len(v), sum(v) / len(v), max(v)) for c, v in groups.items()}
    order = sorted(range(len(keep)), key=sub["value"].__getitem__)[-1000:]
    total += sum(a[1] for a in agg.values()) + sum(sub["value"][i] for i in order)
print(f"{total:.3f}")
