# `pymemtrace html`, `timeline` and `export` on real traced runs: names from a trace are escaped
# (a function called <script>alert(1)</script> stays text), the timeline's maximum is the
# report's exact peak, and the folded and Perfetto exports agree with the report.
import csv
import io
import json
import os
import re
import sys
import tempfile
import unittest

import pmt_e2e as e2e

sys.path.insert(0, os.path.join(e2e.HERE, "..", "browser"))
import pmt_browser  # noqa: E402

EVIL_FUNCTION = "<script>alert(1)</script>"
EVIL_FILE = "<img src=x onerror=alert(2)>.py"


def page_data(page):
    m = re.search(r'<script type="application/json" id="pmt-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


class HtmlTest(e2e.E2ETest):
    def html(self, *traces):
        out = os.path.join(tempfile.mkdtemp(prefix="pmt-html-"), "r.html")
        proc = e2e.cli("html", *traces, "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            text = f.read()
        os.remove(out)
        return text

    def test_a_function_named_script_tag_is_text_not_markup(self):
        run = e2e.run_python(self, "evil_names.py")
        self.assertEqual(run.returncode, 0, run.stderr)
        page = self.html(run.only_trace(self))
        self.assertNotIn(EVIL_FUNCTION, page)
        self.assertNotIn("<img src=x", page)
        # Exactly the page's own two script elements: the data and the code.
        self.assertEqual(page.count("<script"), 2)
        self.assertNotIn("\u2028", page)
        data = page_data(page)
        names = json.dumps(data["processes"][0]["report"]["at_peak"])
        self.assertIn(EVIL_FUNCTION, names)
        self.assertIn(EVIL_FILE, names)
        if not pmt_browser.available():
            self.fail("chromium is missing: run scripts/setup-deps.sh")
        path = os.path.join(tempfile.mkdtemp(prefix="pmt-html-"), "evil.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
        res = pmt_browser.load(path)
        os.remove(path)
        self.assertEqual(res["errors"], [])  # alert() would be recorded here
        self.assertIn(EVIL_FUNCTION, res["probe"]["text"])  # shown, as text
        self.assertIn(EVIL_FILE, res["probe"]["text"])

    def test_timeline_maximum_is_the_reports_exact_peak(self):
        run = e2e.run_python(self, "alloc_churn.py", "12")
        self.assertEqual(run.returncode, 0, run.stderr)
        trace = run.only_trace(self)
        peak = e2e.report_json(self, trace)["peak"]["bytes"]
        for extra in ([], ["--resolution", "50ms"], ["--max-points", "16"]):
            proc = e2e.cli("timeline", trace, "--format", "csv", *extra)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            rows = list(csv.reader(io.StringIO(proc.stdout)))
            self.assertEqual(rows[0][:3], ["time_s", "live_bytes", "rss_bytes"])
            self.assertGreater(len(rows), 3)
            self.assertEqual(max(int(r[1]) for r in rows[1:]), peak, extra)
            times = [float(r[0]) for r in rows[1:]]
            self.assertEqual(times, sorted(times))
        proc = e2e.cli("timeline", trace, "--format", "json", "--top", "3")
        t = json.loads(proc.stdout)
        self.assertEqual(t["schema"], "pymemtrace-timeline/1")
        self.assertEqual(max(t["live_bytes"]), peak)
        self.assertEqual(t["peak"]["live_bytes"], peak)
        self.assertLessEqual(len(t["sites"]), 3)
        self.assertEqual(len(t["site_bytes"][0]), len(t["time_s"]))

    def test_exports_agree_with_the_report(self):
        run = e2e.run_python(self, "three_arrays.py", "1")
        self.assertEqual(run.returncode, 0, run.stderr)
        trace = run.only_trace(self)
        report = e2e.report_json(self, trace)
        peak = report["peak"]["bytes"]
        folded = e2e.cli("export", trace, "--format", "folded")
        self.assertEqual(folded.returncode, 0, folded.stderr)
        lines = folded.stdout.splitlines()
        total = sum(int(l.rsplit(" ", 1)[1]) for l in lines)
        self.assertEqual(total, peak)  # every byte live at the peak, once
        top = report["at_peak"][0]
        self.assertTrue(any(f"{top['function']} (" in l and f":{top['line']})" in l for l in lines[:3]))
        perfetto = e2e.cli("export", trace, "--format", "perfetto")
        doc = json.loads(perfetto.stdout)
        live = [e["args"]["bytes"] for e in doc["traceEvents"]
                if e.get("ph") == "C" and e["name"] == "live heap (bytes)"]
        self.assertEqual(max(live), peak)
        self.assertTrue(any(e.get("ph") == "i" and e["name"] == "peak live heap" for e in doc["traceEvents"]))

    def test_a_missing_trace_is_one_line_and_exit_2(self):
        proc = e2e.cli("html", "/nonexistent/x.pmt", "-o", "/tmp/never.html")
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)


if __name__ == "__main__":
    unittest.main()
