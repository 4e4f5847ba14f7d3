// Shared helpers of the report page: number formats, DOM building (text only ever goes in
// through textContent, so names from a trace cannot inject markup), the tooltip, colours and
// axis ticks. Loaded first; everything lives in the PMT namespace.
"use strict";
const PMT = {};

PMT.fmtBytes = function (b) {
  if (b === null || b === undefined || isNaN(b)) return "–";
  const neg = b < 0;
  let v = Math.abs(b);
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  const txt = i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2);
  return (neg ? "-" : "") + txt + " " + units[i];
};

PMT.fmtSec = function (s) {
  if (s === null || s === undefined || isNaN(s)) return "–";
  const a = Math.abs(s);
  if (a === 0) return "0 s";
  if (a < 1e-3) return (s * 1e6).toFixed(0) + " µs";
  if (a < 1) return (s * 1e3).toFixed(a >= 0.1 ? 0 : a >= 0.01 ? 1 : 2) + " ms";
  if (a < 100) return s.toFixed(2) + " s";
  return s.toFixed(0) + " s";
};

PMT.fmtCount = function (n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
};

// el("td", "num", "12 MB") -> <td class="num">12 MB</td>; text is set with textContent.
PMT.el = function (tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
};

// A frame-like object ({file, line, function}) as text, or null for anything else.
PMT.frameText = function (v) {
  return v && typeof v === "object" && !Array.isArray(v) && ("file" in v || "function" in v)
    ? PMT.where(v.file, v.line, v.function) : null;
};

PMT.where = function (file, line, fn) {
  if (!file) return (fn || "<no Python frame>");
  return (fn ? fn + "  " : "") + file + ":" + line;
};

// Tooltip rows: [{label, value, color}] under an optional title; all text via textContent.
PMT.tooltip = {
  node: null,
  show(x, y, title, rows) {
    const t = this.node || (this.node = document.getElementById("tooltip"));
    t.replaceChildren();
    if (title) t.appendChild(PMT.el("div", "t", title));
    for (const r of rows) {
      const row = PMT.el("div", "r");
      const k = PMT.el("span");
      if (r.color) {
        const sw = PMT.el("i", "sw");
        sw.style.background = r.color;
        k.appendChild(sw);
      }
      k.appendChild(document.createTextNode(r.label));
      row.appendChild(k);
      row.appendChild(PMT.el("span", null, r.value));
      t.appendChild(row);
    }
    t.hidden = false;
    const w = t.offsetWidth, h = t.offsetHeight;
    let left = x + 14, top = y + 14;
    if (left + w > window.innerWidth - 4) left = Math.max(4, x - w - 14);
    if (top + h > window.innerHeight - 4) top = Math.max(4, y - h - 14);
    t.style.left = left + "px";
    t.style.top = top + "px";
  },
  hide() { if (this.node) this.node.hidden = true; },
};

// Colour-blind-friendly categorical palette for stacked series.
PMT.palette = ["#4e79a7", "#59a14f", "#9c755f", "#b07aa1", "#76b7b2", "#edc948",
  "#ff9da7", "#bab0ac", "#86bcb6", "#d37295", "#a0cbe8", "#8cd17d"];

// "Nice" axis ticks between lo and hi, about n of them.
PMT.ticks = function (lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
};

// Byte ticks land on decimal round numbers too (1 kB = 1000 B, as the report prints).
PMT.byteTicks = function (hi, n) { return PMT.ticks(0, hi, n); };

// A canvas sized to its CSS width at the device's pixel ratio; returns the 2D context.
PMT.fitCanvas = function (canvas, cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(200, canvas.clientWidth || canvas.parentNode.clientWidth || 800);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  canvas.style.height = cssHeight + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h: cssHeight };
};

// Largest index i with a[i] <= x (a sorted ascending), or 0.
PMT.bisect = function (a, x) {
  let lo = 0, hi = a.length - 1;
  if (hi < 0 || x < a[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (a[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
};
