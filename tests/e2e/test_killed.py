# A process killed with SIGKILL mid-run leaves a trace that `report` still reads, up to the
# last flushed chunk, and says is truncated.
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import pmt_e2e as e2e

MIB = 1 << 20
FLUSH_WAIT_S = 0.5  # the interposer flushes at least every 100 ms (issue 2)


class KilledProcess(e2e.E2ETest):
    def test_a_killed_process_still_gets_a_report_that_says_truncated(self):
        path = e2e.script("killed.py")
        line = e2e.marked_lines(path)["held"]
        out_dir = tempfile.mkdtemp(prefix="pmt-e2e-")
        self.addCleanup(shutil.rmtree, out_dir, True)
        proc = subprocess.Popen([e2e.SYSTEM_PYTHON, path], env=e2e.preload_env(out_dir),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        self.assertTrue(ready, "the script did not get ready within 60 s")
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        time.sleep(FLUSH_WAIT_S)
        os.kill(proc.pid, signal.SIGKILL)
        self.assertEqual(proc.wait(timeout=30), -signal.SIGKILL)

        traces = [os.path.join(out_dir, f) for f in os.listdir(out_dir) if f.endswith(".pmt")]
        self.assertEqual(len(traces), 1, traces)
        report = e2e.report_json(self, traces[0])
        self.assertTrue(report["trace"]["truncated"])
        self.assertEqual(report["trace"]["pid"], proc.pid)
        self.assertGreaterEqual(report["peak"]["bytes"], 32 * MIB)
        entry = e2e.at_line(report, path, line)
        self.assertIsNotNone(entry, e2e.describe_at_peak(report))
        self.assertAlmostEqual(entry["bytes"], 32 * MIB, delta=0.01 * 32 * MIB)

        text = e2e.cli("report", traces[0])
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("truncated", text.stdout + text.stderr)


if __name__ == "__main__":
    unittest.main()
