// Builds the report page from the embedded JSON document (html.cpp writes it): summary cards,
// timeline, flame graph, and the tables of processes, windows, advice and top lines.
// Every string from the trace goes in with textContent (PMT.el), never as markup.
"use strict";

(function () {
  const D = JSON.parse(document.getElementById("pmt-data").textContent);
  const $ = (id) => document.getElementById(id);
  const procs = D.processes;
  const multi = procs.length > 1;
  const first = procs[0].report;

  // ---- header ----
  const cmd = (first.trace && first.trace.argv && first.trace.argv.join(" ")) || procs[0].name;
  $("title-cmd").textContent = cmd;
  document.title = "pymemtrace: " + cmd;
  const card = (k, v, cls) => {
    const c = PMT.el("div", "card" + (cls ? " " + cls : ""));
    c.appendChild(PMT.el("div", "k", k));
    c.appendChild(PMT.el("div", "v", v));
    $("summary").appendChild(c);
  };
  const T = D.timeline;
  if (multi) {
    card("Processes", String(procs.length));
    card("Total live peak", PMT.fmtBytes(T.peak.bytes), "peak");
    card("Total peaked at", PMT.fmtSec(T.peak.time_s));
    card("Largest RSS sum", PMT.fmtBytes(Math.max(0, ...T.rss_bytes)));
  } else {
    const pk = first.peak || {};
    card("Peak live heap", PMT.fmtBytes(pk.bytes), "peak");
    card("Peak at", PMT.fmtSec(pk.time_s));
    card("Peak RSS", pk.rss_bytes ? PMT.fmtBytes(pk.rss_bytes) : "not sampled");
  }
  let events = 0, duration = 0;
  for (const p of procs) {
    const t = p.report.trace || {};
    events += t.events || 0;
    duration = Math.max(duration, (p.offset_s || 0) + (t.duration_s || 0));
  }
  card("Duration", PMT.fmtSec(duration));
  card("Events", PMT.fmtCount(events));
  if (first.trace) {
    card("Python", (first.trace.python || "none") +
         (first.trace.python_allocators ? ", allocators traced" : ""));
    card("Allocator", first.trace.allocator || "–");
  }
  for (const p of procs) {
    const t = p.report.trace || {};
    if (t.truncated) {
      $("notes").appendChild(PMT.el("div", "note", p.name + ": the trace stops early (" +
        (t.truncation_reason || "no end record") + "); this report covers it up to " +
        PMT.fmtSec(t.duration_s) + "."));
    }
  }

  // ---- timeline ----
  const timeline = new PMT.Timeline($("timeline"), T, $("legend"));

  // ---- flame graph, one per process ----
  const flame = new PMT.Flame($("flame"));
  if (multi) {
    $("flame-picker-wrap").hidden = false;
    procs.forEach((p, k) => $("flame-picker").appendChild(PMT.el("option", null, p.name)).value = String(k));
    $("flame-picker").addEventListener("change", (ev) => flame.show(procs[Number(ev.target.value)].flame));
  }
  // Several processes: start with the one that held the most at its own peak.
  let biggest = 0;
  procs.forEach((p, k) => { if ((p.report.peak || {}).bytes > ((procs[biggest].report.peak || {}).bytes || 0)) biggest = k; });
  if (multi) $("flame-picker").value = String(biggest);
  flame.show(procs[biggest].flame);

  // ---- tables ----
  const table = (head, rows, hotRow) => {
    const t = PMT.el("table");
    const tr = PMT.el("tr");
    for (const h of head) tr.appendChild(PMT.el("th", h.num ? "num" : null, h.label));
    t.appendChild(PMT.el("thead")).appendChild(tr);
    const body = t.appendChild(PMT.el("tbody"));
    rows.forEach((r, i) => {
      const row = body.appendChild(PMT.el("tr", hotRow === i ? "hot" : null));
      r.forEach((cell, j) => {
        const td = row.appendChild(PMT.el("td", head[j].num ? "num" : head[j].code ? "code" : null));
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
      });
    });
    return t;
  };
  const empty = (node, text) => node.appendChild(PMT.el("p", "empty", text));
  const frameText = PMT.frameText;
  const cellText = (k, v) => frameText(v) || PMT.fieldText(k, v);

  // A list of objects as a table with one column per key (the windows and advice sections
  // may grow fields; every scalar or frame-like field is shown).
  const genericTable = (node, list, extra) => {
    const keys = [];
    for (const o of list) for (const k of Object.keys(o)) if (!keys.includes(k) && (typeof o[k] !== "object" || frameText(o[k]) || o[k] === null)) keys.push(k);
    const head = (extra ? [{ label: extra.label }] : []).concat(keys.map((k) => ({ label: k.replace(/_/g, " "), num: /(bytes|_s)$/.test(k), code: /(file|site|line|stack)/.test(k) })));
    node.appendChild(table(head, list.map((o, i) => (extra ? [extra.value(i)] : []).concat(keys.map((k) => cellText(k, o[k]))))));
  };

  const gather = (key) => {
    const out = [], who = [];
    procs.forEach((p) => {
      const v = p.report[key];
      if (Array.isArray(v)) for (const x of v) { out.push(x); who.push(p.name); }
    });
    return { out, who, present: procs.some((p) => key in p.report) };
  };
  const sectionOf = (key, id, none, missing) => {
    const g = gather(key);
    const node = $(id);
    if (!g.present) { empty(node, missing); return; }
    if (!g.out.length) { empty(node, none); return; }
    const extra = multi ? { label: "process", value: (i) => g.who[i] } : null;
    if (g.out.every((x) => typeof x === "string")) {
      const ul = node.appendChild(PMT.el("ul"));
      g.out.forEach((x, i) => ul.appendChild(PMT.el("li", null, (extra ? g.who[i] + ": " : "") + x)));
    } else genericTable(node, g.out.map((x) => (typeof x === "object" ? x : { text: x })), extra);
  };
  // Windows with the fields the windows section writes get a table of their own; clicking a
  // row zooms the timeline to it. Anything else falls back to the generic table.
  const winKnown = (w) => w && typeof w === "object" && "start_s" in w && "end_s" in w && "cost_bytes" in w;
  const gw = gather("windows");
  if (gw.out.length && gw.out.every(winKnown)) {
    const rows = gw.out.map((w, i) => [String(i + 1) + (multi ? " · " + gw.who[i].split(":")[0] : ""),
      PMT.fmtSec(w.start_s) + " – " + PMT.fmtSec(w.end_s), PMT.fmtBytes(w.bytes),
      w.cost_bytes > 0 ? PMT.fmtBytes(w.cost_bytes) : "none (away from the peak)",
      PMT.frameText(w.statement) || "–", PMT.frameText(w.old) || "–", PMT.frameText(w.new) || "–",
      w.remedy || "–", w.peak_if_fixed_bytes ? PMT.fmtBytes(w.peak_if_fixed_bytes) : "–",
      w.count > 1 ? "×" + w.count : ""]);
    const t = table([{ label: "#" }, { label: "when", num: true }, { label: "old data", num: true },
      { label: "cost to the peak", num: true }, { label: "statement", code: true },
      { label: "old data made at", code: true }, { label: "new data made at", code: true },
      { label: "fix" }, { label: "peak if fixed", num: true }, { label: "" }], rows,
      gw.out.findIndex((w) => w.cost_bytes > 0) === 0 ? 0 : -1);
    const offsets = procs.map((p) => p.offset_s || 0);
    t.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.style.cursor = "zoom-in";
      tr.title = "Show this window on the timeline";
      tr.addEventListener("click", () => {
        const off = offsets[procs.findIndex((p) => p.name === gw.who[i])] || 0;
        const a = gw.out[i].start_s + off, b = gw.out[i].end_s + off, pad = Math.max((b - a) * 0.5, 0.01);
        timeline.setView(a - pad, b + pad);
        $("sec-timeline").scrollIntoView({ behavior: "smooth" });
      });
    });
    $("windows").appendChild(t);
  } else {
    sectionOf("windows", "windows", "No double-allocation window was found.",
      "This build of pymemtrace does not look for windows yet.");
  }
  const ga = gather("advice");
  if (ga.out.length && ga.out.every((a) => a && typeof a === "object" && "text" in a)) {
    const rows = ga.out.map((a, i) => [(multi ? ga.who[i].split(":")[0] + ": " : "") + a.text,
      a.file ? PMT.where(a.file, a.line) : "–", a.saving_bytes ? PMT.fmtBytes(a.saving_bytes) : "–"]);
    $("advice").appendChild(table([{ label: "advice" }, { label: "line", code: true },
      { label: "saves up to", num: true }], rows));
  } else {
    sectionOf("advice", "advice", "No advice: nothing stood out.",
      "This build of pymemtrace gives no advice yet.");
  }

  // Top lines at the peak (per process when several).
  const sitesNode = $("sites");
  procs.forEach((p) => {
    const sites = p.report.at_peak || [];
    if (multi) sitesNode.appendChild(PMT.el("h3", null, p.name));
    if (!sites.length) { empty(sitesNode, "Nothing was live at the peak."); return; }
    const peak = (p.report.peak && p.report.peak.bytes) || 1;
    const rows = sites.map((s, i) => {
      const bar = PMT.el("span");
      const b = bar.appendChild(PMT.el("i", "bar"));
      b.style.width = Math.max(1, Math.round((60 * s.bytes) / peak)) + "px";
      bar.appendChild(document.createTextNode(((100 * s.bytes) / peak).toFixed(1) + " %"));
      const callers = (s.stack || []).slice(1, 4).map((f) => PMT.where(f.file, f.line, f.function)).join("  ←  ");
      return [String(i + 1), PMT.fmtBytes(s.bytes), bar, PMT.fmtCount(s.blocks),
        PMT.where(s.file, s.line, s.function), callers];
    });
    sitesNode.appendChild(table([{ label: "#" }, { label: "bytes", num: true }, { label: "share", num: true },
      { label: "blocks", num: true }, { label: "line", code: true }, { label: "called from", code: true }], rows));
  });

  // Processes (several traces).
  if (D.tree) {
    $("sec-processes").hidden = false;
    const tp = D.tree.total || {};
    const rows = D.tree.processes.map((p) => {
      const top = (p.top_lines || [])[0];
      return [String(p.pid), String(p.ppid), (p.argv || []).join(" "), PMT.fmtSec(p.start_offset_s),
        PMT.fmtBytes(p.peak_bytes), PMT.fmtSec(p.start_offset_s + p.peak_time_s), PMT.fmtBytes(p.bytes_at_total_peak),
        top ? PMT.where(top.file, top.line, top.function) + "  (" + PMT.fmtBytes(top.bytes) + ")" : "–"];
    });
    $("processes").appendChild(PMT.el("p", "hint", "The sum of all processes peaked at " +
      PMT.fmtBytes(tp.peak_bytes) + " at " + PMT.fmtSec(tp.peak_time_s) + " (to within " + PMT.fmtSec(tp.resolution_s) + ")."));
    $("processes").appendChild(table([{ label: "pid" }, { label: "parent" }, { label: "command", code: true },
      { label: "started", num: true }, { label: "own peak", num: true }, { label: "at", num: true },
      { label: "at the total's peak", num: true }, { label: "top line at its peak", code: true }], rows));
  }

  $("footer").textContent = (D.generator || "pymemtrace") + " · sizes in decimal units (1 MB = 10⁶ bytes) · " +
    procs.map((p) => p.report.trace ? p.report.trace.path : p.name).join(", ");
  document.body.dataset.ready = "1";
})();
