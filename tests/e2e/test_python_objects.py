# A pure-Python list of millions of floats is attributed to the line that built it: the float
# objects (pymalloc arenas, mmap) and the list's pointer array (malloc) alike. Run on both
# Pythons of the machine: Debian's (static libpython) and pyenv's (shared libpython).
import unittest

import pmt_e2e as e2e

N = 3_000_000
# Lower bound by construction: a float object is 24 bytes, a list slot 8. Upper bound: pymalloc
# rounds objects to 32-byte blocks, the list over-allocates by ~1/8, arenas have some slack.
LOW, HIGH = N * (24 + 8), N * (32 + 8) * 1.25


class FloatListAttribution(e2e.E2ETest):
    def check(self, python):
        path = e2e.script("float_list.py")
        line = e2e.marked_lines(path)["floats"]
        run = e2e.run_python(self, "float_list.py", N, python=python)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.strip(), str(N))
        report = e2e.report_json(self, run.only_trace(self))
        entry = e2e.at_line(report, path, line)
        self.assertIsNotNone(entry, f"no at_peak entry for line {line};\n"
                             + e2e.describe_at_peak(report))
        self.assertGreaterEqual(entry["bytes"], LOW, e2e.describe_at_peak(report))
        self.assertLessEqual(entry["bytes"], HIGH, e2e.describe_at_peak(report))
        # Arenas and the pointer array: more than one block.
        self.assertGreater(entry["blocks"], 1)
        self.assertEqual(report["at_peak"][0]["line"], line,
                         "the list's line holds the most at the peak;\n"
                         + e2e.describe_at_peak(report))
        return report

    def test_system_python(self):
        report = self.check(e2e.SYSTEM_PYTHON)
        self.assertEqual(report["trace"]["python"], "3.11.2")

    def test_pyenv_python(self):
        python = e2e.other_python()
        if python is None:
            self.skipTest("no python3 on PATH other than /usr/bin/python3 (pyenv not installed)")
        report = self.check(python)
        self.assertTrue(report["trace"]["python"].startswith("3.11"), report["trace"])


if __name__ == "__main__":
    unittest.main()
