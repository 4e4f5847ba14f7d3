# Three numpy arrays of known sizes on known lines: the peak is their sum plus the interpreter's
# baseline (the same script with empty arrays, traced in the same run), and each line holds its
# array's bytes at the peak (within 1%).
import unittest

import pmt_e2e as e2e

MIB = 1 << 20
SIZES = {"a": 100 * MIB, "b": 60 * MIB, "c": 40 * MIB}


class PeakOfThreeArrays(e2e.E2ETest):
    @classmethod
    def setUpClass(cls):
        cls.lines = e2e.marked_lines(e2e.script("three_arrays.py"))

    def traced_report(self, scale):
        run = e2e.run_python(self, "three_arrays.py", scale)
        self.assertEqual(run.returncode, 0, run.stderr)
        return e2e.report_json(self, run.only_trace(self))

    def test_peak_is_the_arrays_plus_the_baseline(self):
        baseline = self.traced_report(0)["peak"]["bytes"]
        report = self.traced_report(1)
        expected = baseline + sum(SIZES.values())
        peak = report["peak"]["bytes"]
        self.assertAlmostEqual(
            peak, expected, delta=0.01 * sum(SIZES.values()),
            msg=f"peak {peak} B, baseline {baseline} B + arrays {sum(SIZES.values())} B")

    def test_each_line_holds_its_array_at_the_peak(self):
        report = self.traced_report(1)
        path = e2e.script("three_arrays.py")
        for name, size in SIZES.items():
            entry = e2e.at_line(report, path, self.lines[name])
            self.assertIsNotNone(
                entry, f"no at_peak entry for line {self.lines[name]} (array {name});\n"
                + e2e.describe_at_peak(report))
            self.assertAlmostEqual(entry["bytes"], size, delta=0.01 * size,
                                   msg=f"array {name} at line {self.lines[name]}")
            self.assertEqual(entry["function"], "<module>")
        top = [e["line"] for e in report["at_peak"][:3]]
        self.assertEqual(top, [self.lines["a"], self.lines["b"], self.lines["c"]],
                         "at_peak is sorted by bytes, largest first;\n"
                         + e2e.describe_at_peak(report))

    def test_trace_header_describes_the_process(self):
        run = e2e.run_python(self, "three_arrays.py", 0)
        report = e2e.report_json(self, run.only_trace(self))
        trace = report["trace"]
        self.assertFalse(trace["truncated"])
        self.assertEqual(trace["python"], "3.11.2")
        self.assertEqual(trace["allocator"], "glibc")
        self.assertEqual(trace["argv"][1:], [e2e.script("three_arrays.py"), "0"])
        self.assertGreater(trace["events"], 0)
        self.assertGreater(report["peak"]["rss_bytes"], 0)


if __name__ == "__main__":
    unittest.main()
