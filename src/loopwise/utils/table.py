"""loopwise's one text-table renderer: a pure function of rows, for every table loopwise prints
(``render_stats``, the model summary's layer table, ``loopwise runs``, health findings).

Every cell goes through :func:`loopwise.utils.text.printable`, so a metric or run name holding
an escape sequence shows as ``\\x1b...`` and cannot reach the terminal raw. Columns are padded
to their widest cell (at least ``min_widths``), separated by ``gap`` spaces, and each line is
stripped on the right. ``rule`` draws the line under the header:

* ``"columns"``: one run of ``-`` under each column (``render_stats``);
* ``"frame"``: a full-width ``=`` line under the header and after the last row (the layer
  table of the model summary);
* ``None``: no line.

``width`` fits the table to a terminal of that many columns: the widest columns are narrowed
first (never below ``min_fit`` characters, nor below their widest value up to 20 characters:
headers are cut before values), their long cells cut in the middle (``optimi...decay``, with
one ellipsis character), so both ends of a name stay readable; columns that still do not
fit are left out on the right, and a last line says how many.
``style(row, column, padded_text)`` wraps a padded cell (colour codes, say) after the widths
are fixed; row -1 is the header.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from loopwise.utils.text import printable
from loopwise.utils.validate import check_int

RULES = ("columns", "frame", None)
ELLIPSIS = "\u2026"


def shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to at most ``width`` characters (``abc\u2026xyz``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def fit_widths(widths: Sequence[int], total: int, *, gap: int = 2, min_fit: int = 8,
               floors: Sequence[int] = ()) -> tuple[list[int], int]:
    """Column widths whose sum (with gaps) is at most ``total``: the widest columns lose
    characters first, none goes below ``min_fit``, its own width or its ``floors`` entry;
    returns the widths of the columns kept and how many were left out on the right."""
    out = list(widths)
    bottom = [min(w, max(min_fit, floors[i] if i < len(floors) else 0))
              for i, w in enumerate(widths)]
    while out:
        need = sum(out) + gap * (len(out) - 1) - total
        if need <= 0:
            return out, len(widths) - len(out)
        floor = bottom[:len(out)]
        spare = sum(w - f for w, f in zip(out, floor, strict=True))
        if spare >= need:
            while need > 0:  # take one character at a time from the widest
                i = max(range(len(out)), key=lambda j: out[j] - floor[j])
                out[i] -= 1
                need -= 1
            return out, len(widths) - len(out)
        out = list(widths[:len(out) - 1])
    return [], len(widths)


def render_table(rows: Sequence[Sequence[object]], *, header: Sequence[object] | None = None,
                 align: str = "", min_widths: Sequence[int] = (), rule: str | None = "columns",
                 gap: int = 2, width: int | None = None, min_fit: int = 8,
                 style: Callable[[int, int, str], str] | None = None) -> str:
    """``rows`` (and ``header``) as aligned text lines joined by newlines.

    ``align`` has one letter per column, ``l`` (left, the default for a column it does not
    cover) or ``r`` (right). Every row must have as many cells as the header (or the first row).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be 'columns', 'frame' or None, got {rule!r}")
    gap = check_int(gap, what="gap", minimum=1, hint="spaces between columns")
    if set(align) - {"l", "r"}:
        raise ValueError(f"align takes one letter per column, 'l' or 'r'; got {align!r}")
    table = [[printable(c) for c in row] for row in ([header] if header is not None else [])]
    table += [[printable(c) for c in row] for row in rows]
    if not table:
        return ""
    n = len(table[0])
    for i, row in enumerate(table):
        if len(row) != n:
            raise ValueError(f"row {i} has {len(row)} cells, the table has {n} columns")
    widths = [max(len(row[i]) for row in table) for i in range(n)]
    widths = [max(w, min_widths[i]) if i < len(min_widths) else w for i, w in enumerate(widths)]
    left_out = 0
    if width is not None:
        width = check_int(width, what="width", minimum=1, hint="terminal columns")
        # a value keeps its width up to 20 characters; headers and long names are cut first
        body = table[0 if header is None else 1:]
        floors = [min(20, max((len(row[i]) for row in body), default=0)) for i in range(n)]
        widths, left_out = fit_widths(widths, width, gap=gap, min_fit=min_fit, floors=floors)
        widths = widths or [width]
        n = len(widths)
        table = [[shorten(c, w) for c, w in zip(row, widths, strict=False)] for row in table]
    sides = [align[i] if i < len(align) else "l" for i in range(n)]
    space = " " * gap
    first = 0 if header is None else 1

    def line(r: int, row: Sequence[str]) -> str:
        cells = [c.rjust(w) if side == "r" else c.ljust(w)
                 for c, w, side in zip(row, widths, sides, strict=True)]
        if style is not None:
            cells = [style(r - first, i, c) if c.strip() else c for i, c in enumerate(cells)]
        return space.join(cells).rstrip()

    lines = [line(r, row) for r, row in enumerate(table)]
    if header is not None and rule == "columns":
        lines.insert(1, space.join("-" * w for w in widths))
    elif header is not None and rule == "frame":
        full = "=" * (sum(widths) + gap * (n - 1))
        lines.insert(1, full)
        lines.append(full)
    if left_out:
        lines.append(f"({left_out} more column{'s' if left_out > 1 else ''} do not fit "
                     f"the {width} columns)")
    return "\n".join(lines)
