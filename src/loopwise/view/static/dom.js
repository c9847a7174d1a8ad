/* loopwise front end: DOM helpers. Every name and message from a run is put in the page with
 * textContent, never parsed as HTML. */
(function (LW) {
  "use strict";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  /* A table of rows (cells through LW.fmt); a column named in `wide` may wrap, others do not. */
  function table(columns, rows, wide) {
    var t = el("table", "lw-table");
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", null, c)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (v, i) {
        tr.appendChild(el("td", wide && wide.indexOf(columns[i]) >= 0 ? "lw-wrap" : null, LW.fmt(v)));
      });
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
  LW.el = el;
  LW.clear = clear;
  LW.table = table;
  LW.flatten = flatten;
})(window.LW = window.LW || {});
