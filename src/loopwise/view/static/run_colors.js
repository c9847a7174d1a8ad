/* loopwise run colours, the one place they are defined (the run table, the parallel
 * coordinates, the scatter and the metric charts all ask here).
 *
 * A run's own colour is derived from the run, not from the order runs are ticked: its place
 * among the root's runs by start time (oldest first, then name) in a palette of 24 distinct
 * colours, so any 20 runs started one after another (a sweep) never share a colour, and a run
 * keeps its colour as newer runs arrive (`setRuns(rows)`, called with every /api/runs or
 * /api/table answer). A run not (yet) in those rows falls back to a hash of its name. Deleting
 * an older run moves the later ones along the palette. When the run table colours by a config
 * key, `setColoring(fn)` installs that rule for every view: a discrete key maps its sorted
 * distinct values onto the palette (no repeat within 24 values), a numeric key with more
 * than 8 distinct values onto a continuous scale (viridis; log-spaced when all values are
 * positive and span more than 100x). */
(function () {
  "use strict";

  // 24 colours, far apart (Kelly's and Tableau's sets, minus near-whites and near-duplicates)
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#e7ba52",
                 "#ad494a", "#637939", "#ce6dbd", "#3182bd", "#f33e82", "#00a087",
                 "#b15928", "#6a3d9a", "#a6761d", "#1b9e77", "#0e3a5c", "#fb9a99"];
  // viridis at 9 stops
  var VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
                 [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44]];

  function hash(text) {  // FNV-1a, 32 bits
    var h = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h;
  }
  var place = null;  // run name -> its place among the root's runs by start, or null
  function started(r) {  // /api/table says start, /api/runs start_time
    var t = r.start != null ? r.start : r.start_time;
    return t == null ? Infinity : t;
  }
  /* rows: [{name, start or start_time}] of every run in the root (any order) */
  function setRuns(rows) {
    var sorted = rows.slice().sort(function (a, b) {
      var x = started(a), y = started(b);
      return x !== y ? (x < y ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
    place = {};
    sorted.forEach(function (r, i) { place[r.name] = i; });
  }
  function runColor(name) {
    var i = place && Object.prototype.hasOwnProperty.call(place, name) ? place[name]
      : hash(String(name));
    return PALETTE[i % PALETTE.length];
  }
  function hex(c) { return "#" + c.map(function (v) { return ("0" + Math.round(v).toString(16)).slice(-2); }).join(""); }
  /* t in [0, 1] -> a viridis colour */
  function scale(t) {
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    var x = t * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
    var a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return hex([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f]);
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function keyText(v) { return v === undefined ? "(none)" : typeof v === "string" ? v : JSON.stringify(v); }

  /* How to colour by one key: values = [value per run]. Returns
   * {kind: "continuous"|"discrete", color(value), legend: [[label, colour]], lo, hi, log}. */
  function coloring(values) {
    var distinct = {}, nums = [], all = true;
    values.forEach(function (v) {
      distinct[keyText(v)] = v;
      if (isNum(v)) nums.push(v); else if (v !== undefined && v !== null) all = false;
    });
    var names = Object.keys(distinct);
    if (all && nums.length && names.length > 8) {
      var lo = Math.min.apply(null, nums), hi = Math.max.apply(null, nums);
      var log = lo > 0 && hi / lo > 100;
      var f = log ? Math.log : function (x) { return x; };
      var span = f(hi) - f(lo) || 1;
      var color = function (v) { return isNum(v) ? scale((f(v) - f(lo)) / span) : "#bbbbbb"; };
      return { kind: "continuous", color: color, lo: lo, hi: hi, log: log,
               legend: [[String(lo), scale(0)], [String(hi), scale(1)]] };
    }
    names.sort(function (a, b) {
      var x = distinct[a], y = distinct[b];
      return isNum(x) && isNum(y) ? x - y : a < b ? -1 : a > b ? 1 : 0;
    });
    var index = {};
    names.forEach(function (n, i) { index[n] = i; });
    return { kind: "discrete", color: function (v) { return PALETTE[index[keyText(v)] % PALETTE.length]; },
             legend: names.map(function (n, i) { return [n, PALETTE[i % PALETTE.length]]; }) };
  }

  var current = null;  // name -> colour installed by the run table, or null
  window.LoopwiseColors = {
    PALETTE: PALETTE, hash: hash, runColor: runColor, setRuns: setRuns, scale: scale,
    coloring: coloring, keyText: keyText,
    setColoring: function (fn) { current = fn; },
    /* the colour of run `name` in every view */
    colorOf: function (name) {
      var c = current ? current(name) : null;
      return c || runColor(name);
    }
  };
})();
