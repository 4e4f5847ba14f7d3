# Kill loop: runs kill_workload.py under the interposer, SIGKILLs it at a random instant and
# checks the report of every trace against the workload's own exact counters (its side file):
#  - the report exits 0 and says the trace is truncated;
#  - bytes live at the peak from the workload's allocating line never exceed the most its own
#    blocks ever held by a whole block (> 4 KiB each): the peak never holds a block the program
#    had not allocated yet. (The interpreter keeps a few hundred bytes of its own on that line,
#    e.g. 768 bytes with 3.11.2, which the workload cannot count.)
#  - no allocation made more than the flush interval (plus a scheduling allowance) before the
#    kill is missing: an allocation whose running total exceeds the report's peak was not in
#    the trace, and its age at the kill is the lag, which must stay within the allowance. The
#    age counts from the workload's "done" line after the allocation: one killed before that
#    line may never have been made (a loaded machine can hold the process there for long).
#  - a process killed before its Python code started (no "start" line: under load, 20 ms may
#    not reach our constructor) may leave no trace or an empty one; any other trace must read.
# Usage: kill_loop.py [--runs N] [--flush-ms F] [--slack-ms S]; PMT_BUILD_DIR names the build.
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(HERE, "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")
WORKLOAD = os.path.join(HERE, "kill_workload.py")
LINE = next(i for i, l in enumerate(open(WORKLOAD), 1) if "# ALLOCATING LINE" in l)


def read_side(path):
    """(start ns or None, [[time ns, running bytes after the allocation, done ns or None]])."""
    start, steps = None, []
    try:
        with open(path) as f:
            for line in f:
                a, b = line.split()
                if a == "start":
                    start = int(b)
                elif a == "done":
                    steps[-1][2] = int(b)
                else:
                    steps.append([int(a), int(b), None])
    except (FileNotFoundError, ValueError):
        pass  # the last line may be cut by the kill
    return start, steps


def one_run(d, i, rng, flush_ms):
    side, trace = os.path.join(d, "side%d" % i), os.path.join(d, "t%d.pmt" % i)
    env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=trace, PYMEMTRACE_QUIET="1",
               PYMEMTRACE_FLUSH_INTERVAL_MS=str(flush_ms))
    p = subprocess.Popen(["/usr/bin/python3", WORKLOAD, side, str(i)], env=env,
                         stdin=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.02, 1.2))
    kill_ns = time.monotonic_ns()
    p.send_signal(signal.SIGKILL)
    p.wait()
    start, steps = read_side(side)
    r = {"run": i, "kill_after_ms": (kill_ns - start) / 1e6 if start else None}
    if start is None and (not os.path.exists(trace) or os.path.getsize(trace) == 0):
        r["early"] = True  # killed before the program started: nothing to check
        return r
    if not os.path.exists(trace):
        r["error"] = "no trace"
        return r
    q = subprocess.run([PMT, "report", "--json", "--top", "0", trace], capture_output=True,
                       text=True)
    if q.returncode != 0:
        r["error"] = "report exit %d: %s" % (q.returncode, q.stderr.strip())
        return r
    rep = json.loads(q.stdout)
    r["readable"] = True
    r["truncated"] = rep["trace"]["truncated"]
    peak = rep["peak"]["bytes"]
    mine = sum(x["bytes"] for x in rep["at_peak"]
               if x["file"] == WORKLOAD and x["line"] == LINE)
    true_max = max((v for _, v, _ in steps), default=0)
    r.update(peak=peak, line_bytes=mine, true_max=true_max, steps=len(steps))
    missing = [done for _, v, done in steps if v > peak]
    r["lag_ms"] = (kill_ns - missing[0]) / 1e6 if missing and missing[0] else 0.0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--flush-ms", type=int, default=20)
    ap.add_argument("--slack-ms", type=float, default=80.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    bad, readable, early, lags, extra = [], 0, 0, [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.runs):
            r = one_run(d, i, rng, a.flush_ms)
            for f in ("t%d.pmt", "side%d"):
                if os.path.exists(os.path.join(d, f % i)):
                    os.unlink(os.path.join(d, f % i))
            problems = []
            if "early" in r:
                early += 1
            elif "error" in r:
                problems.append(r["error"])
            else:
                readable += 1
                lags.append(r["lag_ms"])
                if not r["truncated"]:
                    problems.append("not marked truncated")
                extra.append(r["line_bytes"] - r["true_max"])
                if r["line_bytes"] > r["true_max"] + 4096:
                    problems.append("peak above the truth")
                if r["lag_ms"] > a.flush_ms + a.slack_ms:
                    problems.append("lags by %.1f ms" % r["lag_ms"])
            if problems:
                bad.append((r, problems))
                print("run %d: %s %s" % (i, "; ".join(problems), json.dumps(r)), flush=True)
    lags.sort()
    print("kill loop (seed %d): %d runs, %d readable, %d killed before start, %d bad; flush %d ms; "
          "lag ms max %.1f median %.1f; runs with a lag > 0: %d; line bytes over the count: max %d"
          % (a.seed, a.runs, readable, early, len(bad), a.flush_ms, lags[-1] if lags else 0,
             lags[len(lags) // 2] if lags else 0, sum(1 for x in lags if x > 0),
             max(extra, default=0)))
    if readable < a.runs // 2:
        print("kill loop: fewer than half the runs left a trace to check")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
