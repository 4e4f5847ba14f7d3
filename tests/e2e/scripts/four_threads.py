# Ground truth for test_threads: four threads each make one float64 array (16, 32, 48 and 64 MiB)
# on the marked line of worker(); a barrier keeps all four alive together before the join.
import threading

import numpy as np

MIB = 1 << 20
SIZES_MIB = (16, 32, 48, 64)
kept = [None] * len(SIZES_MIB)
all_made = threading.Barrier(len(SIZES_MIB) + 1)


def worker(i):
    kept[i] = np.arange(SIZES_MIB[i] * MIB // 8, dtype=np.float64)  # LINE:worker
    all_made.wait()


threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(SIZES_MIB))]
for t in threads:
    t.start()
all_made.wait()
for t in threads:
    t.join()
print(sum(a.nbytes for a in kept))
