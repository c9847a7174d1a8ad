/* loopwise front end: the page of one run, as the HTML report shows it (data inlined) and as the
 * dashboard's run page shows it live (LW.runView(...).update(payload) on new data): a grid of
 * every metric with train and validation overlaid, grouped by prefix with a filter; system
 * charts, one per quantity with its .min/.max band; events; config; the epoch table. */
(function (LW) {
  "use strict";

  var el = function (t, c, x) { return LW.el(t, c, x); };

  /* The chart a key belongs to: "loss", "val_loss", "epoch/loss", "epoch/val_loss" (and
   * "train/loss", "val/loss") all share the chart "loss". */
  function baseOf(key) {
    var name = key.indexOf("epoch/") === 0 ? key.slice(6) : key;
    var parts = name.split("/");
    if (parts.length > 1 && /^(train|val|valid|validation)$/.test(parts[0])) parts.shift();
    parts[parts.length - 1] = parts[parts.length - 1].replace(/^(train|val|valid|validation)_(?=.)/, "");
    return parts.join("/");
  }
  /* [{section, title, keys}] in first-seen order; per-step keys before epoch summaries. */
  function metricGroups(keys) {
    var byTitle = {}, order = [];
    keys.forEach(function (k) {
      if (k === "epoch") return;
      var b = baseOf(k);
      if (!byTitle[b]) {
        var slash = b.indexOf("/");
        byTitle[b] = { section: slash > 0 ? b.slice(0, slash) : "", title: b, keys: [] };
        order.push(b);
      }
      byTitle[b].keys.push(k);
    });
    return order.map(function (b) {
      var g = byTitle[b];
      g.keys.sort(function (x, y) {
        return (x.indexOf("epoch/") === 0) - (y.indexOf("epoch/") === 0);
      });
      return g;
    });
  }
  /* System samples: one chart per quantity, its .min and .max a band around it. */
  function systemGroups(names) {
    var groups = {}, order = [];
    names.forEach(function (n) {
      var q = n.replace(/\.(min|max)$/, "");
      if (!groups[q]) { groups[q] = []; order.push(q); }
      groups[q].push(n);
    });
    return order.map(function (q) {
      var ns = groups[q].slice().sort(function (a, b) { return rank(a) - rank(b); });
      return { title: q, names: ns };
    });
    function rank(n) { return /\.min$/.test(n) ? 1 : /\.max$/.test(n) ? 2 : 0; }
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

  /* opts: {links: [[text, href]], download(key, format) -> href, filter} */
  function runView(root, run, opts) {
    opts = opts || {};
    var state = { axis: "step", smoothing: 0, filter: opts.filter || "" };
    var cards = {}, sysCards = {};
    var head = el("header", "lw-header");
    var title = el("h1", null, run.name);
    var status = el("span", "lw-status");
    var sub = el("div", "lw-sub");
    head.appendChild(title);
    head.appendChild(status);
    head.appendChild(sub);
    if (opts.links) {
      var links = el("nav", "lw-links");
      opts.links.forEach(function (l) {
        var a = el("a", null, l[0]);
        a.href = l[1];
        if (l[2]) a.id = l[2];
        links.appendChild(a);
      });
      head.appendChild(links);
    }
    root.appendChild(head);
    var damagedBox = el("div", "lw-damaged");
    damagedBox.id = "lw-damaged";
    damagedBox.setAttribute("role", "alert");
    root.appendChild(damagedBox);
    var filter = el("input");
    filter.type = "search";
    filter.id = "lw-filter";
    filter.placeholder = "filter metrics";
    filter.value = state.filter;
    filter.setAttribute("aria-label", "filter metrics by name");
    filter.addEventListener("input", function () { state.filter = filter.value; applyFilter(); });
    root.appendChild(LW.controls(state, drawAll, drawMetrics, [filter]));
    root.appendChild(el("h2", null, "Metrics"));
    var metrics = el("div", "lw-metrics");
    root.appendChild(metrics);
    root.appendChild(el("h2", null, "System"));
    var system = el("section", "lw-charts lw-system");
    root.appendChild(system);
    root.appendChild(el("h2", null, "Events"));
    var eventsBox = el("div", "lw-events");
    root.appendChild(eventsBox);
    root.appendChild(el("h2", null, "Config"));
    var configBox = el("div");
    root.appendChild(configBox);
    root.appendChild(el("h2", null, "Epochs"));
    var epochBox = el("div");
    root.appendChild(epochBox);
    var sections = {};

    function section(name) {
      if (sections[name]) return sections[name];
      var s = el("section", "lw-group");
      s.setAttribute("data-group", name);
      if (name) s.appendChild(el("h3", null, name));
      var grid = el("div", "lw-charts");
      s.appendChild(grid);
      if (name) metrics.appendChild(s);
      else metrics.insertBefore(s, metrics.firstChild);
      sections[name] = { box: s, grid: grid };
      return sections[name];
    }
    function applyFilter() {
      var f = state.filter.trim().toLowerCase();
      Object.keys(cards).forEach(function (t) {
        var c = cards[t];
        var keep = !f || t.toLowerCase().indexOf(f) >= 0 ||
          c.keys.some(function (k) { return k.toLowerCase().indexOf(f) >= 0; });
        c.card.box.style.display = keep ? "" : "none";
      });
      Object.keys(sections).forEach(function (n) {
        var any = Array.prototype.some.call(sections[n].grid.children, function (c) { return c.style.display !== "none"; });
        sections[n].box.style.display = any ? "" : "none";
      });
    }
    /* the recorded events, and the best epoch when no event says which it was */
    function markedEvents() {
      var events = run.events || [], b = run.best;
      if (!b || events.some(function (e) { return /^best/.test(e.kind); })) return events;
      return events.concat([{ kind: "best_epoch", step: b.step, time: null,
                              message: "best " + b.key + " " + LW.fmt(b.value) + " at epoch " + b.epoch }]);
    }
    function drawMetrics() {
      var keys = Object.keys(run.series);
      var ref = run.series.loss || run.series[keys.filter(function (k) { return k.indexOf("epoch") !== 0; })[0]] || run.series[keys[0]];
      metricGroups(keys).forEach(function (g) {
        var entry = cards[g.title];
        if (!entry) {
          var card = new LW.Card(section(g.section).grid, { title: g.title });
          entry = cards[g.title] = { card: card, keys: g.keys };
          if (opts.download) {
            var dl = el("div", "lw-downloads");
            card.box.appendChild(dl);
            entry.dl = dl;
          }
        }
        entry.keys = g.keys;
        LW.clear(entry.card.extra);
        var lines = g.keys.map(function (k) {
          var s = run.series[k];
          return { label: k, xs: LW.xsOf(s, state.axis), ys: s.values, perStep: k.indexOf("epoch/") !== 0 };
        });
        entry.card.draw(lines, { axis: state.axis, smoothing: state.smoothing,
                                 marks: LW.marksOf(markedEvents(), state.axis, ref, run.epoch_ends) });
        g.keys.forEach(function (k) {
          var s = run.series[k];
          if (s.nonfinite) {
            entry.card.extra.appendChild(el("p", "lw-warn", k + ": " + s.nonfinite + " non-finite value(s) " +
              "(NaN or infinity) drawn as gaps (\u00d7), the first at step " + LW.fmt(s.first_nonfinite)));
          }
        });
        if (entry.dl) {
          LW.clear(entry.dl);
          entry.dl.appendChild(document.createTextNode("download "));
          g.keys.forEach(function (k) {
            ["csv", "jsonl"].forEach(function (f) {
              var a = el("a", "lw-dl", k + " " + f.toUpperCase());
              a.href = opts.download(k, f);
              a.setAttribute("download", "");
              entry.dl.appendChild(a);
            });
          });
        }
      });
      if (!keys.length && !metrics.querySelector(".lw-empty")) metrics.appendChild(el("p", "lw-empty", "no metrics recorded"));
      if (keys.length) metrics.querySelectorAll(".lw-empty").forEach(function (e) { e.remove(); });
      applyFilter();
    }
    function drawSystem() {
      var names = Object.keys(run.system || {});
      systemGroups(names).forEach(function (g) {
        var card = sysCards[g.title];
        if (!card) card = sysCards[g.title] = new LW.Card(system, { title: g.title, height: 180 });
        card.draw(g.names.map(function (n) {
          var m = /\.(min|max)$/.exec(n);
          return { label: n, xs: run.system[n].times, ys: run.system[n].values, role: m ? m[1] : null };
        }), { axis: "time", smoothing: 0 });
      });
      system.querySelectorAll(".lw-empty").forEach(function (e) { e.remove(); });
      if (!names.length) system.appendChild(el("p", "lw-empty", "no system samples"));
    }
    function drawAll() {
      drawMetrics();
      drawSystem();
    }
    /* the parts of the store that failed their checksum: named (series, run, file), left out */
    function drawDamaged() {
      var damaged = run.damaged || [];
      var said = damaged.join("\n");
      if (damagedBox._said === said) return;
      damagedBox._said = said;
      LW.clear(damagedBox);
      damagedBox.style.display = damaged.length ? "" : "none";
      if (!damaged.length) return;
      var parts = damaged.map(function (d) {
        var m = /\(run '.*?': (.*) failed its checksum\)/.exec(d);
        return m ? m[1] : d;
      });
      damagedBox.appendChild(el("strong", null, "Damaged record: " + parts.join(", ") +
        (parts.length > 1 ? " fail their checksums and are" : " fails its checksum and is") +
        " not shown; the rest of the run is."));
      var list = el("ul");
      damaged.forEach(function (d) { list.appendChild(el("li", null, d)); });
      damagedBox.appendChild(list);
    }
    function drawTables() {
      drawDamaged();
      var info = run.info || {};
      status.className = "lw-status lw-" + run.status;
      status.textContent = run.status;
      sub.textContent = "started " + LW.stamp(info.start_time) + " \u00b7 ended " +
        (typeof info.end_time === "number" ? LW.stamp(info.end_time) : "-") + " \u00b7 steps " +
        LW.fmt(info.global_step) + " \u00b7 host " + (info.host || "-");
      LW.clear(eventsBox);
      var events = run.events || [];
      if (events.length) {
        var t0 = info.start_time || events[0].time, t1 = info.end_time || events[events.length - 1].time;
        eventsBox.appendChild(timeline(events, t0, t1));
        eventsBox.appendChild(LW.table(["time (UTC)", "level", "kind", "step", "message"], events.map(function (e) {
          return [LW.stamp(e.time).replace(" UTC", ""), e.level, e.kind, e.step === undefined ? null : e.step, e.message];
        }), ["message"]));
      } else {
        eventsBox.appendChild(el("p", "lw-empty", "no events"));
      }
      LW.clear(configBox);
      var cfg = LW.flatten(run.config, "", []);
      configBox.appendChild(cfg.length ? LW.table(["key", "value"], cfg, ["value"]) : el("p", "lw-empty", "no config"));
      LW.clear(epochBox);
      var et = run.epoch_table || { columns: [], rows: [] };
      epochBox.appendChild(et.rows.length ? LW.table(et.columns, et.rows) : el("p", "lw-empty", "no epochs recorded"));
    }
    drawTables();
    drawAll();
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () {
        Object.keys(cards).forEach(function (t) { cards[t].card.resize(); });
        Object.keys(sysCards).forEach(function (t) { sysCards[t].resize(); });
      }, 100);
    });
    var view = {
      state: state,
      update: function (next) { run = next; drawTables(); drawAll(); },
      plots: function () {
        var out = [];
        Object.keys(cards).forEach(function (t) { if (cards[t].card.u) out.push(cards[t].card.u); });
        Object.keys(sysCards).forEach(function (t) { if (sysCards[t].u) out.push(sysCards[t].u); });
        return out;
      },
      cards: function () { return cards; }
    };
    return view;
  }

  LW.runView = runView;
  LW.metricGroups = metricGroups;
  LW.systemGroups = systemGroups;
})(window.LW = window.LW || {});
