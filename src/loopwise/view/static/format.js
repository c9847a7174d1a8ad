/* loopwise front end: the one number and time formatter of the charts' ticks, their legends
 * and the tables. Numbers keep at least 5 significant digits, integers are exact (grouped by
 * thousands from 10,000), values under 1e-3 or from 1e15 up read as 3.142e-4; times are UTC and
 * say so. Shared through window.LW (loaded first). */
(function (LW) {
  "use strict";

  function grouped(text) {  // "1234567.5" -> "1,234,567.5"; sign kept
    var sign = text.charAt(0) === "-" ? "-" : "", body = sign ? text.slice(1) : text;
    var dot = body.indexOf("."), whole = dot < 0 ? body : body.slice(0, dot);
    var frac = dot < 0 ? "" : body.slice(dot);
    return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + frac;
  }
  function expo(v, digits) {  // 3.0000e-4 -> 3e-4, 3.1416e-4 stays
    var s = v.toExponential(Math.max(digits - 1, 0)), parts = s.split("e");
    var mant = parts[0].indexOf(".") >= 0 ? parts[0].replace(/0+$/, "").replace(/\.$/, "") : parts[0];
    return mant + "e" + parts[1].replace("+", "");
  }
  /* One value, for a legend, a table or a header. */
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (v !== v) return "NaN";
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (Number.isInteger(v) && a < 1e21) {
      var text = BigInt(v).toString();
      return a >= 1e4 ? grouped(text) : text;
    }
    if (a >= 1e15 || a < 1e-3) return expo(v, 5);
    var s = String(Number(v.toPrecision(a >= 1e5 ? 8 : 5)));
    return a >= 1e4 ? grouped(s) : s;
  }
  /* The labels of one axis' ticks: one precision for all, enough that no two read alike. */
  function ticks(splits) {
    var vals = splits.filter(function (v) { return typeof v === "number" && isFinite(v); });
    if (!vals.length) return splits.map(function () { return ""; });
    if (vals.every(function (v) { return Number.isInteger(v); })) return splits.map(fmt);
    var max = 0, incr = Infinity;
    vals.forEach(function (v, i) {
      max = Math.max(max, Math.abs(v));
      if (i) { var d = Math.abs(v - vals[i - 1]); if (d > 0) incr = Math.min(incr, d); }
    });
    if (!isFinite(incr)) incr = max || 1;
    var out, tries = 0, digits;
    if (max >= 1e15 || max < 1e-3) {
      digits = Math.min(Math.max(Math.ceil(Math.log10(max / incr) - 1e-9) + 1, 1), 16);
      do {
        out = splits.map(function (v) { return v === 0 ? "0" : expo(v, digits); });
        digits++;
      } while (!distinct(out) && ++tries < 8);
      return out;
    }
    var dec = Math.min(Math.max(Math.ceil(-Math.log10(incr) - 1e-9), 0), 15);
    vals.forEach(function (v) { dec = Math.max(dec, decimals(v)); });  // 0.0025 needs 4, not 3
    do {
      out = splits.map(function (v) {
        var s = (Math.abs(v) < Math.pow(10, -dec) / 2 ? 0 : v).toFixed(dec);
        return max >= 1e4 ? grouped(s) : s;
      });
      dec++;
    } while (!distinct(out) && ++tries < 8 && dec <= 15);
    return out;
  }
  /* The decimals that write v exactly (to 10 significant digits), at most 15. */
  function decimals(v) {
    for (var d = 0; d < 15; d++) {
      var scaled = v * Math.pow(10, d);
      if (Math.abs(scaled - Math.round(scaled)) <= Math.abs(scaled) * 1e-10 + 1e-12) return d;
    }
    return 15;
  }
  function distinct(labels) {
    var seen = {};
    for (var i = 0; i < labels.length; i++) {
      if (seen[labels[i]]) return false;
      seen[labels[i]] = true;
    }
    return true;
  }
  /* A wall time (seconds since the epoch) as "2026-12-06 02:11:13 UTC"; {zone: false} leaves
   * " UTC" out, for a column whose header says it. */
  function stamp(t, opts) {
    if (typeof t !== "number" || !isFinite(t)) return "-";
    var text = new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19);
    return opts && opts.zone === false ? text : text + " UTC";
  }
  /* The labels of a wall-time axis (seconds), in UTC, 24-hour: the time, and the date on the
   * first tick and where the day changes; dates alone when ticks are a day or more apart. */
  function timeTicks(splits, incr) {
    var lastDay = null;
    return splits.map(function (t) {
      if (typeof t !== "number" || !isFinite(t)) return "";
      var iso = new Date(t * 1000).toISOString(), day = iso.slice(0, 10);
      if (incr >= 86400) return day;
      var time = incr < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
      var label = day !== lastDay ? time + "\n" + day : time;
      lastDay = day;
      return label;
    });
  }
  LW.fmt = fmt;
  LW.timeTicks = timeTicks;
  LW.ticks = ticks;
  LW.stamp = stamp;
})(window.LW = window.LW || {});
