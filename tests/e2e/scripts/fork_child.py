# Ground truth for test_fork: the parent forks; the child makes a 24 MiB array on its marked line
# and exits normally; the parent waits, then makes a 40 MiB array on its own marked line.
# Each process prints its pid (and the child its parent's) for the test to check the traces.
import os
import sys

import numpy as np

MIB = 1 << 20
pid = os.fork()
if pid == 0:
    child = np.arange(24 * MIB // 8, dtype=np.float64)  # LINE:child
    print(f"child {os.getpid()} {os.getppid()}", flush=True)
    sys.exit(0)
os.waitpid(pid, 0)
parent = np.arange(40 * MIB // 8, dtype=np.float64)  # LINE:parent
print(f"parent {os.getpid()}", flush=True)
