# numpy arrays of known sizes on known lines: the peak is their sum plus the interpreter's
# baseline (the same script with empty arrays, traced in the same run), and each line holds its
# array's bytes at the peak (within 1%); an array made inside a numpy function written in Python
# is held by numpy's line, with the script's line on its call path.
import unittest

import pmt_e2e as e2e

MIB = 1 << 20
# Made on the script's marked lines by numpy functions written in C.
SIZES = {"a": 100 * MIB, "b": 60 * MIB, "c": 40 * MIB}
# Made by np.ones (Python code in numpy/core/numeric.py) called on the marked line.
ONES = 20 * MIB


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
        arrays = sum(SIZES.values()) + ONES
        peak = report["peak"]["bytes"]
        self.assertAlmostEqual(peak, baseline + arrays, delta=0.01 * arrays,
                               msg=f"peak {peak} B, baseline {baseline} B + arrays {arrays} B")

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

    def test_an_array_made_inside_numpy_has_the_callers_line_on_its_path(self):
        # The entry may be keyed by numpy's line (the innermost frame) or by the script's line
        # (library frames skipped); either way the script's line is on its path and the path
        # starts with the innermost frame, numpy's ones().
        report = self.traced_report(1)
        path = e2e.script("three_arrays.py")
        line = self.lines["d"]
        base = path.rsplit("/", 1)[1]
        held = [e for e in report["at_peak"]
                if any(f.get("line") == line and (f.get("file") or "").endswith(base)
                       for f in e["stack"])]
        self.assertEqual(len(held), 1, f"one at_peak entry with line {line} on its path;\n"
                         + e2e.describe_at_peak(report))
        entry = held[0]
        self.assertAlmostEqual(entry["bytes"], ONES, delta=0.01 * ONES)
        self.assertEqual(entry["stack"][0]["function"], "ones", "innermost frame first")

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
