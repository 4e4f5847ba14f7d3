# Four threads each make a numpy array of known size on the same line of worker(): at the peak
# that line holds the four arrays (within 1%), attributed to the worker function.
import unittest

import pmt_e2e as e2e

MIB = 1 << 20
TOTAL = (16 + 32 + 48 + 64) * MIB


class ThreadsAttribution(e2e.E2ETest):
    def test_each_thread_allocation_is_on_the_worker_line(self):
        path = e2e.script("four_threads.py")
        line = e2e.marked_lines(path)["worker"]
        run = e2e.run_python(self, "four_threads.py")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.strip(), str(TOTAL))
        report = e2e.report_json(self, run.only_trace(self))
        entry = e2e.at_line(report, path, line)
        self.assertIsNotNone(entry, f"no at_peak entry for line {line};\n"
                             + e2e.describe_at_peak(report))
        self.assertEqual(entry["function"], "worker")
        self.assertAlmostEqual(entry["bytes"], TOTAL, delta=0.01 * TOTAL,
                               msg=e2e.describe_at_peak(report))
        self.assertGreaterEqual(entry["blocks"], 4)
        self.assertGreaterEqual(report["peak"]["bytes"], TOTAL)


if __name__ == "__main__":
    unittest.main()
