"""One measured run for the benchmark scripts: wall seconds, CPU seconds (user+sys of the
command and its waited-for descendants) and peak RSS, taken by build/bin/pmt_rusage
(bench/rusage.c) so that the driver's own peak RSS is not counted as the command's."""
import os
import subprocess
import tempfile
import time


def measure(rusage_bin, argv, env):
    """(wall s, cpu s, maxrss kB, exit code, stderr text) of argv run with env. LD_PRELOAD in env
    is handed to the command only, not to the launcher."""
    env = dict(env)
    preload = env.pop("LD_PRELOAD", None)
    if preload is not None:
        env["PMT_RUSAGE_PRELOAD"] = preload
    with tempfile.NamedTemporaryFile(prefix="pmt-rusage-") as res, \
            tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        code = subprocess.call([rusage_bin, res.name] + list(argv), env=env,
                               stdout=subprocess.DEVNULL, stderr=err)
        wall = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
        fields = open(res.name).read().split()
    if len(fields) != 3:
        raise RuntimeError(f"{rusage_bin} gave no figures for {' '.join(argv)}: {text[-500:]}")
    return wall, float(fields[1]) + float(fields[2]), int(fields[0]), code, text
