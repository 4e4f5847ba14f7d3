# A multiprocessing Pool under the interposer, with the fork and the spawn start methods: every
# process writes its own trace into PYMEMTRACE_OUTPUT, and the merged view of the directory
# (timeline --format json, html) names every worker with the line that made its data.
import json
import os
import re
import tempfile
import unittest

import pmt_e2e as e2e

SCRIPT = "pool_workers.py"


class MultiprocessTest(e2e.E2ETest):
    def check_pool(self, method):
        run = e2e.run_python(self, SCRIPT, method)
        self.assertEqual(run.returncode, 0, run.stderr)
        workers = json.loads(run.stdout.strip().splitlines()[-1])
        self.assertGreaterEqual(len(workers), 1)
        self.assertGreaterEqual(len(run.traces), len(workers) + 1, run.traces)
        work_line = e2e.marked_lines(e2e.script(SCRIPT))["work"]

        proc = e2e.cli("timeline", run.out_dir, "--format", "json")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        merged = json.loads(proc.stdout)
        by_pid = {p["pid"]: p for p in merged["processes"]}
        parent = os.getpid()  # not traced; the traced root is the script's interpreter
        for pid in workers:
            self.assertIn(pid, by_pid, f"worker {pid} missing from {sorted(by_pid)}")
            p = by_pid[pid]
            top = p["top_lines"][0]
            self.assertEqual(os.path.basename(top["file"] or ""), SCRIPT, p["top_lines"])
            self.assertEqual(top["line"], work_line, p["top_lines"])
            self.assertGreaterEqual(top["bytes"], 20_000_000)  # each task's bytearray
            self.assertGreaterEqual(p["peak_bytes"], 20_000_000)
            self.assertIn(p["ppid"], by_pid, "a worker's parent is a traced process")
        self.assertNotIn(parent, by_pid)
        # The total's peak is at least the largest worker's data plus the others alive then.
        total = merged["total"]["peak_bytes"]
        self.assertGreaterEqual(total, max(by_pid[w]["peak_bytes"] for w in workers))
        self.assertEqual(max(merged["live_bytes"]), total)
        self.assertEqual(sum(p["bytes_at_total_peak"] for p in merged["processes"]), total)

        out = os.path.join(tempfile.mkdtemp(prefix="pmt-mp-"), "tree.html")
        proc = e2e.cli("html", run.out_dir, "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            page = f.read()
        os.remove(out)
        data = json.loads(re.search(r'id="pmt-data">(.*?)</script>', page, re.S).group(1))
        self.assertEqual({p["pid"] for p in data["tree"]["processes"]}, set(by_pid))
        self.assertEqual(data["timeline"]["stack_kind"], "process")

    def test_fork_pool_workers_are_each_named_with_their_line(self):
        self.check_pool("fork")

    def test_spawn_pool_workers_are_each_named_with_their_line(self):
        self.check_pool("spawn")


if __name__ == "__main__":
    unittest.main()
