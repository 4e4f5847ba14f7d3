# Fixed variant of examples/list_rebuild.py: the elements are replaced one by one, so the old
# and new lists never coexist. Its peak is the ground truth for list_rebuild.py's fix.
N = 4_000_000


def scale(x):
    return x * 1.5


big = [float(i) for i in range(N)]
for i, x in enumerate(big):
    big[i] = scale(x)
head = big[:200_000]
print(head[1])
