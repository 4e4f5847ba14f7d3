# Ground truth for test_killed: a 32 MiB array made on the marked line, then "ready" on stdout
# and a long sleep, during which the test kills the process with SIGKILL.
import time

import numpy as np

MIB = 1 << 20
held = np.arange(32 * MIB // 8, dtype=np.float64)  # LINE:held
print("ready", flush=True)
time.sleep(120)
