/* loopwise front end, the pages: the HTML report (data inlined, drawn by LW.runView), the
 * dashboard's home (the runs, one metric across the ticked runs) and its run page
 * (?view=run&run=NAME: what the report shows, live). Loaded last; format.js, dom.js, chart.js
 * and runview.js come before it. Charts are uPlot (vendored, see static/uplot/). */
(function (LW) {
  "use strict";

  var el = LW.el, clear = LW.clear, fmt = LW.fmt, stamp = LW.stamp;
  var POLL_MS = 1500;

  function report(root, run) {
    var view = LW.runView(root, run, {});
    window.__loopwise = { state: view.state, plots: view.plots, view: view };
  }

  function connection() {
    var params = new URLSearchParams(window.location.search);
    var token = params.get("token");
    return {
      params: params,
      token: token,
      api: function (path) {
        var headers = token ? { "Authorization": "Bearer " + token } : {};
        return fetch(path, { headers: headers, credentials: "same-origin" }).then(function (r) {
          if (!r.ok) throw new Error(path + ": HTTP " + r.status);
          return r.json();
        });
      },
      /* a link inside the dashboard, the token carried along */
      href: function (path, query) {
        var q = new URLSearchParams(query || {});
        if (token) q.set("token", token);
        var text = q.toString();
        return path + (text ? "?" + text : "");
      }
    };
  }

  /* "No runs yet" with how to start one. */
  function emptyRoot(where) {
    var box = el("div", "lw-start");
    box.id = "lw-start";
    box.appendChild(el("p", null, where && !where.exists
      ? "Waiting for " + where.path + " to be created: runs appear here as soon as they start."
      : "No runs in " + (where ? where.path : "this folder") + " yet. Start one:"));
    var at = JSON.stringify(where ? where.path : "runs");
    box.appendChild(el("pre", null,
      "from loopwise import TrainingMonitor\n\n" +
      "monitor = TrainingMonitor(loader, root=" + at + ")\n" +
      "for batch in monitor:\n" +
      "    loss = ...  # your training step\n" +
      "    monitor.log({\"loss\": loss})"));
    return box;
  }

  // -- the dashboard's home: the runs, and one metric across the ticked ones -------------------
  function dashboard(root, conn) {
    var params = conn.params;
    var state = { axis: params.get("x") || "step", smoothing: 0, metric: params.get("metric"),
                  selected: params.getAll("run"), runs: [], window: null, data: {}, keys: {},
                  ends: {}, events: {} };
    if (["step", "epoch", "time"].indexOf(state.axis) < 0) state.axis = "step";
    var api = conn.api;
    var side = el("aside", "lw-side");
    var main = el("main", "lw-main");
    root.appendChild(side);
    root.appendChild(main);
    side.appendChild(el("h2", null, "Runs"));
    var startBox = el("div");
    side.appendChild(startBox);
    var list = el("table", "lw-table lw-runs");
    list.id = "lw-runs";
    var head = el("tr");
    ["", "run", "status", "steps", "started (UTC)"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    list.appendChild(head);
    side.appendChild(list);
    var metricSel = el("select");
    metricSel.id = "lw-metric";
    metricSel.addEventListener("change", function () { state.metric = metricSel.value; state.window = null; refresh(true); });
    var reset = el("button", null, "reset zoom");
    reset.addEventListener("click", function () { state.window = null; refresh(true); });
    var mlabel = el("label", "lw-metric-label", "metric ");
    mlabel.appendChild(metricSel);
    main.appendChild(LW.controls(state, function () { state.window = null; refresh(true); },
                                 drawChart, [mlabel, reset]));
    var msg = el("p", "lw-msg");
    main.appendChild(msg);
    var card = new LW.Card(main, { title: "", height: 420 });
    card.box.id = "lw-chart";
    card.box.classList.add("lw-big");
    main.appendChild(el("h2", null, "Events"));
    var eventsBox = el("div");
    eventsBox.id = "lw-events";
    main.appendChild(eventsBox);

    /* the latest events of the ticked runs (info-level ones only for checkpoints and status) */
    function drawEvents(byRun) {
      clear(eventsBox);
      var rows = [];
      Object.keys(byRun).forEach(function (n) {
        byRun[n].forEach(function (e) {
          if (e.level === "info" && !/checkpoint|resumed|interrupted|stopped|best/.test(e.kind)) return;
          rows.push([e.time, n, e.level, e.kind, e.message]);
        });
      });
      rows.sort(function (a, b) { return b[0] - a[0]; });
      if (!rows.length) { eventsBox.appendChild(el("p", "lw-empty", "no warnings, errors or checkpoints")); return; }
      eventsBox.appendChild(LW.table(["time (UTC)", "run", "level", "kind", "message"], rows.slice(0, 30).map(function (r) {
        return [stamp(r[0]).replace(" UTC", ""), r[1], r[2], r[3], r[4]];
      }), ["message"]));
    }

    /* rows are kept and updated in place: a focused checkbox keeps its focus */
    function drawRuns() {
      var rows = {};
      list.querySelectorAll("tr[data-run]").forEach(function (tr) { rows[tr.getAttribute("data-run")] = tr; });
      var keep = {};
      // beside the run table of a large root (runs_table.js), only the selected runs
      var many = state.runs.length > 50 && window.LoopwiseRunsTable;
      state.runs.filter(function (r) {
        return !many || state.selected.indexOf(r.name) >= 0;
      }).forEach(function (r, i) {
        keep[r.name] = true;
        var tr = rows[r.name];
        if (!tr) {
          tr = el("tr");
          tr.setAttribute("data-run", r.name);
          var td = el("td"), cb = el("input");
          cb.type = "checkbox";
          cb.setAttribute("aria-label", "show " + r.name);
          cb.addEventListener("change", function () {
            state.selected = state.selected.filter(function (n) { return n !== r.name; });
            if (cb.checked) state.selected.push(r.name);
            refresh(true);
          });
          td.appendChild(cb);
          tr.appendChild(td);
          var name = el("td", "lw-name"), a = el("a", null, r.name);
          a.href = conn.href("./", { view: "run", run: r.name });
          a.title = r.name;
          name.appendChild(a);
          tr.appendChild(name);
          var state_ = el("td", "lw-state");
          state_.appendChild(el("span", "lw-status"));
          tr.appendChild(state_);
          tr.appendChild(el("td", "lw-steps"));
          tr.appendChild(el("td", "lw-started"));
        }
        var cells = tr.children;
        cells[0].firstChild.checked = state.selected.indexOf(r.name) >= 0;
        var badge = cells[2].firstChild;
        setText(badge, r.status);
        if (badge.className !== "lw-status lw-" + r.status) badge.className = "lw-status lw-" + r.status;
        var damaged = r.damaged || [], mark = cells[1].querySelector(".lw-damaged-mark");
        if (damaged.length && !mark) cells[1].appendChild(mark = el("span", "lw-damaged-mark", "damaged"));
        if (!damaged.length && mark) mark.remove();
        if (damaged.length) mark.title = "failed their checksum, not shown:\n" + damaged.join("\n");
        setText(cells[3], fmt(r.steps));
        setText(cells[4], stamp(r.start_time).replace(" UTC", ""));
        var at = list.children[i + 1];
        if (at !== tr) list.insertBefore(tr, at || null);
      });
      Object.keys(rows).forEach(function (n) { if (!keep[n]) rows[n].remove(); });
    }
    function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
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
        o.title = k;
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
        return { label: n, xs: LW.xsOf(s, state.axis), ys: s.values,
                 perStep: String(state.metric).indexOf("epoch/") !== 0,
                 color: window.LoopwiseColors ? window.LoopwiseColors.colorOf(n) : null };
      });
      if (!lines.length) {
        msg.textContent = state.selected.length ? "no data for this metric" : "select runs on the left";
        card.box.style.display = "none";
        return;
      }
      msg.textContent = "";
      card.box.style.display = "";
      card.spec.title = state.metric;
      card.box.setAttribute("data-title", state.metric);
      var marks = [];
      state.selected.forEach(function (n) {
        var several = state.selected.length > 1;
        LW.marksOf((state.events[n] || []).map(function (e) {
          var step = e.data && typeof e.data.step === "number" ? e.data.step : undefined;
          return { time: e.time, kind: e.kind, message: (several ? n + ": " : "") + e.message, step: step };
        }), state.axis, state.data[n], state.ends[n]).forEach(function (m) { marks.push(m); });
      });
      card.draw(lines, {
        axis: state.axis, smoothing: state.smoothing, window: state.window, marks: marks,
        onZoom: function (lo, hi) { state.window = [lo, hi]; refresh(true); },
        onReset: function () { state.window = null; refresh(true); }
      });
      window.__loopwise.plot = card.u;
    }
    var busy = false;
    function refresh(force) {
      if (busy && !force) return;
      busy = true;
      api("/api/runs").then(function (runs) {
        var before = {};
        state.runs.forEach(function (r) { before[r.name] = r.steps + r.status; });
        state.runs = runs;
        if (window.LoopwiseColors) window.LoopwiseColors.setRuns(runs);
        if (!state.selected.length && runs.length) state.selected = [runs[0].name];
        var names = runs.map(function (r) { return r.name; });
        state.selected = state.selected.filter(function (n) { return names.indexOf(n) >= 0; });
        drawRuns();
        if (!runs.length) {
          return api("/api/root").then(function (where) {
            clear(startBox);
            startBox.appendChild(emptyRoot(where));
            msg.textContent = "";
            card.box.style.display = "none";
          });
        }
        clear(startBox);
        var changed = force || runs.some(function (r) {
          return state.selected.indexOf(r.name) >= 0 && before[r.name] !== r.steps + r.status;
        });
        if (!changed) return null;
        return Promise.all(state.selected.map(function (n) {
          return api("/api/runs/" + encodeURIComponent(n)).then(function (d) {
            state.keys[n] = d.keys;
            state.ends[n] = d.epoch_ends;
          });
        })).then(function () {
          drawMetrics();
          if (!state.metric) { state.data = {}; drawChart(); return null; }
          var events = {};
          var eventsDone = Promise.all(state.selected.map(function (n) {
            return api("/api/runs/" + encodeURIComponent(n) + "/events").then(function (ev) { events[n] = ev; });
          })).then(function () {
            state.events = events;
            drawEvents(events);
            if (card.u) drawChart();  // the events marked (the chart is not waited for them)
          });
          var chartDone = Promise.all(state.selected.map(function (n) {
            if ((state.keys[n] || []).indexOf(state.metric) < 0) { delete state.data[n]; return null; }
            return series(n).then(function (s) { state.data[n] = s; });
          })).then(function () {
            Object.keys(state.data).forEach(function (n) { if (state.selected.indexOf(n) < 0) delete state.data[n]; });
            drawChart();
          });
          return Promise.all([chartDone, eventsDone]);
        });
      }).catch(function (e) { msg.textContent = String(e.message || e); })
        .then(function () { busy = false; });
    }
    window.__loopwise = { state: state, refresh: refresh, redraw: drawChart,
                          select: function (names) { state.selected = names.slice(); refresh(true); } };
    window.addEventListener("resize", function () { card.resize(); });
    refresh(true);
    setInterval(function () { refresh(false); }, POLL_MS);
  }

  // -- the dashboard's run page: what the report shows, live ---------------------------------
  function runPage(root, conn, name) {
    var path = "/api/runs/" + encodeURIComponent(name);
    var view = null, seen = null, busy = false;
    var msg = el("p", "lw-msg");
    root.appendChild(msg);
    function links() {
      return [["\u2190 all runs", conn.href("./"), "lw-home"],
              ["report", conn.href(path + "/report"), "lw-report"]];
    }
    function download(key, format) {
      return conn.href(path + "/download/" + encodeURIComponent(key), { format: format });
    }
    function load() {
      return conn.api(path + "/payload?points=2000").then(function (run) {
        if (!view) {
          view = LW.runView(root, run, { links: links(), download: download });
          window.__loopwise = { state: view.state, plots: view.plots, view: view };
        } else {
          view.update(run);
        }
      });
    }
    /* polled every 1.5 s, or twice as long as the last answer took when that was longer (a
     * run with many long series is not re-read back to back) */
    var wait = POLL_MS;
    function poll() {
      if (busy) return;
      busy = true;
      var began = performance.now();
      conn.api("/api/runs").then(function (runs) {
        var mine = runs.filter(function (r) { return r.name === name; })[0];
        if (!mine) { msg.textContent = "no run named " + name + " in this folder"; return null; }
        var now = mine.steps + " " + mine.status + " " + mine.end_time;
        if (now === seen && view) return null;
        seen = now;
        return load();
      }).then(function () { if (view) msg.textContent = ""; })
        .catch(function (e) { msg.textContent = String(e.message || e); })
        .then(function () {
          busy = false;
          wait = Math.max(POLL_MS, 2 * (performance.now() - began));
          setTimeout(poll, wait);
        });
    }
    poll();
  }

  function start() {
    var root = document.getElementById("lw-app");
    if (!root) return;
    var data = document.getElementById("lw-data");
    if (data) { report(root, JSON.parse(data.textContent)); return; }
    var conn = connection();
    if (conn.params.get("view") === "run" && conn.params.get("run")) {
      root.className = "lw-runpage";
      runPage(root, conn, conn.params.get("run"));
    } else {
      dashboard(root, conn);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.LW = window.LW || {});
