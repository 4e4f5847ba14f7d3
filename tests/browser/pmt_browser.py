# Loads a pymemtrace HTML report in headless Chromium and reports what happened: every script
# error, console.error, failed or attempted request (CSP violation or resource error), alert()
# call, how much the two canvases drew (non-transparent pixels), and a screenshot.
# A probe script is inserted at the top of a copy of the page; the page itself is unchanged.
import json
import os
import re
import shutil
import subprocess
import tempfile
import html as html_lib

CHROMIUM = os.environ.get("PMT_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]

# Runs before anything else on the page. Records problems into data-probe-errors on <html>,
# then, at load (the report draws synchronously before it), measures the canvases and drives
# hover, wheel zoom, double-click and a flame-graph click so their code paths run too.
PROBE = r"""<script>
(function () {
  var errs = [];
  function rec(kind, msg) {
    errs.push(kind + ": " + msg);
    document.documentElement.setAttribute("data-probe-errors", JSON.stringify(errs));
  }
  document.documentElement.setAttribute("data-probe-errors", "[]");
  window.addEventListener("error", function (e) {
    if (e.target && e.target !== window) rec("resource", e.target.src || e.target.href || e.target.tagName);
    else rec("error", e.message + " at " + e.filename + ":" + e.lineno);
  }, true);
  window.addEventListener("unhandledrejection", function (e) { rec("rejection", String(e.reason)); });
  document.addEventListener("securitypolicyviolation", function (e) {
    rec("request blocked", e.violatedDirective + " " + e.blockedURI);
  });
  var ce = console.error;
  console.error = function () { rec("console.error", Array.prototype.join.call(arguments, " ")); return ce.apply(console, arguments); };
  window.alert = function (m) { rec("alert", String(m)); };
  window.confirm = window.prompt = function (m) { rec("dialog", String(m)); };
  function ink(c) {
    if (!c || !c.width || !c.height) return 0;
    var d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, n = 0;
    for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  }
  function at(el, fx, fy) {
    var b = el.getBoundingClientRect();
    return { clientX: b.left + b.width * fx, clientY: b.top + fy, bubbles: true, cancelable: true };
  }
  window.addEventListener("load", function () {
    try {
      var tl = document.getElementById("timeline"), fl = document.getElementById("flame");
      var r = { ready: document.body.dataset.ready || "", timeline_ink: ink(tl), flame_ink: ink(fl),
        timeline_points: Number(tl.dataset.points || 0), flame_nodes: Number(fl.dataset.nodes || 0) };
      tl.dispatchEvent(new MouseEvent("mousemove", at(tl, 0.6, 150)));
      r.tooltip_shown = !document.getElementById("tooltip").hidden;
      r.tooltip_text = document.getElementById("tooltip").textContent;
      tl.dispatchEvent(new WheelEvent("wheel", Object.assign({ deltaY: -300 }, at(tl, 0.5, 150))));
      r.zoom_text = document.getElementById("zoom-range").textContent;
      tl.dispatchEvent(new MouseEvent("mousedown", at(tl, 0.5, 150)));
      tl.dispatchEvent(new MouseEvent("mousemove", at(tl, 0.3, 150)));
      window.dispatchEvent(new MouseEvent("mouseup", at(tl, 0.3, 150)));
      tl.dispatchEvent(new MouseEvent("dblclick", at(tl, 0.5, 150)));
      r.zoom_text_after_reset = document.getElementById("zoom-range").textContent;
      tl.dispatchEvent(new MouseEvent("mouseleave", at(tl, 0.5, 150)));
      fl.dispatchEvent(new MouseEvent("mousemove", at(fl, 0.1, 30)));
      fl.dispatchEvent(new MouseEvent("click", at(fl, 0.1, 30)));
      r.flame_nodes_zoomed = Number(fl.dataset.nodes || 0);
      fl.dispatchEvent(new MouseEvent("click", at(fl, 0.5, 8)));
      r.resources = performance.getEntriesByType("resource").map(function (e) { return e.name; });
      r.text = document.body.innerText;
      document.documentElement.setAttribute("data-probe", JSON.stringify(r));
    } catch (e) { rec("probe", String(e && e.stack || e)); }
  });
})();
</script>"""


def available():
    return os.path.exists(CHROMIUM)


def _run(args, timeout):
    profile = tempfile.mkdtemp(prefix="pmt-chromium-")
    try:
        return subprocess.run([CHROMIUM, *FLAGS, "--user-data-dir=" + profile, *args],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _attr(dom, name):
    m = re.search(r'<html[^>]*\s' + name + r'="([^"]*)"', dom)
    return json.loads(html_lib.unescape(m.group(1))) if m else None


def load(page_path, screenshot=None, timeout=120, width=1400, height=2400):
    """Returns {"errors": [...], "probe": {...} or None, "console": [...], "dom": str}."""
    with open(page_path, encoding="utf-8") as f:
        page = f.read()
    probed = page.replace("<head>", "<head>\n" + PROBE, 1)
    work = tempfile.mkdtemp(prefix="pmt-browser-")
    try:
        copy = os.path.join(work, "page.html")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(probed)
        proc = _run(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                     "--window-size=%d,%d" % (width, height), "--dump-dom",
                     "file://" + copy], timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dom = proc.stdout
    errors = _attr(dom, "data-probe-errors")
    console = [l for l in proc.stderr.splitlines() if "CONSOLE" in l]
    result = {"errors": errors if errors is not None else ["the probe never ran"],
              "probe": _attr(dom, "data-probe"), "console": console, "dom": dom}
    for line in console:
        if re.search(r"Uncaught|Refused|Failed to load|ERR_", line):
            result["errors"].append("console: " + line)
    if screenshot:
        os.makedirs(os.path.dirname(screenshot), exist_ok=True)
        shot = _run(["--virtual-time-budget=5000", "--window-size=%d,%d" % (width, height),
                     "--screenshot=" + screenshot, "file://" + os.path.abspath(page_path)],
                    timeout)
        if not os.path.exists(screenshot):
            result["errors"].append("no screenshot: " + shot.stderr[-500:])
    return result
