// Events-per-second sparkline: one bucket per second over the last minute, drawn on a canvas.

export class Sparkline {
  constructor(canvas, label, { seconds = 60 } = {}) {
    this.canvas = canvas;
    this.label = label;
    this.buckets = new Array(seconds).fill(0);
    this.current = 0;
    this.timer = setInterval(() => this.tick(), 1000);
    this.draw();
  }

  add(n) {
    this.current += n;
  }

  tick() {
    this.buckets.push(this.current);
    this.buckets.shift();
    this.current = 0;
    this.label.textContent = `${this.buckets[this.buckets.length - 1]} ev/s`;
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 120;
    const hgt = c.clientHeight || 28;
    if (c.width !== Math.round(w * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const max = Math.max(4, ...this.buckets);
    const n = this.buckets.length;
    const x = (i) => (i / (n - 1)) * (w - 2) + 1;
    const y = (v) => hgt - 2 - (v / max) * (hgt - 5);
    const style = getComputedStyle(c);
    const line = style.getPropertyValue("--spark-line").trim() || "#4fc3f7";
    const fill = style.getPropertyValue("--spark-fill").trim() || "rgba(79,195,247,.18)";
    g.beginPath();
    g.moveTo(x(0), hgt);
    this.buckets.forEach((v, i) => g.lineTo(x(i), y(v)));
    g.lineTo(x(n - 1), hgt);
    g.closePath();
    g.fillStyle = fill;
    g.fill();
    g.beginPath();
    this.buckets.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.strokeStyle = line;
    g.lineWidth = 1.25;
    g.stroke();
  }
}
