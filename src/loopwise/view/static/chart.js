/* loopwise front end: one chart (a card around uPlot) as the report and the dashboard draw it.
 * Ticks and legend go through LW.fmt/LW.ticks; NaN and infinity (null in the data) are gaps
 * with a marker at their steps; points a line lacks when several share one x column are
 * undefined, which uPlot bridges. Per card: log scale, "ignore outliers", events marked as
 * vertical lines, keyboard zoom (+ - arrows, 0 or Escape to reset) and a zoom that survives a
 * redraw (smoothing, new data). */
(function (LW) {
  "use strict";

  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#17becf", "#7f7f7f", "#bcbd22"];
  var AXIS_LABEL = { step: "step", epoch: "epoch", time: "wall time (UTC)" };
  var MARKS = { health: "#e8a317", checkpoint: "#6a9fd4", best: "#2ca02c", resume: "#9467bd",
                error: "#d62728" };
  var NAN_COLOR = "#d62728";
  var MAX_MARKS = 300;
  var STEP_INCRS = [];
  for (var e10 = 1; e10 <= 1e15; e10 *= 10) STEP_INCRS.push(e10, 2 * e10, 5 * e10);

  /* Exponential moving average, debiased (the first points are not pulled toward 0);
   * null (NaN) and undefined stay as they are. alpha = 0 returns the values as they are. */
  function ema(values, alpha) {
    if (!alpha) return values;
    var out = new Array(values.length), last = 0, weight = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || v === undefined) { out[i] = v; continue; }
      last = alpha * last + (1 - alpha) * v;
      weight = alpha * weight + (1 - alpha);
      out[i] = last / weight;
    }
    return out;
  }
  function xsOf(s, axis) {
    return axis === "time" ? s.times : axis === "epoch" ? s.epochs : s.steps;
  }
  /* Several (x, y) lines on one sorted x column, as uPlot wants: [xs, ys1, ys2, ...]; a line
   * without a point at some x has undefined there (bridged), its NaN stays null (a gap). */
  function align(lines) {
    if (lines.length === 1) return [lines[0].xs.slice(), lines[0].ys.slice()];
    var seen = new Map();
    lines.forEach(function (l) { l.xs.forEach(function (x) { seen.set(x, true); }); });
    var xs = Array.from(seen.keys()).sort(function (a, b) { return a - b; });
    var index = new Map();
    xs.forEach(function (x, i) { index.set(x, i); });
    var data = [xs];
    lines.forEach(function (l) {
      var ys = new Array(xs.length).fill(undefined);
      for (var i = 0; i < l.xs.length; i++) ys[index.get(l.xs[i])] = l.ys[i];
      data.push(ys);
    });
    return data;
  }
  function dark() {
    return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  }
  /* Which events are marked on charts, and how: null for the others. */
  function markKind(e) {
    if (/^health\./.test(e.kind)) return "health";
    if (/^checkpoint_saved$/.test(e.kind)) return "checkpoint";
    if (/^best/.test(e.kind)) return "best";
    if (/resumed$/.test(e.kind)) return "resume";
    return null;
  }
  function quantile(sorted, q) {
    if (!sorted.length) return null;
    var pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }
  function legendValue(u, v, si, idx) {
    if (idx === null || idx === undefined) return "--";
    if (v === null) return "NaN/inf";
    return v === undefined ? "-" : LW.fmt(v);
  }
  function measure(values) {
    var m = 0;
    (values || []).forEach(function (v) { m = Math.max(m, String(v).length); });
    return Math.max(40, m * 7 + 20);
  }

  /* A chart card in `parent`: {title, height, toggles (log / ignore outliers; default on)}. */
  function Card(parent, spec) {
    var self = this;
    this.spec = spec;
    this.log = false;
    this.outliers = false;
    this.zoom = null;
    this.u = null;
    this.box = LW.el("div", "lw-chart");
    this.box.setAttribute("data-title", spec.title);
    if (spec.toggles !== false) {
      var bar = LW.el("div", "lw-card-bar");
      [["log", "log scale"], ["outliers", "ignore outliers"]].forEach(function (t) {
        var label = LW.el("label", "lw-toggle lw-" + t[0]);
        var cb = LW.el("input");
        cb.type = "checkbox";
        cb.addEventListener("change", function () { self[t[0]] = cb.checked; self.redraw(); });
        label.appendChild(cb);
        label.appendChild(document.createTextNode(" " + t[1]));
        bar.appendChild(label);
      });
      this.box.appendChild(bar);
    }
    this.plotBox = LW.el("div", "lw-plot");
    this.box.appendChild(this.plotBox);
    this.notes = LW.el("div", "lw-notes");
    this.box.appendChild(this.notes);
    this.extra = LW.el("div", "lw-notes");  // the caller's notes, kept across redraws
    this.box.appendChild(this.extra);
    parent.appendChild(this.box);
    live.push(this);
  }
  /* every card on the page: redrawn in the new colours when the system's dark mode changes */
  var live = [];
  if (window.matchMedia) {
    var scheme = window.matchMedia("(prefers-color-scheme: dark)");
    if (scheme.addEventListener) {
      scheme.addEventListener("change", function () {
        live.forEach(function (c) { c.sig = null; c.redraw(); });
      });
    }
  }
  Card.prototype.destroy = function () {
    var self = this;
    live = live.filter(function (c) { return c !== self; });
    if (this.u) { this.u.destroy(); this.u = null; }
    if (this.box.parentNode) this.box.parentNode.removeChild(this.box);
  };
  Card.prototype.redraw = function () { if (this.lines) this.draw(this.lines, this.opts); };
  Card.prototype.resize = function () {
    if (this.u) this.u.setSize({ width: this.width(), height: this.u.height });
  };
  Card.prototype.width = function () {
    return Math.max(200, (this.box.clientWidth || this.plotBox.clientWidth || 640) - 10);
  };
  /* lines: [{label, xs, ys, perStep, role ("min"/"max": a band around the line before)}];
   * opts: {axis, smoothing, marks: [{x, kind, text}], onZoom(lo, hi), onReset()} */
  Card.prototype.draw = function (lines, opts) {
    var self = this, spec = this.spec;
    this.lines = lines;
    this.opts = opts;
    var ink = dark() ? "#c8c8c8" : "#222", grid = dark() ? "#3a3a3a" : "#e6e6e6";
    var plotted = [], bands = [], color = null, ci = -1, nonpositive = false;
    lines.forEach(function (l) {
      var ys = l.ys;
      if (self.log) {
        ys = ys.map(function (v) {
          if (typeof v === "number" && v <= 0) { nonpositive = true; return undefined; }
          return v;
        });
      }
      if (!l.role || color === null) { ci++; color = l.color || COLORS[ci % COLORS.length]; }
      if (l.role) {
        plotted.push({ label: l.label, xs: l.xs, ys: ys, stroke: color + "66", width: 1, role: l.role });
        var here = plotted.length, sib = -1;
        for (var i = plotted.length - 2; i >= 0 && plotted[i].role; i--) {
          if (plotted[i].role !== l.role) sib = i + 1;
        }
        if (sib > 0) bands.push({ series: l.role === "max" ? [here, sib] : [sib, here], fill: color + "22" });
      } else if (l.perStep && opts.smoothing > 0) {
        plotted.push({ label: l.label + " (raw)", xs: l.xs, ys: ys, stroke: color + "44", width: 1, nan: true });
        plotted.push({ label: l.label, xs: l.xs, ys: ema(ys, opts.smoothing), stroke: color, width: 2 });
      } else {
        plotted.push({ label: l.label, xs: l.xs, ys: ys, stroke: color, width: 1.5, nan: true });
      }
    });
    var data = align(plotted);
    var axis = opts.axis;
    var series = [{ label: AXIS_LABEL[axis] || "x",
                    value: function (u, v) { return axis === "time" ? LW.stamp(v) : LW.fmt(v); } }];
    plotted.forEach(function (p) {
      series.push({ label: p.label, stroke: p.stroke, width: p.width, spanGaps: false,
                    value: legendValue, points: { show: false } });
    });
    var range = null;
    if (this.outliers) {
      var finite = [];
      for (var s = 1; s < data.length; s++) {
        if (plotted[s - 1].role) continue;
        data[s].forEach(function (v) { if (typeof v === "number" && isFinite(v)) finite.push(v); });
      }
      finite.sort(function (a, b) { return a - b; });
      var lo = quantile(finite, 0.02), hi = quantile(finite, 0.98);
      if (lo !== null) {
        var pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
        range = [self.log ? Math.max(lo - pad, lo / 2) : lo - pad, hi + pad];
      }
    }
    var yScale = self.log ? { distr: 3, log: 10 } : {};
    if (range) yScale.range = function () { return range.slice(); };
    var marks = (opts.marks || []).slice(0, MAX_MARKS);
    var nanXs = [];
    plotted.forEach(function (p, i) {
      if (!p.nan) return;
      var ys = data[i + 1];
      for (var j = 0; j < ys.length && nanXs.length < MAX_MARKS; j++) {
        if (ys[j] === null) nanXs.push({ x: data[0][j], label: p.label });
      }
    });
    this.marks = marks;
    this.nanXs = nanXs;
    this.building = true;
    var sig = JSON.stringify([spec.title, spec.height, axis, self.log, self.outliers, !!opts.onZoom,
                              bands, plotted.map(function (p) { return [p.label, p.stroke, p.width]; })]);
    if (this.u && this.sig === sig && !range) {  // same chart, new points: keep it, and its zoom
      this.u.setData(data, !(opts.window || this.zoom));
      this.afterDraw(axis, opts, nonpositive);
      return this.u;
    }
    this.sig = sig;
    var options = {
      title: spec.title, width: this.width(), height: spec.height || 240, series: series,
      bands: bands,
      padding: [null, 34, null, null],  // room for the last x label
      scales: { x: { time: axis === "time" }, y: yScale },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      axes: [
        { label: AXIS_LABEL[axis], stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid },
          space: function (u, ai, lo, hi) {  // room for the longest label, so none overlap
            if (axis === "time") return 70;
            return Math.max(String(LW.fmt(Math.max(Math.abs(lo), Math.abs(hi)))).length * 8 + 24, 50);
          },
          incrs: axis === "step" ? STEP_INCRS : undefined,  // steps are whole numbers
          values: function (u, splits, ai, space, incr) {
            return axis === "time" ? LW.timeTicks(splits, incr) : LW.ticks(splits);
          } },
        { stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid },
          values: function (u, splits) { return self.log ? splits.map(LW.fmt) : LW.ticks(splits); },
          size: function (u, values) { return measure(values); } }
      ],
      cursor: { drag: { x: true, y: false, setScale: !opts.onZoom } },
      hooks: {
        setSelect: [function (u) {
          var o = self.opts;
          if (!o.onZoom || u.select.width < 2) return;
          var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          o.onZoom(lo, hi);
        }],
        setScale: [function (u, key) {
          if (key !== "x" || self.building || self.opts.onZoom) return;
          var xs = u.data[0], full = xs.length && u.scales.x.min <= xs[0] && u.scales.x.max >= xs[xs.length - 1];
          self.zoom = full ? null : [u.scales.x.min, u.scales.x.max];
        }],
        draw: [function (u) {
          if (window.__loopwiseFirstChart === undefined) window.__loopwiseFirstChart = performance.now();
          paint(u, self.marks, self.nanXs);
          place(u, self.markEls);
        }]
      }
    };
    if (this.u) this.u.destroy();
    LW.clear(this.plotBox);
    var u = new uPlot(options, data, this.plotBox);
    this.u = u;
    var title = u.root.querySelector(".u-title");
    if (title) title.title = spec.title;
    u.root.querySelectorAll(".u-legend th").forEach(function (th) { th.title = th.textContent; });
    keys(u, self);
    this.afterDraw(axis, opts, nonpositive);
    return u;
  };
  /* Event marks and NaN markers as hover targets over the plot, the notes, the zoom. */
  Card.prototype.afterDraw = function (axis, opts, nonpositive) {
    var self = this, u = this.u;
    (this.markEls || []).forEach(function (m) { m.el.remove(); });
    this.markEls = [];
    this.marks.forEach(function (m) {
      var e = LW.el("span", "lw-mark lw-mark-" + m.kind);
      e.title = m.text;
      e.setAttribute("data-x", String(m.x));
      e.style.background = MARKS[m.kind] || MARKS.error;
      u.over.appendChild(e);
      self.markEls.push({ el: e, x: m.x });
    });
    this.nanXs.forEach(function (n) {
      var e = LW.el("span", "lw-nan", "\u00d7");
      e.title = n.label + ": NaN or infinity at " + (AXIS_LABEL[axis] || "x") + " " + LW.fmt(n.x);
      e.setAttribute("data-x", String(n.x));
      u.over.appendChild(e);
      self.markEls.push({ el: e, x: n.x });
    });
    LW.clear(this.notes);
    if (nonpositive) this.notes.appendChild(LW.el("p", "lw-warn", "values <= 0 are not drawn on the log scale"));
    if (opts.window) u.setScale("x", { min: opts.window[0], max: opts.window[1] });
    else if (this.zoom) u.setScale("x", { min: this.zoom[0], max: this.zoom[1] });
    place(u, this.markEls);
    this.building = false;
  };
  function place(u, els) {
    if (!els) return;
    els.forEach(function (m) {
      var left = u.valToPos(m.x, "x");
      var inside = isFinite(left) && left >= 0 && left <= u.over.clientWidth + 0.5;
      m.el.style.display = inside ? "" : "none";
      m.el.style.left = left + "px";
    });
  }
  /* Event lines (dashed, coloured by kind) and a red tick under each NaN, on the canvas. */
  function paint(u, marks, nanXs) {
    var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = ratio;
    ctx.setLineDash([4 * ratio, 3 * ratio]);
    marks.forEach(function (m) {
      var x = u.valToPos(m.x, "x", true);
      if (!isFinite(x) || x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) return;
      ctx.strokeStyle = MARKS[m.kind] || MARKS.error;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
    });
    ctx.setLineDash([]);
    ctx.fillStyle = NAN_COLOR;
    nanXs.forEach(function (n) {
      var x = u.valToPos(n.x, "x", true);
      if (!isFinite(x) || x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) return;
      ctx.beginPath();
      ctx.moveTo(x, top + h - 8 * ratio); ctx.lineTo(x - 4 * ratio, top + h); ctx.lineTo(x + 4 * ratio, top + h);
      ctx.closePath(); ctx.fill();
    });
    ctx.restore();
  }
  /* Keyboard: the chart is focusable; + and - zoom around the middle, arrows pan, 0 / Escape
   * reset. */
  function keys(u, card) {
    u.root.tabIndex = 0;
    u.root.setAttribute("role", "img");
    u.root.setAttribute("aria-label", card.spec.title + " chart: + and - zoom, arrows pan, 0 resets");
    u.root.addEventListener("keydown", function (ev) {
      var xs = u.data[0], opts = card.opts;
      if (!xs.length) return;
      var min = u.scales.x.min, max = u.scales.x.max, span = max - min, lo = null, hi = null;
      if (ev.key === "+" || ev.key === "=") { lo = min + span / 4; hi = max - span / 4; }
      else if (ev.key === "-") { lo = min - span / 2; hi = max + span / 2; }
      else if (ev.key === "ArrowLeft") { lo = min - span / 4; hi = max - span / 4; }
      else if (ev.key === "ArrowRight") { lo = min + span / 4; hi = max + span / 4; }
      else if (ev.key === "0" || ev.key === "Escape") {
        ev.preventDefault();
        card.zoom = null;
        if (opts.onReset) opts.onReset();
        else u.setScale("x", { min: xs[0], max: xs[xs.length - 1] });
        return;
      } else return;
      ev.preventDefault();
      lo = Math.max(lo, xs[0]); hi = Math.min(hi, xs[xs.length - 1]);
      if (!(hi > lo)) return;
      if (opts.onZoom) opts.onZoom(lo, hi);
      else u.setScale("x", { min: lo, max: hi });
    });
  }

  /* The x axis and smoothing controls; onAxis and onSmoothing are called after the change. */
  function controls(state, onAxis, onSmoothing, extra) {
    var bar = LW.el("div", "lw-controls");
    var label = LW.el("label", null, "x axis ");
    var select = LW.el("select");
    select.id = "lw-axis";
    ["step", "epoch", "time"].forEach(function (a) {
      var o = LW.el("option", null, AXIS_LABEL[a]);
      o.value = a;
      select.appendChild(o);
    });
    select.value = state.axis;
    select.addEventListener("change", function () { state.axis = select.value; onAxis(); });
    label.appendChild(select);
    bar.appendChild(label);
    var sm = LW.el("label", null, "smoothing ");
    var range = LW.el("input");
    range.type = "range"; range.min = "0"; range.max = "0.99"; range.step = "0.01";
    range.id = "lw-smoothing";
    range.value = String(state.smoothing);
    var shown = LW.el("span", "lw-num", state.smoothing.toFixed(2));
    range.addEventListener("input", function () {
      state.smoothing = Number(range.value);
      shown.textContent = state.smoothing.toFixed(2);
      onSmoothing();
    });
    sm.appendChild(range);
    sm.appendChild(shown);
    bar.appendChild(sm);
    (extra || []).forEach(function (e) { bar.appendChild(e); });
    return bar;
  }

  /* The fractional epoch of a step (as loopwise.view.payload.epoch_axis). */
  function epochOf(step, ends, last) {
    if (!ends || !ends.length) return step / Math.max(last || 1, 1);
    var prev = 0;
    for (var i = 0; i < ends.length; i++) {
      if (step <= ends[i] || i === ends.length - 1) {
        var len = (ends[i] - prev) || 1;
        return i + (step - prev) / len;
      }
      prev = ends[i];
    }
    return ends.length;
  }
  function interp(x, xs, ys) {
    if (!xs || !xs.length) return null;
    if (x <= xs[0]) return ys[0];
    for (var i = 1; i < xs.length; i++) {
      if (x <= xs[i]) {
        var f = (x - xs[i - 1]) / ((xs[i] - xs[i - 1]) || 1);
        return ys[i - 1] + f * (ys[i] - ys[i - 1]);
      }
    }
    return ys[ys.length - 1];
  }
  /* Events as chart marks on `axis`: events without a step get one from their time through
   * `ref` (a series with steps and times); ends: the steps where epochs ended. */
  function marksOf(events, axis, ref, ends) {
    var out = [], last = ref && ref.steps.length ? ref.steps[ref.steps.length - 1] : 1;
    (events || []).forEach(function (e) {
      var kind = markKind(e);
      if (!kind) return;
      var step = typeof e.step === "number" ? e.step : ref ? interp(e.time, ref.times, ref.steps) : null;
      var x = axis === "time" ? (typeof e.time === "number" ? e.time : step !== null && ref ? interp(step, ref.steps, ref.times) : null)
        : step === null ? null : axis === "epoch" ? epochOf(step, ends, last) : step;
      if (x === null || x === undefined) return;
      out.push({ x: x, kind: kind, text: e.kind + (step !== null ? " at step " + LW.fmt(Math.round(step)) : "") + ": " + e.message });
    });
    return out;
  }

  LW.COLORS = COLORS;
  LW.AXIS_LABEL = AXIS_LABEL;
  LW.ema = ema;
  LW.xsOf = xsOf;
  LW.align = align;
  LW.Card = Card;
  LW.controls = controls;
  LW.marksOf = marksOf;
  LW.markKind = markKind;
})(window.LW = window.LW || {});
