/* loopwise front end: the HTML report (data inlined) and the live dashboard (data from the
 * JSON API) share this file. Every name and message from a run is put in the page with
 * textContent, never parsed as HTML. Charts are uPlot (vendored, see static/uplot/). */
(function () {
  "use strict";

  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#17becf", "#7f7f7f", "#bcbd22"];
  var AXIS_LABEL = { step: "step", epoch: "epoch", time: "wall time" };

  // -- DOM helpers (text only) ---------------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    return (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  }
  function stamp(t) {
    if (typeof t !== "number") return "-";
    var d = new Date(t * 1000);
    return d.toISOString().replace("T", " ").slice(0, 19);
  }

  // -- numbers -------------------------------------------------------------------------------
  /* Exponential moving average, debiased (the first points are not pulled toward 0);
   * nulls stay gaps. alpha = 0 returns the values as they are. */
  function ema(values, alpha) {
    if (!alpha) return values;
    var out = new Array(values.length), last = 0, weight = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || v === undefined) { out[i] = null; continue; }
      last = alpha * last + (1 - alpha) * v;
      weight = alpha * weight + (1 - alpha);
      out[i] = last / weight;
    }
    return out;
  }
  function xsOf(s, axis) {
    return axis === "time" ? s.times : axis === "epoch" ? s.epochs : s.steps;
  }
  /* Several (x, y) lines on one sorted x column, as uPlot wants: [xs, ys1, ys2, ...]. */
  function align(lines) {
    if (lines.length === 1) return [lines[0].xs.slice(), lines[0].ys.slice()];
    var seen = new Map();
    lines.forEach(function (l) { l.xs.forEach(function (x) { seen.set(x, true); }); });
    var xs = Array.from(seen.keys()).sort(function (a, b) { return a - b; });
    var index = new Map();
    xs.forEach(function (x, i) { index.set(x, i); });
    var data = [xs];
    lines.forEach(function (l) {
      var ys = new Array(xs.length).fill(null);
      for (var i = 0; i < l.xs.length; i++) ys[index.get(l.xs[i])] = l.ys[i];
      data.push(ys);
    });
    return data;
  }

  // -- charts --------------------------------------------------------------------------------
  /* lines: [{label, xs, ys}], opts: {title, axis, smoothing, onZoom, height} */
  function chart(container, lines, opts) {
    var plotted = [];
    lines.forEach(function (l, i) {
      var color = l.color || COLORS[i % COLORS.length];
      if (opts.smoothing > 0) {
        plotted.push({ label: l.label + " (raw)", xs: l.xs, ys: l.ys, stroke: color + "44",
                       width: 1 });
        plotted.push({ label: l.label, xs: l.xs, ys: ema(l.ys, opts.smoothing), stroke: color,
                       width: 2 });
      } else {
        plotted.push({ label: l.label, xs: l.xs, ys: l.ys, stroke: color, width: 1.5 });
      }
    });
    var series = [{ label: AXIS_LABEL[opts.axis] || "x" }];
    plotted.forEach(function (p) {
      series.push({ label: p.label, stroke: p.stroke, width: p.width, spanGaps: true });
    });
    var width = Math.max(320, (container.clientWidth || 640) - 8);
    var options = {
      title: opts.title, width: width, height: opts.height || 240, series: series,
      scales: { x: { time: opts.axis === "time" } },
      axes: [{ label: AXIS_LABEL[opts.axis] }, {}],
      cursor: { drag: { x: true, y: false, setScale: !opts.onZoom } },
      hooks: {}
    };
    if (opts.onZoom) {
      options.hooks.setSelect = [function (u) {
        if (u.select.width < 2) return;
        var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        opts.onZoom(lo, hi);
      }];
    }
    options.hooks.draw = [function () {
      if (window.__loopwiseFirstChart === undefined) window.__loopwiseFirstChart = performance.now();
    }];
    return new uPlot(options, align(plotted), container);
  }

  function controls(state, redraw, extra) {
    var bar = el("div", "lw-controls");
    var label = el("label", null, "x axis ");
    var select = el("select");
    select.id = "lw-axis";
    ["step", "epoch", "time"].forEach(function (a) {
      var o = el("option", null, AXIS_LABEL[a]);
      o.value = a;
      select.appendChild(o);
    });
    select.value = state.axis;
    select.addEventListener("change", function () { state.axis = select.value; redraw(); });
    label.appendChild(select);
    bar.appendChild(label);
    var sm = el("label", null, "smoothing ");
    var range = el("input");
    range.type = "range"; range.min = "0"; range.max = "0.99"; range.step = "0.01";
    range.id = "lw-smoothing";
    range.value = String(state.smoothing);
    var shown = el("span", "lw-num", state.smoothing.toFixed(2));
    range.addEventListener("input", function () {
      state.smoothing = Number(range.value);
      shown.textContent = state.smoothing.toFixed(2);
      redraw();
    });
    sm.appendChild(range);
    sm.appendChild(shown);
    bar.appendChild(sm);
    (extra || []).forEach(function (e) { bar.appendChild(e); });
    return bar;
  }

  function table(columns, rows) {
    var t = el("table", "lw-table");
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", null, c)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (v) { tr.appendChild(el("td", null, fmt(v))); });
      t.appendChild(tr);
    });
    return t;
  }
  function flatten(obj, prefix, out) {
    Object.keys(obj || {}).forEach(function (k) {
      var v = obj[k], name = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, name, out);
      else out.push([name, Array.isArray(v) ? JSON.stringify(v) : v]);
    });
    return out;
  }

  /* Metric charts: a per-step series with its epoch mean and validation value overlaid. */
  function metricGroups(keys) {
    var have = {}, used = {}, groups = [];
    keys.forEach(function (k) { have[k] = true; });
    keys.forEach(function (k) {
      if (k === "epoch" || k.indexOf("epoch/") === 0) return;
      var g = { title: k, keys: [k] };
      ["epoch/" + k, "epoch/val_" + k].forEach(function (e) {
        if (have[e]) { g.keys.push(e); used[e] = true; }
      });
      groups.push(g);
    });
    keys.forEach(function (k) {
      if (k.indexOf("epoch/") !== 0 || used[k]) return;
      var name = k.slice(6);
      if (name.indexOf("val_") === 0 && have["epoch/" + name.slice(4)]) return;
      var g = { title: name, keys: [k] };
      if (have["epoch/val_" + name]) { g.keys.push("epoch/val_" + name); used["epoch/val_" + name] = true; }
      used[k] = true;
      groups.push(g);
    });
    return groups;
  }
  function systemGroups(names) {
    var groups = {};
    names.forEach(function (n) {
      var unit = /_pct$/.test(n) ? "percent" : /_mib$/.test(n) ? "memory (MiB)" : n;
      (groups[unit] = groups[unit] || []).push(n);
    });
    return Object.keys(groups).map(function (k) { return { title: k, names: groups[k] }; });
  }

  function timeline(events, t0, t1) {
    var box = el("div", "lw-timeline");
    var span = Math.max(t1 - t0, 1e-9);
    events.forEach(function (e) {
      var dot = el("span", "lw-dot lw-" + (e.level === "error" ? "error" : e.level === "warning" ? "warning" : "info"));
      dot.style.left = (100 * Math.min(Math.max((e.time - t0) / span, 0), 1)).toFixed(3) + "%";
      dot.title = e.kind + ": " + e.message;
      box.appendChild(dot);
    });
    return box;
  }

  // -- the report ----------------------------------------------------------------------------
  function report(root, run) {
    var state = { axis: "step", smoothing: 0 };
    var head = el("header", "lw-header");
    head.appendChild(el("h1", null, run.name));
    head.appendChild(el("span", "lw-status lw-" + run.status, run.status));
    var info = run.info || {};
    head.appendChild(el("div", "lw-sub", "started " + (info.started_at || "-") + " · ended " +
      (info.ended_at || "-") + " · steps " + fmt(info.global_step) + " · host " + (info.host || "-")));
    root.appendChild(head);
    var charts = el("section", "lw-charts");
    var system = el("section", "lw-charts");
    root.appendChild(controls(state, draw));
    root.appendChild(el("h2", null, "Metrics"));
    root.appendChild(charts);
    root.appendChild(el("h2", null, "System"));
    root.appendChild(system);
    var plots = [];
    function draw() {
      plots.forEach(function (p) { p.destroy(); });
      plots = [];
      clear(charts); clear(system);
      var keys = Object.keys(run.series);
      metricGroups(keys).forEach(function (g) {
        var box = el("div", "lw-chart");
        charts.appendChild(box);
        var lines = g.keys.map(function (k) {
          var s = run.series[k];
          return { label: k, xs: xsOf(s, state.axis), ys: s.values };
        });
        plots.push(chart(box, lines, { title: g.title, axis: state.axis, smoothing: state.smoothing }));
        g.keys.forEach(function (k) {
          var s = run.series[k];
          if (s.nonfinite) {
            box.appendChild(el("p", "lw-warn", k + ": " + s.nonfinite + " non-finite value(s) " +
              "(NaN or infinity) not drawn, the first at step " + s.first_nonfinite));
          }
        });
      });
      if (!keys.length) charts.appendChild(el("p", "lw-empty", "no metrics recorded"));
      var names = Object.keys(run.system || {});
      systemGroups(names).forEach(function (g) {
        var box = el("div", "lw-chart");
        system.appendChild(box);
        var lines = g.names.map(function (n) {
          return { label: n, xs: run.system[n].times, ys: run.system[n].values };
        });
        plots.push(chart(box, lines, { title: g.title, axis: "time", smoothing: 0, height: 180 }));
      });
      if (!names.length) system.appendChild(el("p", "lw-empty", "no system samples"));
    }
    draw();
    root.appendChild(el("h2", null, "Events"));
    var events = run.events || [];
    if (events.length) {
      var t0 = info.start_time || events[0].time, t1 = info.end_time || events[events.length - 1].time;
      root.appendChild(timeline(events, t0, t1));
      root.appendChild(table(["time", "level", "kind", "step", "message"], events.map(function (e) {
        return [stamp(e.time), e.level, e.kind, e.step === undefined ? null : e.step, e.message];
      })));
    } else {
      root.appendChild(el("p", "lw-empty", "no events"));
    }
    root.appendChild(el("h2", null, "Config"));
    var cfg = flatten(run.config, "", []);
    root.appendChild(cfg.length ? table(["key", "value"], cfg) : el("p", "lw-empty", "no config"));
    root.appendChild(el("h2", null, "Epochs"));
    var et = run.epoch_table || { columns: [], rows: [] };
    root.appendChild(et.rows.length ? table(et.columns, et.rows) : el("p", "lw-empty", "no epochs recorded"));
    window.addEventListener("resize", function () { draw(); });
    window.__loopwise = { state: state, plots: function () { return plots; } };
  }

  // -- the dashboard -------------------------------------------------------------------------
  function dashboard(root) {
    var params = new URLSearchParams(window.location.search);
    var token = params.get("token");
    var state = { axis: params.get("x") || "step", smoothing: 0, metric: params.get("metric"),
                  selected: params.getAll("run"), runs: [], window: null, data: {}, keys: [] };
    if (["step", "epoch", "time"].indexOf(state.axis) < 0) state.axis = "step";
    function api(path) {
      var headers = token ? { "Authorization": "Bearer " + token } : {};
      return fetch(path, { headers: headers, credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(path + ": HTTP " + r.status);
        return r.json();
      });
    }
    var side = el("aside", "lw-side");
    var main = el("main", "lw-main");
    root.appendChild(side);
    root.appendChild(main);
    side.appendChild(el("h2", null, "Runs"));
    var list = el("table", "lw-table lw-runs");
    list.id = "lw-runs";
    side.appendChild(list);
    var metricSel = el("select");
    metricSel.id = "lw-metric";
    metricSel.addEventListener("change", function () { state.metric = metricSel.value; state.window = null; refresh(true); });
    var reset = el("button", null, "reset zoom");
    reset.addEventListener("click", function () { state.window = null; refresh(true); });
    var mlabel = el("label", null, "metric ");
    mlabel.appendChild(metricSel);
    main.appendChild(controls(state, function () { state.window = null; refresh(true); }, [mlabel, reset]));
    var msg = el("p", "lw-msg");
    main.appendChild(msg);
    var box = el("div", "lw-chart lw-big");
    box.id = "lw-chart";
    main.appendChild(box);
    main.appendChild(el("h2", null, "Events"));
    var eventsBox = el("div");
    eventsBox.id = "lw-events";
    main.appendChild(eventsBox);
    var plot = null;

    /* the latest events of the ticked runs (info-level ones only for checkpoints and status) */
    function drawEvents(byRun) {
      clear(eventsBox);
      var rows = [];
      Object.keys(byRun).forEach(function (n) {
        byRun[n].forEach(function (e) {
          if (e.level === "info" && !/checkpoint|resumed|interrupted|stopped/.test(e.kind)) return;
          rows.push([e.time, n, e.level, e.kind, e.message]);
        });
      });
      rows.sort(function (a, b) { return b[0] - a[0]; });
      if (!rows.length) { eventsBox.appendChild(el("p", "lw-empty", "no warnings, errors or checkpoints")); return; }
      eventsBox.appendChild(table(["time", "run", "level", "kind", "message"], rows.slice(0, 30).map(function (r) {
        return [stamp(r[0]), r[1], r[2], r[3], r[4]];
      })));
    }

    function drawRuns() {
      clear(list);
      var head = el("tr");
      ["", "run", "status", "steps", "started"].forEach(function (h) { head.appendChild(el("th", null, h)); });
      list.appendChild(head);
      // beside the run table of a large root (runs_table.js), only the selected runs
      var many = state.runs.length > 50 && window.LoopwiseRunsTable;
      state.runs.forEach(function (r) {
        if (many && state.selected.indexOf(r.name) < 0) return;
        var tr = el("tr");
        tr.setAttribute("data-run", r.name);
        var td = el("td"), cb = el("input");
        cb.type = "checkbox";
        cb.checked = state.selected.indexOf(r.name) >= 0;
        cb.addEventListener("change", function () {
          state.selected = state.selected.filter(function (n) { return n !== r.name; });
          if (cb.checked) state.selected.push(r.name);
          refresh(true);
        });
        td.appendChild(cb);
        tr.appendChild(td);
        tr.appendChild(el("td", "lw-name", r.name));
        tr.appendChild(el("td", "lw-status lw-" + r.status, r.status));
        tr.appendChild(el("td", "lw-steps", fmt(r.steps)));
        tr.appendChild(el("td", null, stamp(r.start_time)));
        list.appendChild(tr);
      });
    }
    function drawMetrics() {
      var keys = {};
      state.selected.forEach(function (n) {
        (state.keys[n] || []).forEach(function (k) { keys[k] = true; });
      });
      var all = Object.keys(keys);
      if (!state.metric || !keys[state.metric]) {
        state.metric = keys.loss ? "loss" : (all.filter(function (k) { return k !== "epoch"; })[0] || null);
      }
      clear(metricSel);
      all.forEach(function (k) {
        var o = el("option", null, k);
        o.value = k;
        metricSel.appendChild(o);
      });
      if (state.metric) metricSel.value = state.metric;
    }
    function series(name) {
      var q = "points=2000&x=" + state.axis;
      if (state.window) q += "&start=" + state.window[0] + "&end=" + state.window[1];
      return api("/api/runs/" + encodeURIComponent(name) + "/series/" +
                 encodeURIComponent(state.metric) + "?" + q);
    }
    function drawChart() {
      var lines = state.selected.filter(function (n) { return state.data[n]; }).map(function (n) {
        var s = state.data[n];
        return { label: n, xs: xsOf(s, state.axis), ys: s.values,
                 color: window.LoopwiseColors ? window.LoopwiseColors.colorOf(n) : null };
      });
      if (plot) { plot.destroy(); plot = null; }
      clear(box);
      if (!lines.length) { msg.textContent = state.selected.length ? "no data for this metric" : "select runs on the left"; return; }
      msg.textContent = "";
      plot = chart(box, lines, {
        title: state.metric, axis: state.axis, smoothing: state.smoothing, height: 420,
        onZoom: function (lo, hi) { state.window = [lo, hi]; refresh(true); }
      });
      if (state.window) plot.setScale("x", { min: state.window[0], max: state.window[1] });
      window.__loopwise.plot = plot;
    }
    var busy = false;
    function refresh(force) {
      if (busy && !force) return;
      busy = true;
      api("/api/runs").then(function (runs) {
        var before = {};
        state.runs.forEach(function (r) { before[r.name] = r.steps + r.status; });
        state.runs = runs;
        if (!state.selected.length && runs.length) state.selected = [runs[0].name];
        var names = runs.map(function (r) { return r.name; });
        state.selected = state.selected.filter(function (n) { return names.indexOf(n) >= 0; });
        drawRuns();
        var changed = force || runs.some(function (r) {
          return state.selected.indexOf(r.name) >= 0 && before[r.name] !== r.steps + r.status;
        });
        if (!changed) return null;
        return Promise.all(state.selected.map(function (n) {
          return api("/api/runs/" + encodeURIComponent(n)).then(function (d) { state.keys[n] = d.keys; });
        })).then(function () {
          drawMetrics();
          if (!state.metric) { state.data = {}; drawChart(); return null; }
          var events = {};
          var eventsDone = Promise.all(state.selected.map(function (n) {
            return api("/api/runs/" + encodeURIComponent(n) + "/events").then(function (ev) { events[n] = ev; });
          })).then(function () { drawEvents(events); });
          var chartDone = Promise.all(state.selected.map(function (n) {
            if ((state.keys[n] || []).indexOf(state.metric) < 0) { delete state.data[n]; return null; }
            return series(n).then(function (s) { state.data[n] = s; });
          })).then(drawChart);
          return Promise.all([chartDone, eventsDone]);
        });
      }).catch(function (e) { msg.textContent = String(e.message || e); })
        .then(function () { busy = false; });
    }
    window.__loopwise = { state: state, refresh: refresh, redraw: drawChart,
                          select: function (names) { state.selected = names.slice(); refresh(true); } };
    refresh(true);
    setInterval(function () { refresh(false); }, 1500);
  }

  function start() {
    var root = document.getElementById("lw-app");
    if (!root) return;
    var data = document.getElementById("lw-data");
    if (data) report(root, JSON.parse(data.textContent));
    else dashboard(root);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
