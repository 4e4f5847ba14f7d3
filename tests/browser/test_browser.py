# The HTML report in headless Chromium: pages made from real traced runs (one numpy job, and a
# multiprocessing Pool's process tree) load without a single script error, console error or
# request, draw a non-empty timeline and flame graph, survive hover/zoom/pan/click, and leave a
# screenshot under <build>/browser/ for a person to look at.
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)

import pmt_browser  # noqa: E402
import pmt_e2e as e2e  # noqa: E402

SHOTS = os.path.join(e2e.BUILD_DIR, "browser")


class BrowserTest(e2e.E2ETest):
    def setUp(self):
        super().setUp()
        if not pmt_browser.available():
            self.fail(f"{pmt_browser.CHROMIUM} is missing: run scripts/setup-deps.sh (installs chromium)")

    def make_page(self, traces, name):
        page = os.path.join(tempfile.mkdtemp(prefix="pmt-page-"), name + ".html")
        self.addCleanup(lambda: os.path.exists(page) and os.remove(page))
        proc = e2e.cli("html", *traces, "-o", page)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        size = os.path.getsize(page)
        self.assertLess(size, 5_000_000, f"page of {size} bytes")
        return page

    def check_page(self, page, shot):
        res = pmt_browser.load(page, screenshot=os.path.join(SHOTS, shot))
        self.assertEqual(res["errors"], [], "browser reported problems:\n" + "\n".join(res["errors"]))
        p = res["probe"]
        self.assertIsNotNone(p, "the probe did not report")
        self.assertEqual(p["ready"], "1", "the page script did not finish")
        self.assertEqual(p["resources"], [], "the page requested resources")
        # Non-empty: a drawn chart inks a good share of its canvas.
        self.assertGreater(p["timeline_ink"], 20000)
        self.assertGreater(p["timeline_points"], 10)
        self.assertGreater(p["flame_ink"], 5000)
        self.assertGreater(p["flame_nodes"], 2)
        self.assertTrue(p["tooltip_shown"], "hovering the timeline shows no tooltip")
        self.assertIn("live heap", p["tooltip_text"])
        self.assertIn("showing", p["zoom_text"], "wheel did not zoom")
        self.assertEqual(p["zoom_text_after_reset"], "", "double-click did not reset the zoom")
        self.assertTrue(os.path.getsize(os.path.join(SHOTS, shot)) > 10000)
        return p

    def test_numpy_job_page_renders_cleanly(self):
        demo = os.path.join(e2e.SOURCE_DIR, "examples", "demo.py")
        run = e2e.run_traced(self, [e2e.SYSTEM_PYTHON, demo])
        self.assertEqual(run.returncode, 0, run.stderr)
        page = self.make_page([run.only_trace(self)], "demo")
        p = self.check_page(page, "demo.png")
        # The page names the lines holding the peak: step()'s and load()'s return lines.
        with open(demo, encoding="utf-8") as f:
            source = f.read().splitlines()
        for text in ("return x * 1.5", "return np.arange("):
            line = next(i for i, l in enumerate(source, 1) if l.strip().startswith(text))
            self.assertIn(f"demo.py:{line}", p["text"])

    def test_process_tree_page_renders_cleanly(self):
        run = e2e.run_python(self, "pool_workers.py", "fork")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertGreaterEqual(len(run.traces), 2, run.stderr)
        page = self.make_page([run.out_dir], "pool")
        p = self.check_page(page, "pool.png")
        self.assertIn("Processes", p["text"])


if __name__ == "__main__":
    unittest.main()
