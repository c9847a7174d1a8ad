/* loopwise dashboard home: the run table (one row per run: status, start, duration, steps,
 * config keys, final/best per metric), sorting, the server-side `where` filter, free-text
 * search, column choice, pins, selection, colour and group by a config key; for the
 * selected runs a parallel-coordinates view and a scatter (SVG), and the metric overlays of
 * loopwise.js (window.__loopwise.select). Rows are virtualised (only the visible ones are in
 * the DOM) and updated in place on every poll, so focus, selection and scroll survive a
 * live run. Every name and value goes in with textContent. */
(function () {
  "use strict";

  var ROW_H = 24, OVERSCAN = 12, POLL_MS = 2000, OVERLAY_MAX = 30;
  var SVG = "http://www.w3.org/2000/svg";
  var C = window.LoopwiseColors;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v) {  // numbers as every chart and table writes them (format.js)
    if (typeof v === "boolean") return v ? "true" : "false";
    if (v !== null && v !== undefined && typeof v === "object") return JSON.stringify(v);
    return window.LW.fmt(v);
  }
  function duration(s) {
    if (!isNum(s)) return "-";
    s = Math.floor(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + ("0" + m).slice(-2) : String(m)) + ":" + ("0" + r).slice(-2);
  }
  function stamp(t) { return window.LW.stamp(t, { zone: false }); }  // the header says UTC

  function RunsTable(root, opts) {
    var params = new URLSearchParams(window.location.search);
    var token = params.get("token");
    var store = window.localStorage;
    var s = {
      rows: [], byName: {}, matched: null, metrics: [], configKeys: [],
      where: params.get("where") || "", search: "", sort: null, columns: null,
      pinned: new Set(JSON.parse((store && store.getItem("loopwise.pinned")) || "[]")),
      selected: new Set(params.getAll("run")), colorKey: params.get("color") || "",
      group: false, metric: null, pcKeys: null, scatterX: null, view: [], anchor: null,
      firstRender: null
    };

    function api(path) {
      var headers = token ? { "Authorization": "Bearer " + token } : {};
      return fetch(path, { headers: headers, credentials: "same-origin" }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body && body.error ? body.error : path + ": HTTP " + r.status);
          return body;
        });
      });
    }

    // -- columns ---------------------------------------------------------------------------
    function columnLabel(id) {
      var i = id.indexOf(":");
      if (i < 0) return id === "start" ? "start (UTC)" : id;
      var kind = id.slice(0, i), key = id.slice(i + 1);
      return kind === "config" ? key : kind + " " + key;
    }
    function value(row, id) {
      if (id === "name" || id === "status" || id === "start" || id === "duration" || id === "steps") return row[id];
      var i = id.indexOf(":"), kind = id.slice(0, i), key = id.slice(i + 1);
      var src = kind === "config" ? row.config : kind === "best" ? row.best : row.final;
      return src ? src[key] : undefined;
    }
    function text(row, id) {
      var v = value(row, id);
      if (id === "start") return stamp(v);
      if (id === "duration") return duration(v);
      return fmt(v);
    }
    function allColumns() {
      var cols = ["status", "start", "duration", "steps"];
      s.configKeys.forEach(function (k) { cols.push("config:" + k); });
      s.metrics.forEach(function (m) {
        if (m.mode) cols.push("best:" + m.key);
        cols.push("final:" + m.key);
      });
      return cols;
    }
    function differing() {
      return s.configKeys.filter(function (k) {
        var seen = {};
        s.rows.forEach(function (r) { seen[C.keyText(r.config[k])] = true; });
        return Object.keys(seen).length > 1;
      });
    }
    function defaultColumns() {
      var cols = ["status", "start", "duration", "steps"];
      differing().slice(0, 8).forEach(function (k) { cols.push("config:" + k); });
      s.metrics.slice(0, 4).forEach(function (m) {
        if (m.mode) cols.push("best:" + m.key);
        cols.push("final:" + m.key);
      });
      return cols;
    }

    // -- the view: filter, search, sort, group, pins ------------------------------------------
    function searchText(r) {
      if (r._search === undefined) {
        var parts = [r.name, r.status];
        Object.keys(r.config || {}).forEach(function (k) { parts.push(k + "=" + C.keyText(r.config[k])); });
        r._search = parts.join(" ").toLowerCase();
      }
      return r._search;
    }
    function compare(id, dir) {
      return function (a, b) {
        var x = value(a, id), y = value(b, id);
        var xm = x === undefined || x === null, ym = y === undefined || y === null;
        if (xm || ym) return xm === ym ? 0 : xm ? 1 : -1;  // missing last, either way
        if (isNum(x) && isNum(y)) return dir * (x - y);
        x = C.keyText(x); y = C.keyText(y);
        return dir * (x < y ? -1 : x > y ? 1 : 0);
      };
    }
    function computeView() {
      var words = s.search.toLowerCase().split(/\s+/).filter(Boolean);
      var matched = s.matched ? new Set(s.matched) : null;
      var rows = s.rows.filter(function (r) {
        if (s.pinned.has(r.name)) return false;
        if (matched && !matched.has(r.name)) return false;
        var t = words.length ? searchText(r) : "";
        return words.every(function (w) { return t.indexOf(w) >= 0; });
      });
      if (s.sort) rows.sort(compare(s.sort.id, s.sort.dir));
      var pinned = s.rows.filter(function (r) { return s.pinned.has(r.name); });
      var view = pinned.map(function (r) { return { row: r }; });
      if (s.group && s.colorKey) {
        var groups = {}, order = [];
        rows.forEach(function (r) {
          var k = C.keyText(r.config[s.colorKey]);
          if (!groups[k]) { groups[k] = []; order.push([k, r.config[s.colorKey]]); }
          groups[k].push(r);
        });
        order.sort(function (a, b) {
          return isNum(a[1]) && isNum(b[1]) ? a[1] - b[1] : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
        });
        order.forEach(function (g) {
          view.push({ group: g[0], value: g[1], count: groups[g[0]].length });
          groups[g[0]].forEach(function (r) { view.push({ row: r }); });
        });
      } else {
        rows.forEach(function (r) { view.push({ row: r }); });
      }
      s.view = view;
      s.shown = rows.length + pinned.length;
    }

    // -- colours -----------------------------------------------------------------------------
    var coloring = null;
    function updateColoring() {
      if (!s.colorKey) { coloring = null; C.setColoring(null); drawLegend(); return; }
      coloring = C.coloring(s.rows.map(function (r) { return r.config[s.colorKey]; }));
      C.setColoring(function (name) {
        var r = s.byName[name];
        return r ? coloring.color(r.config[s.colorKey]) : null;
      });
      drawLegend();
    }
    function colorOf(name) { return C.colorOf(name); }

    // -- DOM ---------------------------------------------------------------------------------
    var home = el("section", "lw-home");
    home.id = "lw-home";
    root.appendChild(home);
    home.appendChild(el("h2", null, "Run table"));
    var bar = el("div", "lw-controls lw-toolbar");
    home.appendChild(bar);
    var whereBox = el("input");
    whereBox.id = "lw-where";
    whereBox.type = "text";
    whereBox.placeholder = "filter: lr < 0.01 and status == finished";
    whereBox.value = s.where;
    whereBox.size = 40;
    var whereErr = el("span", "lw-warn");
    whereErr.id = "lw-where-error";
    var searchBox = el("input");
    searchBox.id = "lw-search";
    searchBox.type = "search";
    searchBox.placeholder = "search";
    var colorSel = el("select");
    colorSel.id = "lw-color-by";
    var groupBox = el("input");
    groupBox.type = "checkbox";
    groupBox.id = "lw-group";
    var count = el("span", "lw-sub");
    count.id = "lw-count";
    var colsBox = el("details", "lw-columns");
    colsBox.id = "lw-columns";
    colsBox.appendChild(el("summary", null, "columns"));
    var colsList = el("div", "lw-colslist");
    colsBox.appendChild(colsList);
    function labelled(text, input) { var l = el("label", null, text + " "); l.appendChild(input); return l; }
    bar.appendChild(labelled("where", whereBox));
    bar.appendChild(whereErr);
    bar.appendChild(labelled("search", searchBox));
    bar.appendChild(labelled("colour by", colorSel));
    bar.appendChild(labelled("group", groupBox));
    bar.appendChild(colsBox);
    bar.appendChild(count);
    var legend = el("div", "lw-legend");
    legend.id = "lw-legend";
    home.appendChild(legend);
    var wrap = el("div", "lw-vscroll");
    wrap.id = "lw-table-wrap";
    home.appendChild(wrap);
    var tableEl = el("table", "lw-table lw-rt");
    tableEl.id = "lw-run-table";
    wrap.appendChild(tableEl);
    var thead = el("thead"), tbody = el("tbody");
    tableEl.appendChild(thead);
    tableEl.appendChild(tbody);
    var topPad = el("tr", "lw-pad"), bottomPad = el("tr", "lw-pad");
    tbody.appendChild(topPad);
    tbody.appendChild(bottomPad);
    var plots = el("div", "lw-plots");  // below the metric charts, when the page has a place
    (opts && opts.plotsRoot || home).appendChild(plots);
    var pcBox = el("div", "lw-chart lw-pc");
    var scBox = el("div", "lw-chart lw-sc");
    plots.appendChild(pcBox);
    plots.appendChild(scBox);
    var pcBar = el("div", "lw-controls");
    var metricSel = el("select");
    metricSel.id = "lw-pc-metric";
    var pcKeysBox = el("details", "lw-columns");
    pcKeysBox.id = "lw-pc-keys";
    pcKeysBox.appendChild(el("summary", null, "axes"));
    var pcKeysList = el("div", "lw-colslist");
    pcKeysBox.appendChild(pcKeysList);
    pcBar.appendChild(el("strong", null, "parallel coordinates"));
    pcBar.appendChild(labelled("metric", metricSel));
    pcBar.appendChild(pcKeysBox);
    pcBox.appendChild(pcBar);
    var pcSvg = svg("svg", { id: "lw-parcoords", class: "lw-svg" });
    pcBox.appendChild(pcSvg);
    var scBar = el("div", "lw-controls");
    var xSel = el("select");
    xSel.id = "lw-scatter-x";
    scBar.appendChild(el("strong", null, "scatter"));
    scBar.appendChild(labelled("x", xSel));
    scBox.appendChild(scBar);
    var scSvg = svg("svg", { id: "lw-scatter", class: "lw-svg" });
    scBox.appendChild(scSvg);

    function fillSelect(sel, options, current) {
      var want = JSON.stringify(options);
      if (sel._options !== want) {
        while (sel.firstChild) sel.removeChild(sel.firstChild);
        options.forEach(function (o) {
          var opt = el("option", null, o[1]);
          opt.value = o[0];
          sel.appendChild(opt);
        });
        sel._options = want;
      }
      sel.value = current;
    }
    function drawControls() {
      fillSelect(colorSel, [["", "(run)"]].concat(s.configKeys.map(function (k) { return [k, k]; })), s.colorKey);
      var all = allColumns(), want = JSON.stringify(all) + JSON.stringify(s.columns);
      if (colsList._state !== want) {
        while (colsList.firstChild) colsList.removeChild(colsList.firstChild);
        all.forEach(function (id) {
          var cb = el("input");
          cb.type = "checkbox";
          cb.value = id;
          cb.checked = s.columns.indexOf(id) >= 0;
          cb.addEventListener("change", function () {
            s.columns = allColumns().filter(function (c) {
              return c === id ? cb.checked : s.columns.indexOf(c) >= 0;
            });
            drawHead();
            render(true);
          });
          colsList.appendChild(labelled(columnLabel(id), cb));
        });
        colsList._state = JSON.stringify(all) + JSON.stringify(s.columns);
      }
      fillSelect(metricSel, s.metrics.map(function (m) { return [m.key, m.key]; }), s.metric || "");
      fillSelect(xSel, s.configKeys.map(function (k) { return [k, k]; }), s.scatterX || "");
      var pcWant = JSON.stringify(s.configKeys) + JSON.stringify(s.pcKeys);
      if (pcKeysList._state !== pcWant) {
        while (pcKeysList.firstChild) pcKeysList.removeChild(pcKeysList.firstChild);
        s.configKeys.forEach(function (k) {
          var cb = el("input");
          cb.type = "checkbox";
          cb.checked = s.pcKeys.indexOf(k) >= 0;
          cb.addEventListener("change", function () {
            s.pcKeys = s.configKeys.filter(function (c) { return c === k ? cb.checked : s.pcKeys.indexOf(c) >= 0; });
            pcKeysList._state = JSON.stringify(s.configKeys) + JSON.stringify(s.pcKeys);
            drawPlots();
          });
          pcKeysList.appendChild(labelled(k, cb));
        });
        pcKeysList._state = pcWant;
      }
    }
    function drawLegend() {
      while (legend.firstChild) legend.removeChild(legend.firstChild);
      if (!coloring) return;
      legend.appendChild(el("span", "lw-sub", s.colorKey + ": "));
      if (coloring.kind === "continuous") {
        var ramp = el("span", "lw-ramp");
        ramp.style.background = "linear-gradient(to right, " + [0, 0.25, 0.5, 0.75, 1].map(C.scale).join(", ") + ")";
        legend.appendChild(el("span", null, fmt(coloring.lo) + " "));
        legend.appendChild(ramp);
        legend.appendChild(el("span", null, " " + fmt(coloring.hi) + (coloring.log ? " (log)" : "")));
        return;
      }
      coloring.legend.slice(0, 40).forEach(function (item) {
        var sw = el("span", "lw-swatch");
        sw.style.background = item[1];
        var it = el("span", "lw-legend-item");
        it.appendChild(sw);
        it.appendChild(document.createTextNode(item[0]));
        legend.appendChild(it);
      });
    }
    function drawHead() {
      while (thead.firstChild) thead.removeChild(thead.firstChild);
      var tr = el("tr");
      var th = el("th", "lw-sel");
      var all = el("input");
      all.type = "checkbox";
      all.id = "lw-select-all";
      all.title = "select every run shown";
      all.addEventListener("change", function () {
        s.view.forEach(function (it) { if (it.row) { if (all.checked) s.selected.add(it.row.name); else s.selected.delete(it.row.name); } });
        selectionChanged();
      });
      th.appendChild(all);
      tr.appendChild(th);
      tr.appendChild(el("th", "lw-pin", "pin"));
      tr.appendChild(el("th", "lw-swatch-col", ""));
      ["name"].concat(s.columns).forEach(function (id) {
        var h = el("th", "lw-sortable", columnLabel(id) + (s.sort && s.sort.id === id ? (s.sort.dir > 0 ? " \u25b2" : " \u25bc") : ""));
        h.setAttribute("data-col", id);
        h.title = "sort by " + columnLabel(id);
        h.addEventListener("click", function () {
          s.sort = s.sort && s.sort.id === id ? { id: id, dir: -s.sort.dir } : { id: id, dir: 1 };
          drawHead();
          render(true);
        });
        tr.appendChild(h);
      });
      thead.appendChild(tr);
    }

    var trs = new Map();  // run name -> its row element (kept while visible)
    function rowElement(row) {
      var tr = trs.get(row.name);
      if (!tr) {
        tr = el("tr", "lw-row");
        tr.setAttribute("data-run", row.name);
        var td = el("td", "lw-sel"), cb = el("input");
        cb.type = "checkbox";
        cb.addEventListener("click", function (ev) { toggle(row.name, cb.checked, ev.shiftKey); });
        td.appendChild(cb);
        tr.appendChild(td);
        var pin = el("button", "lw-pinbtn");
        pin.type = "button";
        pin.addEventListener("click", function () {
          if (s.pinned.has(row.name)) s.pinned.delete(row.name); else s.pinned.add(row.name);
          if (store) store.setItem("loopwise.pinned", JSON.stringify(Array.from(s.pinned)));
          render(true);
        });
        var pt = el("td", "lw-pin");
        pt.appendChild(pin);
        tr.appendChild(pt);
        var sw = el("td", "lw-swatch-col");
        sw.appendChild(el("span", "lw-swatch"));
        tr.appendChild(sw);
        var nameTd = el("td", "lw-name"), link = el("a", null, row.name);
        link.href = runPage(row.name);
        nameTd.appendChild(link);
        tr.appendChild(nameTd);
        tr._cols = "";
        trs.set(row.name, tr);
      }
      var r = s.byName[row.name] || row, cells = tr.childNodes;
      var checked = s.selected.has(r.name);
      if (cells[0].firstChild.checked !== checked) cells[0].firstChild.checked = checked;
      tr.classList.toggle("lw-selected", checked);
      var pinText = s.pinned.has(r.name) ? "\u2605" : "\u2606";
      if (cells[1].firstChild.textContent !== pinText) cells[1].firstChild.textContent = pinText;
      cells[1].firstChild.title = s.pinned.has(r.name) ? "unpin" : "pin to the top";
      cells[2].firstChild.style.background = colorOf(r.name);
      damagedMark(cells[3], r.damaged || []);
      var cols = s.columns.join("\n");
      if (tr._cols !== cols) {  // the column set changed: rebuild the value cells
        while (tr.childNodes.length > 4) tr.removeChild(tr.lastChild);
        s.columns.forEach(function (id) {
          var td = el("td", id === "status" ? "lw-status-cell" : "lw-v");
          td.setAttribute("data-col", id);
          tr.appendChild(td);
        });
        tr._cols = cols;
      }
      s.columns.forEach(function (id, i) {
        var td = cells[4 + i], t = text(r, id);
        if (td.textContent !== t) td.textContent = t;
        if (id === "status") {
          td.className = "lw-status-cell lw-" + r.status;
          if (td.title !== (r.problem || "")) td.title = r.problem || "";  // the damaged file
        }
      });
      return tr;
    }
    /* a run whose store has series failing their checksum: a marker by its name, the
     * damaged series (left out of its values) and the file in its tooltip */
    function damagedMark(td, damaged) {
      var mark = td.querySelector(".lw-damaged-mark");
      if (!damaged.length) { if (mark) mark.remove(); return; }
      if (!mark) { mark = el("span", "lw-damaged-mark", "damaged"); td.appendChild(mark); }
      var tip = "left out of this row (failed their checksum):\n" + damaged.join("\n");
      if (mark.title !== tip) {
        mark.title = tip;
        mark.setAttribute("aria-label", damaged.length + " damaged series: " + damaged.join("; "));
      }
    }
    function groupElement(item) {
      var key = "\u0000group:" + item.group;
      var tr = trs.get(key);
      if (!tr) {
        tr = el("tr", "lw-group-row");
        var td = el("td");
        td.colSpan = 100;
        tr.appendChild(td);
        trs.set(key, tr);
      }
      var td0 = tr.firstChild;
      var label = s.colorKey + " = " + item.group + "  (" + item.count + " runs)";
      if (td0.textContent !== label) {
        td0.textContent = "";
        var sw = el("span", "lw-swatch");
        sw.style.background = coloring ? coloring.color(item.value) : "#ccc";
        td0.appendChild(sw);
        td0.appendChild(document.createTextNode(label));
      }
      return tr;
    }
    function runPage(name) {
      var q = new URLSearchParams({ view: "run", run: name });  // the run's page (loopwise.js)
      if (token) q.set("token", token);
      return "./?" + q.toString();
    }

    var frame = 0;
    function render(recompute) {
      if (recompute) computeView();
      // as tall as its rows, up to 440 px (then it scrolls)
      var fit = Math.min(440, (s.view.length + 1) * ROW_H + 4) + "px";
      if (wrap.style.height !== fit) wrap.style.height = fit;
      var height = wrap.clientHeight || 440;
      var first = Math.max(0, Math.floor(wrap.scrollTop / ROW_H) - OVERSCAN);
      var last = Math.min(s.view.length, Math.ceil((wrap.scrollTop + height) / ROW_H) + OVERSCAN);
      topPad.style.height = (first * ROW_H) + "px";
      bottomPad.style.height = ((s.view.length - last) * ROW_H) + "px";
      var wanted = [], keep = new Set();
      for (var i = first; i < last; i++) {
        var it = s.view[i];
        var node = it.row ? rowElement(it.row) : groupElement(it);
        wanted.push(node);
        keep.add(node);
      }
      trs.forEach(function (node, name) {  // rows scrolled away leave the DOM
        if (!keep.has(node)) { if (node.parentNode) node.parentNode.removeChild(node); trs.delete(name); }
      });
      var cursor = topPad.nextSibling;
      wanted.forEach(function (node) {  // move a row only when it is out of place (focus stays)
        if (node !== cursor) tbody.insertBefore(node, cursor);
        else cursor = cursor.nextSibling;
      });
      count.textContent = s.shown + " of " + s.rows.length + " runs \u00b7 " + s.selected.size + " selected";
      var allBox = document.getElementById("lw-select-all");
      if (allBox) {
        var rowsShown = s.view.filter(function (x) { return x.row; });
        allBox.checked = rowsShown.length > 0 && rowsShown.every(function (x) { return s.selected.has(x.row.name); });
      }
    }
    wrap.addEventListener("scroll", function () {
      if (frame) return;
      frame = requestAnimationFrame(function () { frame = 0; render(false); });
    });

    // -- selection ---------------------------------------------------------------------------
    function toggle(name, on, range) {
      var names = s.view.filter(function (x) { return x.row; }).map(function (x) { return x.row.name; });
      if (range && s.anchor !== null && names.indexOf(s.anchor) >= 0) {
        var a = names.indexOf(s.anchor), b = names.indexOf(name);
        names.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (n) {
          if (on) s.selected.add(n); else s.selected.delete(n);
        });
      } else if (on) s.selected.add(name); else s.selected.delete(name);
      s.anchor = name;
      selectionChanged();
    }
    function selectionChanged() {
      render(false);
      drawPlots();
      var lw = window.__loopwise;
      if (lw && lw.select) {
        lw.select(s.rows.filter(function (r) { return s.selected.has(r.name); })
                   .slice(0, OVERLAY_MAX).map(function (r) { return r.name; }));
      }
    }

    // -- parallel coordinates and scatter ---------------------------------------------------------
    function metricValue(r) {
      var m = s.metrics.filter(function (x) { return x.key === s.metric; })[0];
      if (!m) return undefined;
      return m.mode ? r.best[m.key] : r.final[m.key];
    }
    function axisScale(values, lo, hi) {
      var nums = values.filter(isNum);
      var numeric = nums.length > 0 && values.every(function (v) { return v === undefined || v === null || isNum(v); });
      if (numeric) {
        var a = Math.min.apply(null, nums), b = Math.max.apply(null, nums);
        var log = a > 0 && b / a > 100;
        var f = log ? Math.log : function (x) { return x; };
        var span = f(b) - f(a);
        if (!span) {  // one value: in the middle
          return { numeric: true, log: false, ticks: [[a, (lo + hi) / 2]], pos: function (v) {
            return isNum(v) ? (lo + hi) / 2 : null; } };
        }
        return { numeric: true, log: log, ticks: [[a, lo], [b, hi]], pos: function (v) {
          return isNum(v) ? lo + (hi - lo) * (f(v) - f(a)) / span : null; } };
      }
      var cats = Array.from(new Set(values.map(C.keyText))).sort();
      var step = cats.length > 1 ? (hi - lo) / (cats.length - 1) : 0;
      return { numeric: false, ticks: cats.map(function (c, i) { return [c, cats.length > 1 ? lo + step * i : (lo + hi) / 2]; }),
               pos: function (v) { var i = cats.indexOf(C.keyText(v)); return i < 0 ? null : cats.length > 1 ? lo + step * i : (lo + hi) / 2; } };
    }
    function plotted() {
      return s.rows.filter(function (r) { return s.selected.has(r.name); });
    }
    function clearSvg(node) { while (node.firstChild) node.removeChild(node.firstChild); }
    function drawParcoords(runs) {
      clearSvg(pcSvg);
      var width = Math.max(360, (pcBox.clientWidth || 600) - 12), height = 300;
      pcSvg.setAttribute("width", width);
      pcSvg.setAttribute("height", height);
      pcSvg.setAttribute("viewBox", "0 0 " + width + " " + height);
      var axes = s.pcKeys.map(function (k) { return { label: k, get: function (r) { return r.config[k]; } }; });
      if (s.metric) axes.push({ label: s.metric + (metricMode() ? " (best)" : " (final)"), get: metricValue, metric: true });
      if (!runs.length || axes.length < 2) {
        pcSvg.appendChild(svg("text", { x: 10, y: 30, class: "lw-hint" }, runs.length ? "choose two or more axes" : "select runs in the table to compare them here"));
        return;
      }
      var top = 40, bottom = height - 16, left = 60, right = width - 60;
      var dx = axes.length > 1 ? (right - left) / (axes.length - 1) : 0;
      axes.forEach(function (ax, i) {
        ax.x = left + dx * i;
        ax.scale = axisScale(runs.map(ax.get), bottom, top);
      });
      var lines = svg("g", { class: "lw-lines" });
      pcSvg.appendChild(lines);
      runs.forEach(function (r) {
        var d = "", pen = false;
        axes.forEach(function (ax) {
          var y = ax.scale.pos(ax.get(r));
          if (y === null) { pen = false; return; }
          d += (pen ? "L" : "M") + ax.x.toFixed(1) + "," + y.toFixed(1);
          pen = true;
        });
        var p = svg("path", { d: d, class: "lw-line", stroke: colorOf(r.name), "data-run": r.name });
        p.appendChild(svg("title", {}, r.name));
        lines.appendChild(p);
      });
      axes.forEach(function (ax, i) {  // labels on two rows, so neighbours do not overlap
        var g = svg("g", { class: "lw-axis" });
        g.appendChild(svg("line", { x1: ax.x, x2: ax.x, y1: top, y2: bottom }));
        var anchor = ax.x < left + 1 ? "start" : ax.x > right - 1 ? "end" : "middle";
        g.appendChild(svg("text", { x: ax.x, y: i % 2 ? 26 : 12, "text-anchor": anchor, class: "lw-axis-label" + (ax.metric ? " lw-metric-axis" : "") }, ax.label));
        ax.scale.ticks.slice(0, 12).forEach(function (t) {
          g.appendChild(svg("text", { x: ax.x + 4, y: t[1] + 4, class: "lw-tick" }, ax.scale.numeric ? fmt(t[0]) : t[0]));
        });
        pcSvg.appendChild(g);
      });
    }
    function metricMode() {
      var m = s.metrics.filter(function (x) { return x.key === s.metric; })[0];
      return m ? m.mode : null;
    }
    function drawScatter(runs) {
      clearSvg(scSvg);
      var width = Math.max(320, (scBox.clientWidth || 480) - 12), height = 300;
      scSvg.setAttribute("width", width);
      scSvg.setAttribute("height", height);
      scSvg.setAttribute("viewBox", "0 0 " + width + " " + height);
      if (!runs.length || !s.scatterX || !s.metric) {
        scSvg.appendChild(svg("text", { x: 10, y: 30, class: "lw-hint" }, "select runs in the table to see " + (s.metric || "a metric") + " against a config key"));
        return;
      }
      var left = 64, right = width - 16, top = 16, bottom = height - 40;
      var xs = axisScale(runs.map(function (r) { return r.config[s.scatterX]; }), left, right);
      var ys = axisScale(runs.map(metricValue), bottom, top);
      var g = svg("g", { class: "lw-axis" });
      g.appendChild(svg("line", { x1: left, x2: right, y1: bottom, y2: bottom }));
      g.appendChild(svg("line", { x1: left, x2: left, y1: top, y2: bottom }));
      xs.ticks.slice(0, 12).forEach(function (t) {
        g.appendChild(svg("text", { x: t[1], y: bottom + 14, "text-anchor": "middle", class: "lw-tick" }, xs.numeric ? fmt(t[0]) : t[0]));
      });
      ys.ticks.slice(0, 12).forEach(function (t) {
        g.appendChild(svg("text", { x: left - 4, y: t[1] + 4, "text-anchor": "end", class: "lw-tick" }, ys.numeric ? fmt(t[0]) : t[0]));
      });
      g.appendChild(svg("text", { x: (left + right) / 2, y: height - 6, "text-anchor": "middle", class: "lw-axis-label" }, s.scatterX + (xs.log ? " (log)" : "")));
      g.appendChild(svg("text", { x: 12, y: (top + bottom) / 2, "text-anchor": "middle", class: "lw-axis-label",
                                  transform: "rotate(-90 12 " + (top + bottom) / 2 + ")" }, s.metric + (metricMode() ? " (best)" : " (final)")));
      scSvg.appendChild(g);
      var dots = svg("g", { class: "lw-dots" });
      runs.forEach(function (r) {
        var x = xs.pos(r.config[s.scatterX]), y = ys.pos(metricValue(r));
        if (x === null || y === null) return;
        if (!xs.numeric) x += ((C.hash(r.name) % 21) - 10) * 0.8;  // jitter within a category
        var c = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 4, fill: colorOf(r.name), class: "lw-dot-run", "data-run": r.name });
        c.appendChild(svg("title", {}, r.name + ": " + fmt(r.config[s.scatterX]) + ", " + fmt(metricValue(r))));
        dots.appendChild(c);
      });
      scSvg.appendChild(dots);
    }
    function drawPlots() {
      var runs = plotted();
      drawParcoords(runs);
      drawScatter(runs);
    }

    // -- events ------------------------------------------------------------------------------
    function applyWhere() {
      s.where = whereBox.value;
      load().catch(function () { /* shown in lw-where-error */ });
    }
    whereBox.addEventListener("keydown", function (ev) { if (ev.key === "Enter") applyWhere(); });
    whereBox.addEventListener("change", applyWhere);
    searchBox.addEventListener("input", function () { s.search = searchBox.value; render(true); });
    colorSel.addEventListener("change", function () {
      s.colorKey = colorSel.value;
      updateColoring();
      render(true);
      drawPlots();
      if (window.__loopwise && window.__loopwise.redraw) window.__loopwise.redraw();
    });
    groupBox.addEventListener("change", function () { s.group = groupBox.checked; render(true); });
    metricSel.addEventListener("change", function () { s.metric = metricSel.value; drawPlots(); });
    xSel.addEventListener("change", function () { s.scatterX = xSel.value; drawPlots(); });
    window.addEventListener("resize", function () { render(false); drawPlots(); });

    // -- data --------------------------------------------------------------------------------
    function load() {
      var q = s.where.trim() ? "?where=" + encodeURIComponent(s.where) : "";
      return api("/api/table" + q).then(function (body) {
        whereErr.textContent = "";
        var byName = {};
        body.rows.forEach(function (r) { byName[r.name] = r; });
        var known = JSON.stringify(body.config_keys) + JSON.stringify(body.metrics);
        var changedKeys = known !== s._known;
        s._known = known;
        s.rows = body.rows;
        s.byName = byName;
        C.setRuns(body.rows);  // every run of the root: each run's own colour
        s.matched = body.matched;
        s.configKeys = body.config_keys;
        s.metrics = body.metrics;
        if (!s.columns) s.columns = defaultColumns();
        if (!s.metric && s.metrics.length) s.metric = (s.metrics.filter(function (m) { return m.mode; })[0] || s.metrics[0]).key;
        var diff = differing();
        if (!s.pcKeys) s.pcKeys = diff.slice(0, 6);
        if (!s.scatterX && s.configKeys.length) {
          s.scatterX = diff.filter(function (k) { return s.rows.some(function (r) { return isNum(r.config[k]); }); })[0] || diff[0] || s.configKeys[0];
        }
        if (changedKeys) drawControls();
        if (!thead.firstChild || changedKeys) drawHead();
        updateColoring();
        render(true);
        drawPlots();
        if (s.firstRender === null) {
          s.firstRender = performance.now();
          if (s.selected.size) selectionChanged();
        }
      }, function (err) {
        whereErr.textContent = String(err.message || err);
        throw err;
      });
    }
    var busy = false;
    function poll() {
      if (busy) return;
      busy = true;
      load().catch(function () { /* the message is on the page */ }).then(function () { busy = false; });
    }
    load().catch(function () { /* the message is on the page */ });
    setInterval(poll, (opts && opts.pollMs) || POLL_MS);
    return {
      state: s,
      firstRender: function () { return s.firstRender; },
      reload: load,
      select: function (names) { s.selected = new Set(names); selectionChanged(); }
    };
  }

  function start() {
    var root = document.getElementById("lw-runs-home");
    if (!root || new URLSearchParams(window.location.search).get("view") === "run") return;
    window.LoopwiseRunsTable = RunsTable(root, { plotsRoot: document.getElementById("lw-runs-plots") });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
