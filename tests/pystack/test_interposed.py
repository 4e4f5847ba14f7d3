"""The stack walker inside the real interposer (PMT_BUILD_DIR/lib/libpymemtrace.so).

Code made and dropped in a loop (each round's code objects die before the next round's are
compiled, so their addresses are reused) still attributes each round's allocation to its own
file, function and line. Ground truth by construction: round i allocates a bytearray of
(i + 1) * 10 kB at line 2 + i % 3 of "generated_i.py" and keeps it until the end.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

BUILD_DIR = os.environ["PMT_BUILD_DIR"]
LIB = os.path.join(BUILD_DIR, "lib", "libpymemtrace.so")
CLI = os.path.join(BUILD_DIR, "bin", "pymemtrace")
ROUNDS = 120

JOB = f"""
keep = []
for i in range({ROUNDS}):
    src = (f"def f{{i}}():\\n" + "    pass\\n" * (i % 3) +
           f"    return bytearray({{(i + 1) * 10_000}})\\nkeep.append(f{{i}}())\\n")
    exec(compile(src, f"generated_{{i}}.py", "exec"), {{"keep": keep}})
"""


class UnderTheInterposer(unittest.TestCase):
    def test_code_made_in_a_loop_keeps_its_own_names_and_lines(self):
        with tempfile.TemporaryDirectory() as tmp:
            trace = os.path.join(tmp, "t.pmt")
            env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=trace, PYMEMTRACE_QUIET="1")
            subprocess.run([sys.executable, "-c", JOB], env=env, check=True)
            report = subprocess.run([CLI, "report", "--json", "--top", "100000", trace],
                                    capture_output=True, text=True, check=True)
        at_peak = json.loads(report.stdout)["at_peak"]
        by_file = {}
        for row in at_peak:
            if row["file"] and row["file"].startswith("generated_"):
                by_file.setdefault(row["file"], []).append(row)
        for i in range(ROUNDS):
            rows = by_file.get(f"generated_{i}.py", [])
            made = [r for r in rows if r["function"] == f"f{i}"]
            self.assertEqual(len(made), 1, f"round {i}: {rows}")
            row = made[0]
            self.assertEqual(row["line"], 2 + i % 3)
            # bytearray(n) asks for n + 1 bytes (its trailing NUL).
            self.assertEqual(row["bytes"], (i + 1) * 10_000 + 1)
            self.assertEqual(row["stack"][1], {"file": f"generated_{i}.py", "function": "<module>",
                                               "line": 3 + i % 3})
            # Anything else charged to this file is keep.append() growing the list.
            for other in rows:
                if other is not row:
                    self.assertEqual((other["function"], other["line"]), ("<module>", 3 + i % 3))

if __name__ == "__main__":
    unittest.main()
