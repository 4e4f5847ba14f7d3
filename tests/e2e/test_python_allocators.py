# PYMEMTRACE_PYTHON_ALLOCATORS=1 (pymemtrace run --python-allocators): Python's MEM and OBJ
# allocator domains are traced, so each object is attributed to its line at its own size and
# its free is seen, and pymalloc's arenas are not counted besides. Ground truth from the
# scripts' construction (sys.getsizeof of a float is 24 bytes; a list's pointer array is 8
# bytes per slot). Run on both Pythons of the machine, and under PYTHONMALLOC=malloc and -X dev
# (the interpreter replaces the allocators during its pre-initialisation: they are wrapped
# again), where the same bytes must be seen once.
import os
import subprocess
import unittest

import pmt_e2e as e2e

N = 1_000_000
ON = {"PYMEMTRACE_PYTHON_ALLOCATORS": "1"}
FLOATS = N * 24                  # the float objects of one line
TABLE = N * 8                    # [None] * N: one PyMem_Malloc'd pointer array
# The float free list hands out up to 100 floats freed earlier (made at another line); a list
# object (56 bytes) may come from the list free list; list growth over-allocates by ~1/8.
SMALL = 100 * 24 + 200


class PythonAllocators(e2e.E2ETest):
    def floats(self, python=e2e.SYSTEM_PYTHON, env=None, args=()):
        path = e2e.script("pyalloc_floats.py")
        lines = e2e.marked_lines(path)
        run = e2e.run_traced(self, [python, *args, path, str(N)], env_extra={**ON, **(env or {})})
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.split(), [str(N), str(N), "24"])
        report = e2e.report_json(self, run.only_trace(self))
        self.assertTrue(report["trace"]["python_allocators"], report["trace"])
        at = {k: e2e.at_line(report, path, lines[k]) for k in ("floats", "table", "fill")}
        for k, entry in at.items():
            self.assertIsNotNone(entry, f"no at_peak entry for {k};\n" + e2e.describe_at_peak(report))
        why = e2e.describe_at_peak(report)
        # One loop filling a preallocated list: exactly N floats of 24 bytes (less the free list's).
        self.assertLessEqual(at["fill"]["bytes"], FLOATS + SMALL, why)
        self.assertGreaterEqual(at["fill"]["bytes"], FLOATS - SMALL, why)
        self.assertLessEqual(abs(at["fill"]["blocks"] - N), 100, why)
        # [None] * N: the pointer array (and the list object).
        self.assertGreaterEqual(at["table"]["bytes"], TABLE, why)
        self.assertLessEqual(at["table"]["bytes"], TABLE + SMALL, why)
        self.assertLessEqual(at["table"]["blocks"], 2, why)
        # The comprehension: the N floats and the list's grown buffer, no arenas (1 MiB each).
        self.assertGreaterEqual(at["floats"]["bytes"], FLOATS - SMALL + TABLE, why)
        self.assertLessEqual(at["floats"]["bytes"], FLOATS + TABLE * 1.13 + SMALL, why)
        self.assertLessEqual(abs(at["floats"]["blocks"] - N), 100, why)
        return report

    def test_system_python(self):
        report = self.floats()
        proc = e2e.cli("report", report["trace"]["path"])
        self.assertIn("Python allocators traced", proc.stdout)

    def test_pyenv_python(self):
        python = e2e.other_python()
        if python is None:
            self.skipTest("no python3 on PATH other than /usr/bin/python3 (pyenv not installed)")
        self.floats(python)

    def test_allocators_replaced_at_startup(self):
        # PYTHONMALLOC=malloc and -X dev (debug hooks over pymalloc) replace the domains'
        # allocators before Py_Initialize: the same objects, counted once (no malloc of theirs,
        # no arena besides), so the same peak within a small margin.
        base = self.floats()["peak"]["bytes"]
        for env, args in (({"PYTHONMALLOC": "malloc"}, ()), ({}, ("-X", "dev")),
                          ({"PYTHONMALLOC": "pymalloc_debug"}, ())):
            with self.subTest(env=env, args=args):
                peak = self.floats(env=env, args=args)["peak"]["bytes"]
                self.assertLess(abs(peak - base), 0.03 * base, (base, peak))

    def script_run(self, name, n):
        """The report of scripts/NAME run with argument n under the option, the script's marked
        lines and the at-peak description for messages."""
        path = e2e.script(name)
        run = e2e.run_traced(self, [e2e.SYSTEM_PYTHON, path, str(n)], env_extra=ON)
        self.assertEqual(run.returncode, 0, run.stderr)
        report = e2e.report_json(self, run.only_trace(self))
        return report, path, e2e.marked_lines(path), e2e.describe_at_peak(report)

    def test_churn_frees_are_seen(self):
        n = 200_000
        report, path, lines, why = self.script_run("pyalloc_churn.py", n)
        keep = e2e.at_line(report, path, lines["keep"])
        self.assertIsNotNone(keep, why)
        self.assertGreaterEqual(keep["blocks"], n, why)  # each string an object of its own
        churn = e2e.at_line(report, path, lines["churn"])
        # ~0 live bytes: at most one iteration's objects (a dict and a few strings).
        self.assertLess(churn["bytes"] if churn else 0, 4096, why)
        # ... though the loop made millions of bytes of objects: they were traced.
        self.assertGreater(report["totals"]["allocations"], 4 * n)

    def test_realloc_of_null_is_an_allocation_at_its_line(self):
        # list.append on an empty list: PyMem_Realloc(NULL, 32) once per list, n lists kept.
        n = 200_000
        report, path, lines, why = self.script_run("pyalloc_grow.py", n)
        at = e2e.at_line(report, path, lines["append"])
        self.assertIsNotNone(at, why)
        self.assertEqual((at["bytes"], at["blocks"]), (32 * n, n), why)

    def test_off_by_default(self):
        # Without the option: the flag is clear and the floats are in pymalloc's arenas (1 MiB
        # mappings), a few dozen blocks, not one block per object.
        path = e2e.script("pyalloc_floats.py")
        run = e2e.run_traced(self, [e2e.SYSTEM_PYTHON, path, str(N)])
        self.assertEqual(run.returncode, 0, run.stderr)
        report = e2e.report_json(self, run.only_trace(self))
        self.assertFalse(report["trace"]["python_allocators"])
        blocks = sum(e["blocks"] for e in report["at_peak"])
        self.assertLess(blocks, N // 10, e2e.describe_at_peak(report))
        self.assertGreater(report["peak"]["bytes"], 2 * FLOATS + 2 * TABLE)

    def test_non_python_process_ignores_it(self):
        # No interpreter: nothing to wrap; the C library's calls are traced as always.
        run = e2e.run_traced(self, ["/bin/ls", "-l", "/"], env_extra=ON)
        self.assertEqual(run.returncode, 0, run.stderr)
        report = e2e.report_json(self, run.only_trace(self))
        self.assertFalse(report["trace"]["python_allocators"], report["trace"])
        self.assertIsNone(report["trace"]["python"])
        self.assertGreater(report["totals"]["allocations"], 0)

    def test_run_flag(self):
        path = e2e.script("pyalloc_floats.py")
        out = os.path.join(self.tmp(), "t.pmt")
        proc = subprocess.run([e2e.CLI, "run", "-q", "--python-allocators", "-o", out, "--",
                               e2e.SYSTEM_PYTHON, path, "1000"], capture_output=True, text=True,
                              timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(e2e.report_json(self, out)["trace"]["python_allocators"])

    def tmp(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="pmt-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    unittest.main()
