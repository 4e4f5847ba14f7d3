# What the stress tests judge in a finished run of stress.c: under the preloaded library
# (test_stress.py) and in the sanitized program (tests/sanitize/test_san_stress.py). The program
# prints its own exact counts; every process it ran (the parent, each fork child) must have left
# one complete trace holding exactly those counts (pmt_stress_check reads a trace).
import glob
import os
import re
import subprocess


def counts(text):
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", text)}


def check_stress_run(test, proc, out_dir, blocks, forks, checker):
    """proc: the finished `stress BLOCKS FORKS` run (text output), its traces in out_dir;
    checker: the pmt_stress_check binary. Fails `test` on the first difference."""
    test.assertEqual(proc.returncode, 0, proc.stderr[-5000:])
    lines = proc.stdout.splitlines()
    parent = counts(lines[-1])
    test.assertEqual(parent["allocs"], 8 * blocks + 100 * forks)
    test.assertEqual(parent["children"], forks, "a child failed (its exit status was not 0)")
    # Each child's live bytes are in its own output line; they are the same set of sizes only
    # for the same seed, so a child's trace is matched to one of the lines.
    child_lives = [counts(line)["live"] for line in lines if line.startswith("child")]
    test.assertEqual(len(child_lives), forks)
    traces = glob.glob(os.path.join(out_dir, "*.pmt"))
    test.assertEqual(len(traces), forks + 1)
    parents = 0
    for t in traces:
        c = subprocess.run([checker, t], capture_output=True, text=True)
        test.assertEqual(c.returncode, 0, c.stderr)
        got = counts(c.stdout)
        test.assertEqual(got["truncated"], 0, t)
        if got["forked"]:
            test.assertEqual((got["allocs"], got["frees"], got["maps"]), (1000, 900, 0), t)
            test.assertIn(got["live"], child_lives, t)
            continue
        parents += 1
        for k in ("allocs", "frees", "live"):
            test.assertEqual(got[k], parent[k], k)
        # A handler that interrupts one of our hooks on the same thread is not recorded (the
        # hook's reentrancy guard passes it through): pairs only.
        test.assertLessEqual(got["maps"], parent["maps"])
        test.assertEqual(got["unmaps"], got["maps"])
    test.assertEqual(parents, 1)
