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

    def only_window(self, rep):
        big = [w for w in rep["windows"] if w["cost_bytes"] > 0]
        self.assertEqual(len(big), 1, f"windows with a cost: {rep['windows']}")
        return big[0]

    def assertNoWindow(self, rep, path):
        # Nothing of the script's own making: import-time noise under 5 MB is tolerated.
        for w in rep["windows"]:
            self.assertNotEqual(os.path.basename(w["new"]["file"]), os.path.basename(path), w)
            self.assertLess(w["bytes"], 5_000_000, w)

    def test_reassign_is_a_window_at_the_peak(self):
        rep, lines = self.report("reassign.py")
        w = self.only_window(rep)
        self.assertEqual(w["new"]["line"], lines["step"])
        self.assertEqual(w["new"]["function"], "step")
        self.assertEqual(w["statement"]["line"], lines["rebind"])
        self.assertEqual(w["old"]["line"], lines["load"])
        self.assertEqual(w["remedy"], "in-place")
        self.assertClose(w["bytes"], 400_000_000, "window bytes")
        self.assertClose(w["cost_bytes"], 400_000_000, "cost")
        self.assertClose(w["peak_if_fixed_bytes"], self.fixed_peak("reassign_fixed.py"),
                         "peak if fixed vs fixed variant")
        kinds = {a["kind"] for a in rep["advice"]}
        self.assertIn("window", kinds)

    def test_reassign_in_a_function_names_the_callers_line(self):
        rep, lines = self.report("reassign_in_function.py")
        w = self.only_window(rep)
        self.assertEqual(w["new"]["line"], lines["step"])
        self.assertEqual(w["statement"]["line"], lines["rebind"])
        self.assertEqual(w["statement"]["function"], "main")
        self.assertEqual(w["old"]["line"], lines["load"])
        self.assertClose(w["bytes"], 300_000_000, "window bytes")
        self.assertClose(w["peak_if_fixed_bytes"],
                         self.fixed_peak("reassign_in_function_fixed.py"),
                         "peak if fixed vs fixed variant")

    def test_loop_rebinding_is_one_window_for_every_iteration(self):
        rep, lines = self.report("loop_rebind.py")
        w = self.only_window(rep)
        self.assertEqual(w["new"]["line"], lines["update"])
        self.assertEqual(w["statement"]["line"], lines["update"])
        self.assertEqual(w["count"], 5)
        self.assertClose(w["bytes"], 200_000_000, "window bytes")
        self.assertClose(w["peak_if_fixed_bytes"], self.fixed_peak("loop_rebind_fixed.py"),
                         "peak if fixed vs fixed variant")

    def test_list_rebuild_is_a_window_of_arenas(self):
        rep, lines = self.report("list_rebuild.py")
        w = self.only_window(rep)
        self.assertEqual(w["statement"]["line"], lines["rebuild"])
        self.assertEqual(w["old"]["line"], lines["build"])
        self.assertEqual(w["remedy"], "replace-elements")
        n = 4_000_000
        self.assertClose(w["bytes"], n * (FLOAT_BLOCK + 8), "old list: floats + pointers")
        self.assertClose(w["peak_if_fixed_bytes"], self.fixed_peak("list_rebuild_fixed.py"),
                         "peak if fixed vs fixed variant")

    def test_chain_of_intermediates_gets_del_advice(self):
        path = example("chain_intermediates.py")
        rep, lines = self.report("chain_intermediates.py")
        self.assertNoWindow(rep, path)
        dels = [a for a in rep["advice"] if a["kind"] == "del"]
        self.assertEqual(len(dels), 1, rep["advice"])
        self.assertEqual(dels[0]["line"], lines["d1"])
        for marker in ("d1", "d2", "d3"):
            self.assertIn(f"chain_intermediates.py:{lines[marker]}", dels[0]["text"])
        self.assertIn("600.0 MB", dels[0]["text"])
        cf = rep["peak"]["bytes"] - dels[0]["saving_bytes"]
        self.assertClose(cf, self.fixed_peak("chain_intermediates_fixed.py"),
                         "peak if freed vs fixed variant")

    def test_list_of_floats_gets_numpy_advice(self):
        path = example("list_of_floats.py")
        rep, lines = self.report("list_of_floats.py")
        self.assertNoWindow(rep, path)
        adv = [a for a in rep["advice"] if a["kind"] == "numpy-array"]
        self.assertEqual(len(adv), 1, rep["advice"])
        self.assertEqual(adv[0]["line"], lines["build"])
        cf = rep["peak"]["bytes"] - adv[0]["saving_bytes"]
        self.assertClose(cf, self.fixed_peak("list_of_floats_fixed.py"),
                         "peak as an array vs fixed variant")

    def test_float64_arrays_get_conditional_float32_advice(self):
        path = example("float64_arrays.py")
        rep, lines = self.report("float64_arrays.py")
        self.assertNoWindow(rep, path)
        adv = [a for a in rep["advice"] if a["kind"] == "float32"]
        self.assertEqual(len(adv), 1, rep["advice"])
        self.assertIn(adv[0]["line"], (lines["a"], lines["b"]))
        self.assertIn("precision", adv[0]["text"])
        self.assertClose(adv[0]["saving_bytes"], 200_000_000, "half of the two arrays")
        cf = rep["peak"]["bytes"] - adv[0]["saving_bytes"]
        self.assertClose(cf, self.fixed_peak("float64_arrays_fixed.py"),
                         "peak in float32 vs fixed variant")

    def test_negative_controls_have_no_window(self):
        for name in ("neg_temporaries.py", "neg_both_kept.py", "neg_exit_release.py"):
            with self.subTest(name):
                rep, _ = self.report(name)
                self.assertNoWindow(rep, example(name))


if __name__ == "__main__":
    unittest.main()
