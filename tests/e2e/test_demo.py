# The bundled example says in its header what pymemtrace finds; this keeps that promise true:
# at the peak, step()'s line holds two generations of `data` and load()'s line the kept `raw`;
# the report names the `data = step(data)` window and advises `del raw`.
import os
import unittest

import pmt_e2e as e2e

ARRAY = 10_000_000 * 8  # examples/demo.py: N float64 elements


def line_of(path, text):
    with open(path, encoding="utf-8") as f:
        for number, source in enumerate(f, start=1):
            if source.strip().startswith(text):
                return number
    raise AssertionError(f"{text!r} not found in {path}")


class DemoFinding(e2e.E2ETest):
    def test_the_demo_finds_what_its_header_promises(self):
        demo = os.path.join(e2e.SOURCE_DIR, "examples", "demo.py")
        run = e2e.run_traced(self, [e2e.SYSTEM_PYTHON, demo])
        self.assertEqual(run.returncode, 0, run.stderr)
        report = e2e.report_json(self, run.only_trace(self))
        step = e2e.at_line(report, demo, line_of(demo, "return x * 1.5"))
        load = e2e.at_line(report, demo, line_of(demo, "return np.arange(N"))
        self.assertIsNotNone(step, e2e.describe_at_peak(report))
        self.assertIsNotNone(load, e2e.describe_at_peak(report))
        self.assertAlmostEqual(step["bytes"], 2 * ARRAY, delta=0.01 * ARRAY)
        self.assertEqual(step["function"], "step")
        self.assertAlmostEqual(load["bytes"], ARRAY, delta=0.01 * ARRAY)
        self.assertEqual(report["at_peak"][0]["line"], step["line"])
        self.assertGreaterEqual(report["peak"]["bytes"], 3 * ARRAY)

        rebind = line_of(demo, "data = step(data)")
        windows = [w for w in report.get("windows", [])
                   if w.get("statement", {}).get("line") == rebind
                   or w["new"].get("line") == step["line"]]
        self.assertEqual(len(windows), 1, f"windows: {report.get('windows')}")
        self.assertAlmostEqual(windows[0]["bytes"], ARRAY, delta=0.05 * ARRAY)
        self.assertEqual(windows[0]["old"]["line"], step["line"])
        self.assertEqual(windows[0]["remedy"], "in-place")
        dels = [a for a in report.get("advice", []) if a["kind"] == "del"]
        self.assertIn(load["line"], [a["line"] for a in dels], f"advice: {report.get('advice')}")


if __name__ == "__main__":
    unittest.main()
