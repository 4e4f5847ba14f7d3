# A fork leaves two traces: the parent's and the child's, whose header names the parent; each
# holds its own process's allocations at the marked lines. A program started by exec from a
# traced shell is traced too (LD_PRELOAD is inherited) and names the shell as its parent.
import unittest

import pmt_e2e as e2e

MIB = 1 << 20


class ForkTraces(e2e.E2ETest):
    def test_a_forked_child_writes_its_own_trace_naming_its_parent(self):
        path = e2e.script("fork_child.py")
        lines = e2e.marked_lines(path)
        run = e2e.run_python(self, "fork_child.py")
        self.assertEqual(run.returncode, 0, run.stderr)
        said = dict((w[0], w[1:]) for w in (l.split() for l in run.stdout.splitlines()))
        parent_pid = int(said["parent"][0])
        child_pid, child_ppid = map(int, said["child"])
        self.assertEqual(child_ppid, parent_pid)
        self.assertEqual(len(run.traces), 2, f"traces: {run.traces}; stderr:\n{run.stderr}")

        reports = {r["trace"]["pid"]: r for r in (e2e.report_json(self, t) for t in run.traces)}
        self.assertEqual(sorted(reports), sorted([parent_pid, child_pid]))
        child, parent = reports[child_pid], reports[parent_pid]
        self.assertEqual(child["trace"]["ppid"], parent_pid)
        self.assertFalse(child["trace"]["truncated"])
        self.assertFalse(parent["trace"]["truncated"])

        entry = e2e.at_line(child, path, lines["child"])
        self.assertIsNotNone(entry, e2e.describe_at_peak(child))
        self.assertAlmostEqual(entry["bytes"], 24 * MIB, delta=0.01 * 24 * MIB)
        self.assertIsNone(e2e.at_line(child, path, lines["parent"]))

        entry = e2e.at_line(parent, path, lines["parent"])
        self.assertIsNotNone(entry, e2e.describe_at_peak(parent))
        self.assertAlmostEqual(entry["bytes"], 40 * MIB, delta=0.01 * 40 * MIB)
        self.assertIsNone(e2e.at_line(parent, path, lines["child"]))

    def test_an_execd_python_is_traced_and_names_the_shell(self):
        code = "import os; print('python', os.getpid(), os.getppid())"
        # The command after the Python keeps sh from exec'ing in place: it forks, then execs.
        run = e2e.run_traced(self, ["sh", "-c", f'{e2e.SYSTEM_PYTHON} -c "{code}"; echo done'])
        self.assertEqual(run.returncode, 0, run.stderr)
        words = run.stdout.split()
        self.assertEqual(words[0], "python", run.stdout)
        python_pid, shell_pid = int(words[1]), int(words[2])
        self.assertEqual(words[3], "done")
        reports = {r["trace"]["pid"]: r for r in (e2e.report_json(self, t) for t in run.traces)}
        self.assertIn(python_pid, reports, f"traces: {run.traces}")
        self.assertIn(shell_pid, reports, f"traces: {run.traces}")
        self.assertEqual(reports[python_pid]["trace"]["ppid"], shell_pid)
        self.assertEqual(reports[python_pid]["trace"]["python"], "3.11.2")
        self.assertIsNone(reports[shell_pid]["trace"]["python"])


if __name__ == "__main__":
    unittest.main()
