# CPython's debug allocators (-X dev, PYTHONMALLOC=debug, malloc_debug, pymalloc_debug) check
# at every free that the block is one they made. The interposer's audit hook (python_stack.cpp)
# is added in its constructor, before the interpreter's pre-initialisation installs them, and
# CPython frees the hook's entry with PyMem_RawFree at finalisation: made by the old allocator,
# it used to abort the process at exit ("Debug memory block at address p=...: API '!'", a fatal
# error, exit -6). The program must run and exit as it does untraced, on both Pythons.
# That entry, made under the interposer's guard, is not the program's: its free must not show
# as a free of a block the trace never saw (an unknown free) either, with or without the debug
# allocators (the interposer notes it, preload/own_blocks.hpp).
import unittest

import pmt_e2e as e2e

CASES = (((("-X", "dev"), {})), ((), {"PYTHONMALLOC": "debug"}),
         ((), {"PYTHONMALLOC": "malloc_debug"}), ((), {"PYTHONMALLOC": "pymalloc_debug"}))


class DebugAllocators(e2e.E2ETest):
    def check(self, python):
        for args, env in CASES:
            with self.subTest(args=args, env=env):
                code = "import json; print(len(json.dumps(list(range(9)))))"
                run = e2e.run_traced(self, [python, *args, "-c", code], env_extra=env)
                self.assertEqual(run.returncode, 0, run.stderr)
                self.assertEqual(run.stdout.strip(), "27")
                self.assertNotIn("Debug memory block", run.stderr)
                report = e2e.report_json(self, run.only_trace(self))
                self.assertFalse(report["trace"]["truncated"], report["trace"])

    def check_no_unknown_free(self, python):
        for args, env in (((), {}), *CASES):
            with self.subTest(args=args, env=env):
                run = e2e.run_traced(self, [python, *args, "-c", "pass"], env_extra=env)
                self.assertEqual(run.returncode, 0, run.stderr)
                report = e2e.cli("report", run.only_trace(self))
                self.assertEqual(report.returncode, 0, report.stderr)
                self.assertIn("-c pass", report.stdout)
                # the summary's note on unknown frees ("note: 1 free of blocks made before
                # tracing started ignored"), absent when there are none
                notes = [line.strip() for line in report.stdout.splitlines()
                         if "made before tracing started" in line]
                self.assertEqual(notes, [])

    def test_system_python(self):
        self.check(e2e.SYSTEM_PYTHON)
        self.check_no_unknown_free(e2e.SYSTEM_PYTHON)

    def test_pyenv_python(self):
        python = e2e.other_python()
        if python is None:
            self.skipTest("no python3 on PATH other than /usr/bin/python3 (pyenv not installed)")
        self.check(python)
        self.check_no_unknown_free(python)


if __name__ == "__main__":
    unittest.main()
