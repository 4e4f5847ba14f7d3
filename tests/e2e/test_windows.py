# End-to-end: the pattern scripts in examples/ run under the interposer (/usr/bin/python3, numpy)
# and `pymemtrace report --json` must report exactly their expected finding: the right lines
# (from `# LINE:` markers), sizes within 5% of what the scripts allocate by construction, no
# window in the negative controls, and each counterfactual peak within 5% of the peak measured
# by running the script's fixed variant (examples/fixed/).
import os
import unittest

from pmt_e2e import E2ETest, SOURCE_DIR, marked_lines, report_json, run_traced, SYSTEM_PYTHON

EXAMPLES = os.path.join(SOURCE_DIR, "examples")
TOLERANCE = 0.05
FLOAT_BLOCK = 32  # a float's pymalloc block (24-byte object, 16-byte alignment)


def example(name):
    return os.path.join(EXAMPLES, name)


class WindowsTest(E2ETest):
    def report(self, name):
        path = example(name)
        traced = run_traced(self, [SYSTEM_PYTHON, path])
        self.assertEqual(traced.returncode, 0, traced.stderr)
        return report_json(self, traced.only_trace(self)), marked_lines(path)

    def fixed_peak(self, name):
        rep, _ = self.report(os.path.join("fixed", name))
        return rep["peak"]["bytes"]

    def assertClose(self, actual, expected, what):
        self.assertLessEqual(abs(actual - expected), TOLERANCE * expected,
                             f"{what}: {actual} vs expected {expected}")

    def assertNoWindow(self, rep, path):
        # Nothing of the script's own making: import-time noise under 5 MB is tolerated.
        for w in rep["windows"]:
            self.assertNotEqual(os.path.basename(w["new"]["file"]), os.path.basename(path), w)
            self.assertLess(w["bytes"], 5_000_000, w)

    def finding(self, name, kind):
        """Runs examples/<name> and its fixed variant (fixed/<name>_fixed.py). The report must
        hold exactly one finding of this kind: "window" (one window with a cost), or an advice
        kind (exactly one such advice, and no window of the script's own). Its counterfactual
        peak (a window's peak_if_fixed_bytes; for advice, the peak less its saving) must be
        within 5% of the fixed variant's measured peak.
        Returns the finding, the script's marked lines and the whole report."""
        rep, lines = self.report(name)
        if kind == "window":
            found = [w for w in rep["windows"] if w["cost_bytes"] > 0]
            self.assertEqual(len(found), 1, f"windows with a cost: {rep['windows']}")
            counterfactual, what = found[0]["peak_if_fixed_bytes"], "peak if fixed"
        else:
            self.assertNoWindow(rep, example(name))
            found = [a for a in rep["advice"] if a["kind"] == kind]
            self.assertEqual(len(found), 1, rep["advice"])
            counterfactual = rep["peak"]["bytes"] - found[0]["saving_bytes"]
            what = f"peak after the {kind} advice"
        self.assertClose(counterfactual, self.fixed_peak(name.replace(".py", "_fixed.py")),
                         f"{what} vs fixed variant")
        return found[0], lines, rep

    def test_reassign_is_a_window_at_the_peak(self):
        w, lines, rep = self.finding("reassign.py", "window")
        self.assertEqual(w["new"]["line"], lines["step"])
        self.assertEqual(w["new"]["function"], "step")
        self.assertEqual(w["statement"]["line"], lines["rebind"])
        self.assertEqual(w["old"]["line"], lines["load"])
        self.assertEqual(w["remedy"], "in-place")
        self.assertClose(w["bytes"], 400_000_000, "window bytes")
        self.assertClose(w["cost_bytes"], 400_000_000, "cost")
        kinds = {a["kind"] for a in rep["advice"]}
        self.assertIn("window", kinds)

    def test_reassign_in_a_function_names_the_callers_line(self):
        w, lines, _ = self.finding("reassign_in_function.py", "window")
        self.assertEqual(w["new"]["line"], lines["step"])
        self.assertEqual(w["statement"]["line"], lines["rebind"])
        self.assertEqual(w["statement"]["function"], "main")
        self.assertEqual(w["old"]["line"], lines["load"])
        self.assertClose(w["bytes"], 300_000_000, "window bytes")

    def test_loop_rebinding_is_one_window_for_every_iteration(self):
        w, lines, _ = self.finding("loop_rebind.py", "window")
        self.assertEqual(w["new"]["line"], lines["update"])
        self.assertEqual(w["statement"]["line"], lines["update"])
        self.assertEqual(w["count"], 5)
        self.assertClose(w["bytes"], 200_000_000, "window bytes")

    def test_list_rebuild_is_a_window_of_arenas(self):
        w, lines, _ = self.finding("list_rebuild.py", "window")
        self.assertEqual(w["statement"]["line"], lines["rebuild"])
        self.assertEqual(w["old"]["line"], lines["build"])
        self.assertEqual(w["remedy"], "replace-elements")
        n = 4_000_000
        self.assertClose(w["bytes"], n * (FLOAT_BLOCK + 8), "old list: floats + pointers")

    def test_chain_of_intermediates_gets_del_advice(self):
        d, lines, _ = self.finding("chain_intermediates.py", "del")
        self.assertEqual(d["line"], lines["d1"])
        for marker in ("d1", "d2", "d3"):
            self.assertIn(f"chain_intermediates.py:{lines[marker]}", d["text"])
        self.assertIn("600.0 MB", d["text"])

    def test_list_of_floats_gets_numpy_advice(self):
        adv, lines, _ = self.finding("list_of_floats.py", "numpy-array")
        self.assertEqual(adv["line"], lines["build"])

    def test_float64_arrays_get_conditional_float32_advice(self):
        adv, lines, _ = self.finding("float64_arrays.py", "float32")
        self.assertIn(adv["line"], (lines["a"], lines["b"]))
        self.assertIn("precision", adv["text"])
        self.assertClose(adv["saving_bytes"], 200_000_000, "half of the two arrays")

    def test_negative_controls_have_no_window(self):
        for name in ("neg_temporaries.py", "neg_both_kept.py", "neg_exit_release.py"):
            with self.subTest(name):
                rep, _ = self.report(name)
                self.assertNoWindow(rep, example(name))


if __name__ == "__main__":
    unittest.main()
