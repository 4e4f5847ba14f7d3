// The flame graph (icicle) of what was live at the peak: root at the top, callees below,
// width proportional to bytes. Click a frame to zoom into it, click the root to zoom out.
// The tree arrives pruned (nodes under 0.1% of the peak merged), so it is small.
"use strict";

class Flame {
  constructor(canvas) {
    this.canvas = canvas;
    this.rowH = 20;
    this.maxRows = 28;  // deeper frames show when the user zooms into a caller
    this.rects = [];
    canvas.addEventListener("mousemove", (ev) => this.onMove(ev));
    canvas.addEventListener("mouseleave", () => { PMT.tooltip.hide(); this.hot = null; this.draw(); });
    canvas.addEventListener("click", (ev) => {
      const r = this.hit(ev);
      if (!r) return;
      this.focus = r.node === this.focus && r.parent ? r.parent : r.node;
      this.draw();
    });
    window.addEventListener("resize", () => this.draw());
  }

  show(tree) {
    this.root = tree;
    this.focus = tree;
    this.parents = new Map();
    const walk = (n, parent, depth) => {
      this.parents.set(n, parent);
      let d = depth;
      for (const c of n.c || []) d = Math.max(d, walk(c, n, depth + 1));
      return d;
    };
    this.depth = walk(tree, null, 0) + 1;
    this.draw();
  }

  label(n) {
    if (n === this.root) return "all: " + PMT.fmtBytes(n.v) + " live at the peak";
    return n.s ? n.f + "  " + PMT.shortPath(n.s) + ":" + n.l : n.f;
  }

  color(n) {
    if (!n.s) return n.f.charAt(0) === "(" ? "#c9ced8" : "#a7b3c8";
    let h = 0;
    for (let i = 0; i < n.s.length; i++) h = (h * 31 + n.s.charCodeAt(i)) >>> 0;
    const hue = 8 + (h % 40), light = 58 + ((h >> 8) % 14);
    return "hsl(" + hue + ",78%," + light + "%)";
  }

  draw() {
    if (!this.root) return;
    const height = Math.max(60, Math.min(this.depth, this.maxRows) * this.rowH + 8);
    const { ctx, w } = PMT.fitCanvas(this.canvas, height);
    ctx.clearRect(0, 0, w, height);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    this.rects = [];
    // Ancestors of the focus span the full width; its subtree scales to it.
    const chain = [];
    for (let n = this.focus; n; n = this.parents.get(n)) chain.unshift(n);
    chain.forEach((n, depth) => this.box(ctx, n, depth, 0, w, true));
    const total = this.focus.v || 1;
    const layout = (n, depth, x, width) => {
      if (depth >= this.maxRows) return;
      let cx = x;
      for (const c of n.c || []) {
        const cw = (c.v / total) * w;
        if (cw >= 0.5) {
          this.box(ctx, c, depth, cx, cw, false, n);
          layout(c, depth + 1, cx, cw);
        }
        cx += cw;
      }
    };
    layout(this.focus, chain.length, 0, w);
    this.canvas.dataset.nodes = String(this.rects.length);
  }

  box(ctx, n, depth, x, width, ancestor, parent) {
    const y = depth * this.rowH + 2;
    ctx.fillStyle = ancestor && n !== this.focus ? "#dde1e8" : this.color(n);
    if (n === this.root) ctx.fillStyle = "#b9c3d6";
    ctx.fillRect(x + 0.5, y, Math.max(width - 1, 0.5), this.rowH - 2);
    if (this.hot === n) { ctx.strokeStyle = "#1d2330"; ctx.lineWidth = 1.5; ctx.strokeRect(x + 1, y + 0.5, width - 2, this.rowH - 3); }
    if (width > 40) {
      ctx.save();
      ctx.beginPath(); ctx.rect(x, y, width - 4, this.rowH); ctx.clip();
      ctx.fillStyle = "#1d2330";
      ctx.fillText(this.label(n), x + 5, y + this.rowH / 2 - 1);
      ctx.restore();
    }
    this.rects.push({ x, y, w: width, node: n, parent: parent || this.parents.get(n) });
  }

  hit(ev) {
    const r = this.canvas.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    for (let i = this.rects.length - 1; i >= 0; i--) {
      const b = this.rects[i];
      if (x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + this.rowH) return b;
    }
    return null;
  }

  onMove(ev) {
    const r = this.hit(ev);
    const node = r ? r.node : null;
    if (node !== this.hot) { this.hot = node; this.draw(); }
    if (!node) { PMT.tooltip.hide(); return; }
    const share = this.root.v ? (100 * node.v) / this.root.v : 0;
    const rows = [{ label: "live at the peak", value: PMT.fmtBytes(node.v) },
      { label: "share of the peak", value: share.toFixed(1) + " %" }];
    if (node.s) rows.push({ label: "file", value: node.s + ":" + node.l });
    PMT.tooltip.show(ev.clientX, ev.clientY, node === this.root ? "all stacks" : node.f, rows);
  }
}
PMT.Flame = Flame;

PMT.shortPath = function (p) {
  const parts = String(p).split("/");
  return parts.length <= 3 ? p : "…/" + parts.slice(-2).join("/");
};
