# A fork leaves two traces: the parent's and the child's, whose header names the parent; each
# holds its own process's allocations at the marked lines.
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


if __name__ == "__main__":
    unittest.main()
