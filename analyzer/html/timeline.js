// The memory timeline: live heap (line), RSS (dashed), the top sites or processes stacked
// underneath, the exact peak marked and double-allocation windows shaded. Canvas drawing,
// redrawn on zoom (wheel), pan (drag) and hover; the data is bounded by the analyzer.
"use strict";

PMT.fieldText = function (key, v) {
  if (typeof v === "number") {
    if (/bytes$/.test(key)) return PMT.fmtBytes(v);
    if (/_s$/.test(key)) return PMT.fmtSec(v);
    return PMT.fmtCount(v);
  }
  if (v === null || v === undefined) return "–";
  if (typeof v === "object") return Array.isArray(v) ? v.map(String).join(", ") : JSON.stringify(v);
  return String(v);
};

class Timeline {
  constructor(canvas, data, legend) {
    this.canvas = canvas;
    this.d = data;
    this.t = data.time_s;
    const end = Math.max(data.end_time_s || 0, this.t.length ? this.t[this.t.length - 1] : 0);
    this.full = [0, end > 0 ? end : 1];
    this.view = this.full.slice();
    this.hover = null;
    this.drag = null;
    this.pad = { l: 74, r: 18, t: 16, b: 34 };
    this.hasRss = data.rss_bytes.some((v) => v > 0);  // no samples: no line at zero
    this.renderLegend(legend);
    this.bind();
    this.draw();
  }

  renderLegend(node) {
    const add = (cls, color, label) => {
      const item = PMT.el("span", "item");
      const sw = PMT.el("i", "sw " + cls);
      if (color) sw.style.background = color;
      item.appendChild(sw);
      item.appendChild(PMT.el("span", "lbl", label));
      node.appendChild(item);
    };
    add("line", "#1d2330", "live heap" + (this.d.stack_kind === "process" ? " (all processes)" : ""));
    if (this.hasRss) add("dash", null, "RSS" + (this.d.stack_kind === "process" ? " (sum: pages shared after fork count once per process)" : ""));
    this.d.stacks.forEach((s, k) => add("", PMT.palette[k % PMT.palette.length], s.label));
    if (this.d.windows.length) add("", "rgba(224,123,0,.35)", "double-allocation window");
    add("line", "#c62828", "peak " + PMT.fmtBytes(this.d.peak.bytes) + " at " + PMT.fmtSec(this.d.peak.time_s));
  }

