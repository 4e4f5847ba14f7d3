# The interposer works in processes with no Python: their stdout and exit code are exactly those
# of a plain run, they still leave a readable trace, and the exit line on stderr is one line
# that PYMEMTRACE_QUIET=1 silences.
import os
import subprocess
import tempfile
import unittest

import pmt_e2e as e2e

SH = ["sh", "-c", "echo hi; exit 3"]


class NonPythonPrograms(e2e.E2ETest):
    def test_ls_prints_exactly_what_it_prints_untraced(self):
        # A directory of our own, listed without . and ..: the listing of / (or of any shared
        # directory) changes under us with other processes (/proc's link count did).
        with tempfile.TemporaryDirectory() as d:
            for name, size in (("a.txt", 10), ("b.bin", 4096), ("c", 0)):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(b"x" * size)
            os.mkdir(os.path.join(d, "sub"))
            argv = ["/bin/ls", "-lA", "--color=never", d]
            traced = e2e.run_traced(self, argv)
            plain = subprocess.run(argv, capture_output=True, text=True)
        self.assertEqual(traced.returncode, plain.returncode)
        self.assertEqual(traced.stdout, plain.stdout)
        self.assertIn("b.bin", plain.stdout)
        report = e2e.report_json(self, traced.only_trace(self))
        self.assertIsNone(report["trace"]["python"])
        self.assertFalse(report["trace"]["truncated"])
        self.assertGreater(report["totals"]["allocations"], 0)
        self.assertEqual(report["at_peak"][0]["function"], "<native>")

    def test_sh_keeps_its_output_and_exit_code(self):
        traced = e2e.run_traced(self, SH)
        self.assertEqual(traced.returncode, 3)
        self.assertEqual(traced.stdout, "hi\n")
        self.assertEqual(traced.stderr, "", "PYMEMTRACE_QUIET=1 silences the exit line")
        report = e2e.report_json(self, traced.only_trace(self))
        self.assertEqual(report["trace"]["argv"], SH)

    def test_the_exit_line_is_one_line_naming_the_trace(self):
        traced = e2e.run_traced(self, SH, quiet=False)
        self.assertEqual(traced.returncode, 3)
        self.assertEqual(traced.stdout, "hi\n")
        trace = traced.only_trace(self)
        lines = traced.stderr.splitlines()
        self.assertEqual(len(lines), 1, traced.stderr)
        self.assertIn(trace.rsplit("/", 1)[1], lines[0])


if __name__ == "__main__":
    unittest.main()
