# Pattern: a list of millions of floats rebuilt by a comprehension (`big = [g(x) for x in big]`):
# the whole new list exists before the old one is released. In the default capture mode the
# floats are seen as pymalloc arenas (1 MiB mmaps) released in a burst when the old list dies.
# Expected finding: one window of ~130 MB (old floats' arenas + pointer array) at the peak;
#   new: list_rebuild.py:<rebuild>, old: list_rebuild.py:<build>; remedy "replace-elements";
#   peak if fixed ~ the peak of fixed/list_rebuild_fixed.py (elements replaced one by one).
N = 4_000_000


def scale(x):
    return x * 1.5


big = [float(i) for i in range(N)]  # LINE:build
big = [scale(x) for x in big]  # LINE:rebuild
head = big[:200_000]  # the job goes on with the new list
print(head[1])
