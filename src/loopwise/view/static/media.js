/* loopwise front end, beyond scalars: a distribution view per histogram name (nested quantile
 * bands over steps, like TensorBoard's distributions, and a heatmap of the bins), an image
 * strip with a step slider per image name, and the text entries. The report reads the
 * payload's "media" field (view/media_payload.py); the dashboard's run page asks
 * /api/runs/{run}/media. Text from a run goes in with textContent (LW.el, dom.js); numbers
 * through LW.fmt and LW.ticks (format.js). Loaded after loopwise.js. */
(function (LW) {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var BAND_COLOR = "#1f77b4";
  var BAND_OPACITY = [0.16, 0.28, 0.42, 0.6];  // min-max, 7-93 %, 16-84 %, 31-69 %

  var el = LW.el, fmt = LW.fmt;  // dom.js, format.js: the one DOM helper and formatter
  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  /* About n round tick values between lo and hi (their labels: LW.ticks). */
  function tickValues(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    var raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; })
      .filter(function (s) { return s >= raw; })[0];
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
    }
    return out;
  }

  // -- the distribution view -----------------------------------------------------------------
  function distribution(view, width, height) {
    var m = { l: 58, r: 12, t: 8, b: 30 };
    var svg = svgEl("svg", { width: width, height: height, "class": "lw-dist-svg",
                             viewBox: "0 0 " + width + " " + height });
    var rows = [];
    view.steps.forEach(function (s, i) {
      var q = view.quantiles[i];
      if (q && q[0] !== null && q[8] !== null) rows.push({ step: s, q: q });
    });
    if (!rows.length) return el("p", "lw-empty", "no finite values");
    var x0 = rows[0].step, x1 = rows[rows.length - 1].step;
    var y0 = Math.min.apply(null, rows.map(function (r) { return r.q[0]; }));
    var y1 = Math.max.apply(null, rows.map(function (r) { return r.q[8]; }));
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { y0 -= 1; y1 += 1; }
    var pad = (y1 - y0) * 0.04;
    y0 -= pad; y1 += pad;
    function X(s) { return m.l + (s - x0) / (x1 - x0) * (width - m.l - m.r); }
    function Y(v) { return m.t + (y1 - v) / (y1 - y0) * (height - m.t - m.b); }
    var axes = svgEl("g", { "class": "lw-dist-axes", "font-size": "11", fill: "#555" });
    var ys = tickValues(y0, y1, 5), yLabels = LW.ticks(ys);
    ys.forEach(function (t, i) {
      axes.appendChild(svgEl("line", { x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t),
                                       stroke: "#eee" }));
      axes.appendChild(svgEl("text", { x: m.l - 6, y: Y(t) + 4, "text-anchor": "end",
                                       "class": "lw-dist-ytick" }, yLabels[i]));
    });
    var xs = tickValues(x0, x1, 6).filter(function (t) { return t === Math.round(t); });
    var xLabels = LW.ticks(xs);
    xs.forEach(function (t, i) {
      axes.appendChild(svgEl("text", { x: X(t), y: height - m.b + 16, "text-anchor": "middle",
                                       "class": "lw-dist-xtick" }, xLabels[i]));
    });
    axes.appendChild(svgEl("text", { x: width - m.r, y: height - 2, "text-anchor": "end",
                                     "class": "lw-dist-xlabel" }, "step"));
    svg.appendChild(axes);
    [[0, 8], [1, 7], [2, 6], [3, 5]].forEach(function (pair, k) {
      var upper = rows.map(function (r) { return X(r.step) + "," + Y(r.q[pair[1]]); });
      var lower = rows.slice().reverse().map(function (r) { return X(r.step) + "," + Y(r.q[pair[0]]); });
      if (rows.length === 1) {  // one step: a short bar
        var x = X(rows[0].step);
        upper = [(x - 3) + "," + Y(rows[0].q[pair[1]]), (x + 3) + "," + Y(rows[0].q[pair[1]])];
        lower = [(x + 3) + "," + Y(rows[0].q[pair[0]]), (x - 3) + "," + Y(rows[0].q[pair[0]])];
      }
      svg.appendChild(svgEl("polygon", { points: upper.concat(lower).join(" "),
                                         fill: BAND_COLOR, "fill-opacity": BAND_OPACITY[k],
                                         "class": "lw-dist-band" }));
    });
    svg.appendChild(svgEl("polyline", {
      points: rows.map(function (r) { return X(r.step) + "," + Y(r.q[4]); }).join(" "),
      fill: "none", stroke: "#0b3d66", "stroke-width": 1.5, "class": "lw-dist-median" }));
    svg.appendChild(svgEl("rect", { x: m.l, y: m.t, width: width - m.l - m.r,
                                    height: height - m.t - m.b, fill: "none", stroke: "#ccc" }));
    return svg;
  }

  function heatmap(view, width, height) {
    var heat = view.heat, cells = heat.cells;
    var box = el("div", "lw-heat");
    var canvas = el("canvas", "lw-heat-canvas");
    canvas.width = width; canvas.height = height;
    var ctx = canvas.getContext("2d");
    var cw = width / Math.max(cells.length, 1), ch = height / heat.rows;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    cells.forEach(function (col, i) {
      col.forEach(function (v, r) {
        if (!v) return;
        ctx.fillStyle = "rgba(31,119,180," + (0.08 + 0.92 * v).toFixed(3) + ")";
        ctx.fillRect(Math.floor(i * cw), Math.floor(height - (r + 1) * ch),
                     Math.ceil(cw), Math.ceil(ch));
      });
    });
    box.appendChild(canvas);
    box.appendChild(el("div", "lw-heat-range", "values " + fmt(heat.lo) + " (bottom) to " +
      fmt(heat.hi) + " (top); steps " + view.steps[0] + " to " + view.steps[view.steps.length - 1]));
    return box;
  }

  // -- images and text -----------------------------------------------------------------------
  function strip(name, images, srcOf) {
    var card = el("div", "lw-media-card lw-image-card");
    card.setAttribute("data-image", name);
    card.appendChild(el("h3", null, name));
    var items = images.items;
    if (!items.length) {
      card.appendChild(el("p", "lw-empty", "no image could be shown"));
      return card;
    }
    var img = el("img", "lw-image");
    img.alt = name;
    var slider = el("input", "lw-image-slider");
    slider.type = "range";
    slider.min = "0"; slider.max = String(items.length - 1); slider.step = "1";
    slider.value = String(items.length - 1);
    slider.setAttribute("aria-label", name + " step");
    var label = el("div", "lw-image-step");
    function show() {
      var it = items[Number(slider.value)];
      img.src = srcOf(it);
      img.title = name + " at step " + it.step + " (" + it.width + "x" + it.height + ")";
      label.textContent = "step " + it.step + " (" + (Number(slider.value) + 1) + " of " +
        items.length + ")";
    }
    slider.addEventListener("input", show);
    show();
    card.appendChild(img);
    card.appendChild(slider);
    card.appendChild(label);
    if (images.omitted) {
      card.appendChild(el("p", "lw-empty", images.omitted + " of " + images.total +
        " images not shown (the report embeds at most a few per name, within its size budget)"));
    }
    return card;
  }

  function textTable(name, entries) {
    var card = el("div", "lw-media-card lw-text-card");
    card.setAttribute("data-text", name);
    card.appendChild(el("h3", null, name));
    var t = el("table", "lw-table lw-texts");
    var head = el("tr");
    head.appendChild(el("th", null, "step"));
    head.appendChild(el("th", null, "text"));
    t.appendChild(head);
    entries.slice().reverse().forEach(function (e) {
      var tr = el("tr");
      tr.appendChild(el("td", null, e.step));
      tr.appendChild(el("td", "lw-text", e.text));
      t.appendChild(tr);
    });
    card.appendChild(t);
    return card;
  }

  /* Draw the media of one run into `root` (emptied first); nothing when it has none. */
  function render(root, media, srcOf) {
    while (root.firstChild) root.removeChild(root.firstChild);
    media = media || {};
    var hists = media.histograms || {}, images = media.images || {}, texts = media.texts || {};
    (media.damaged || []).forEach(function (part) {
      root.appendChild(el("p", "lw-warn", "not shown: " + part + " failed its checksum (the " +
        "record was changed on disk)"));
    });
    if (Object.keys(hists).length) {
      root.appendChild(el("h2", null, "Distributions"));
      var grid = el("section", "lw-media-grid");
      root.appendChild(grid);
      Object.keys(hists).forEach(function (name) {
        var view = hists[name];
        var card = el("div", "lw-media-card lw-dist-card");
        card.setAttribute("data-histogram", name);
        card.appendChild(el("h3", null, name));
        grid.appendChild(card);  // in the page first: its width sizes the chart
        var width = Math.max(300, Math.min(900, (card.clientWidth || 480) - 18));
        card.appendChild(distribution(view, width, 220));
        card.appendChild(el("div", "lw-dist-legend", "bands: min-max, 7-93 %, 16-84 %, " +
          "31-69 %; line: median; " + view.total + " histograms" +
          (view.total > view.steps.length ? " (" + view.steps.length + " shown)" : "")));
        card.appendChild(heatmap(view, width - 70, 90));
      });
    }
    if (Object.keys(images).length) {
      root.appendChild(el("h2", null, "Images"));
      var igrid = el("section", "lw-media-grid");
      Object.keys(images).forEach(function (name) { igrid.appendChild(strip(name, images[name], srcOf)); });
      root.appendChild(igrid);
    }
    if (Object.keys(texts).length) {
      root.appendChild(el("h2", null, "Text"));
      var tgrid = el("section", "lw-media-grid");
      Object.keys(texts).forEach(function (name) { tgrid.appendChild(textTable(name, texts[name])); });
      root.appendChild(tgrid);
    }
  }

  function eventsHeading(parent) {
    return Array.prototype.filter.call(parent.children, function (c) {
      return c.tagName === "H2" && c.textContent === "Events";
    })[0] || null;
  }
  /* Our section, placed before the page's "Events" heading (or at the end of `parent`). */
  function section(parent) {
    var box = el("div", "lw-media");
    box.id = "lw-media";
    parent.insertBefore(box, eventsHeading(parent));
    return box;
  }

  function report(app, payload) {
    var box = section(app);
    render(box, payload.media, function (it) { return it.src; });
  }

  /* The dashboard's run page (?view=run&run=NAME): the run's media, fetched again when its
   * step, status or end changes (the run list says), placed before the page's events. */
  function runPage(app, name, token) {
    var headers = token ? { "Authorization": "Bearer " + token } : {};
    var base = "/api/runs/" + encodeURIComponent(name);
    var box = el("div", "lw-media"), seen = null, busy = false;
    box.id = "lw-media";
    function src(it) { return it.src + (token ? "?token=" + encodeURIComponent(token) : ""); }
    function get(path) {
      return fetch(path, { headers: headers, credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(path + ": HTTP " + r.status);
        return r.json();
      });
    }
    function place() {
      var events = eventsHeading(app);
      if (events && box.nextSibling !== events) app.insertBefore(box, events);
    }
    function tick() {
      place();
      if (busy) return;
      busy = true;
      get("/api/runs").then(function (runs) {
        var mine = runs.filter(function (r) { return r.name === name; })[0];
        var now = mine ? mine.steps + " " + mine.status + " " + mine.end_time : null;
        if (!mine || now === seen) return null;
        return get(base + "/media").then(function (media) {
          seen = now;
          render(box, media, src);
          box.setAttribute("data-run", name);
          place();
        });
      }).catch(function () { /* the run page says what failed; this view waits */ })
        .then(function () { busy = false; });
    }
    tick();
    setInterval(tick, 2000);
  }

  function start() {
    var app = document.getElementById("lw-app");
    if (!app) return;
    var data = document.getElementById("lw-data");
    if (data) { report(app, JSON.parse(data.textContent)); return; }
    var params = new URLSearchParams(window.location.search);
    if (params.get("view") === "run" && params.get("run")) {
      runPage(app, params.get("run"), params.get("token"));
    }
  }
  LW.media = { render: render };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window.LW = window.LW || {});