  bind() {
    const c = this.canvas;
    const timeAt = (ev) => {
      const r = c.getBoundingClientRect();
      const x = ev.clientX - r.left;
      return { x, t: this.view[0] + ((x - this.pad.l) / this.plotW) * (this.view[1] - this.view[0]) };
    };
    c.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const { t } = timeAt(ev);
      const f = ev.deltaY < 0 ? 0.8 : 1.25;
      this.setView(t - (t - this.view[0]) * f, t + (this.view[1] - t) * f);
    }, { passive: false });
    c.addEventListener("mousedown", (ev) => {
      this.drag = { x: ev.clientX, view: this.view.slice() };
      c.classList.add("dragging");
    });
    window.addEventListener("mouseup", () => { this.drag = null; c.classList.remove("dragging"); });
    c.addEventListener("mousemove", (ev) => {
      if (this.drag) {
        const dt = ((ev.clientX - this.drag.x) / this.plotW) * (this.drag.view[1] - this.drag.view[0]);
        this.setView(this.drag.view[0] - dt, this.drag.view[1] - dt);
        return;
      }
      const { x, t } = timeAt(ev);
      this.hover = x >= this.pad.l && x <= this.pad.l + this.plotW ? t : null;
      this.draw();
      this.showTip(ev);
    });
    c.addEventListener("mouseleave", () => { this.hover = null; PMT.tooltip.hide(); this.draw(); });
    c.addEventListener("dblclick", () => this.setView(this.full[0], this.full[1]));
    document.getElementById("zoom-reset").addEventListener("click", () => this.setView(this.full[0], this.full[1]));
    window.addEventListener("resize", () => this.draw());
  }

  setView(a, b) {
    const span = this.full[1] - this.full[0];
    const minSpan = Math.max(span * 1e-6, 1e-6);
    let w = Math.min(Math.max(b - a, minSpan), span);
    a = Math.min(Math.max(a, this.full[0]), this.full[1] - w);
    this.view = [a, a + w];
    const zoomed = w < span * 0.999;
    document.getElementById("zoom-range").textContent = zoomed
      ? "showing " + PMT.fmtSec(a) + " – " + PMT.fmtSec(a + w) : "";
    this.draw();
  }

  windowsAt(t) {
    const tol = ((this.view[1] - this.view[0]) / this.plotW) * 2;
    return this.d.windows.filter((w) => t >= w.start_s - tol && t <= w.end_s + tol);
  }

  showTip(ev) {
    if (this.hover === null || !this.t.length) { PMT.tooltip.hide(); return; }
    const i = this.nearest(this.hover);
    const rows = [{ label: "live heap", value: PMT.fmtBytes(this.d.live_bytes[i]), color: "#1d2330" }];
    if (this.hasRss) rows.push({ label: "RSS", value: PMT.fmtBytes(this.d.rss_bytes[i]), color: "#e07b00" });
    this.d.stacks.forEach((s, k) => {
      if (s.values[i] > 0) rows.push({ label: s.label, value: PMT.fmtBytes(s.values[i]), color: PMT.palette[k % PMT.palette.length] });
    });
    for (const w of this.windowsAt(this.hover)) {
      rows.push({ label: "— window", value: PMT.fmtSec(w.start_s) + " – " + PMT.fmtSec(w.end_s), color: "rgba(224,123,0,.6)" });
      for (const [k, v] of Object.entries(w.fields)) {
        if (/_s$/.test(k)) continue;  // the span is on the row above
        const frame = PMT.frameText(v);
        if (frame) rows.push({ label: "  " + k.replace(/_/g, " "), value: frame });
        else if (typeof v !== "object" || v === null) rows.push({ label: "  " + k.replace(/_/g, " "), value: PMT.fieldText(k, v) });
      }
    }
    PMT.tooltip.show(ev.clientX, ev.clientY, "at " + PMT.fmtSec(this.t[i]), rows);
  }

  nearest(t) {
    const i = PMT.bisect(this.t, t);
    return i + 1 < this.t.length && Math.abs(this.t[i + 1] - t) < Math.abs(this.t[i] - t) ? i + 1 : i;
  }

  draw() {
    const { ctx, w, h } = PMT.fitCanvas(this.canvas, 380);
    const p = this.pad;
    this.plotW = w - p.l - p.r;
    const ph = h - p.t - p.b;
    const [t0, t1] = this.view;
    const n = this.t.length;
    const i0 = Math.max(0, PMT.bisect(this.t, t0) - 1);
    const i1 = Math.min(n - 1, PMT.bisect(this.t, t1) + 1);
    let ymax = 0;
    for (let i = i0; i <= i1 && n; i++) ymax = Math.max(ymax, this.d.live_bytes[i], this.d.rss_bytes[i]);
    if (this.d.peak.time_s >= t0 && this.d.peak.time_s <= t1) ymax = Math.max(ymax, this.d.peak.bytes);
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    const X = (t) => p.l + ((t - t0) / (t1 - t0)) * this.plotW;
    const Y = (b) => p.t + ph - (b / ymax) * ph;
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    // Grid and axes.
    ctx.strokeStyle = "#e6e9ef"; ctx.fillStyle = "#5c6577"; ctx.lineWidth = 1;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const v of PMT.byteTicks(ymax, 6)) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(p.l, y); ctx.lineTo(p.l + this.plotW, y); ctx.stroke();
      ctx.fillText(PMT.fmtBytes(v), p.l - 6, y);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const v of PMT.ticks(t0, t1, Math.max(2, Math.floor(this.plotW / 110)))) {
      const x = Math.round(X(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, p.t); ctx.lineTo(x, p.t + ph); ctx.stroke();
      ctx.fillText(PMT.fmtSec(v), x, p.t + ph + 6);
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(p.l, p.t, this.plotW, ph); ctx.clip();
    // Windows first, so data draws over the shading.
    for (const win of this.d.windows) {
      const a = X(win.start_s), b = Math.max(X(win.end_s), a + 2);
      if (b < p.l || a > p.l + this.plotW) continue;
      ctx.fillStyle = "rgba(224,123,0,0.16)"; ctx.fillRect(a, p.t, b - a, ph);
      ctx.fillStyle = "rgba(224,123,0,0.7)"; ctx.fillRect(a, p.t, b - a, 3);
    }
    // Stacked series: each band between the running sum before and after it.
    const cum = new Float64Array(i1 - i0 + 1);
    this.d.stacks.forEach((s, k) => {
      ctx.beginPath();
      for (let i = i0; i <= i1; i++) {
        const y = Y(cum[i - i0] + s.values[i]);
        if (i === i0) ctx.moveTo(X(this.t[i]), y); else ctx.lineTo(X(this.t[i]), y);
      }
      for (let i = i1; i >= i0; i--) ctx.lineTo(X(this.t[i]), Y(cum[i - i0]));
      ctx.closePath();
      ctx.fillStyle = PMT.palette[k % PMT.palette.length];
      ctx.globalAlpha = 0.6; ctx.fill(); ctx.globalAlpha = 1;
      for (let i = i0; i <= i1; i++) cum[i - i0] += s.values[i];
    });
    const line = (vals, color, dash, width) => {
      ctx.beginPath();
      for (let i = i0; i <= i1; i++) {
        if (i === i0) ctx.moveTo(X(this.t[i]), Y(vals[i])); else ctx.lineTo(X(this.t[i]), Y(vals[i]));
      }
      ctx.setLineDash(dash); ctx.strokeStyle = color; ctx.lineWidth = width; ctx.stroke();
      ctx.setLineDash([]);
    };
    if (n) {
      if (this.hasRss) line(this.d.rss_bytes, "#e07b00", [5, 4], 1.6);
      line(this.d.live_bytes, "#1d2330", [], 1.8);
    }
    // The exact peak.
    const px = X(this.d.peak.time_s), py = Y(this.d.peak.bytes);
    ctx.strokeStyle = "#c62828"; ctx.setLineDash([3, 3]); ctx.lineWidth = 1.2;
    ctx.beginPath(); ctx.moveTo(px, p.t); ctx.lineTo(px, p.t + ph); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillStyle = "#c62828";
    ctx.beginPath(); ctx.arc(px, py, 4.5, 0, 2 * Math.PI); ctx.fill();
    const label = "peak " + PMT.fmtBytes(this.d.peak.bytes) + " at " + PMT.fmtSec(this.d.peak.time_s);
    ctx.font = "600 12px system-ui, sans-serif"; ctx.textBaseline = "bottom";
    ctx.textAlign = px > p.l + this.plotW - 180 ? "right" : "left";
    ctx.fillText(label, px + (ctx.textAlign === "left" ? 8 : -8), Math.max(p.t + 14, py - 6));
    if (this.hover !== null) {
      const x = Math.round(X(this.t[this.nearest(this.hover)])) + 0.5;
      ctx.strokeStyle = "rgba(29,35,48,.45)"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x, p.t); ctx.lineTo(x, p.t + ph); ctx.stroke();
    }
    ctx.restore();
    ctx.strokeStyle = "#b8bfcc"; ctx.strokeRect(p.l + 0.5, p.t + 0.5, this.plotW, ph);
    this.canvas.dataset.points = String(i1 - i0 + 1);
  }
}
PMT.Timeline = Timeline;
