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
"""

from __future__ import annotations

from collections.abc import Sequence

from loopwise.utils.text import printable

RULES = ("columns", "frame", None)


def render_table(rows: Sequence[Sequence[object]], *, header: Sequence[object] | None = None,
                 align: str = "", min_widths: Sequence[int] = (), rule: str | None = "columns",
                 gap: int = 2) -> str:
    """``rows`` (and ``header``) as aligned text lines joined by newlines.

    ``align`` has one letter per column, ``l`` (left, the default for a column it does not
    cover) or ``r`` (right). Every row must have as many cells as the header (or the first row).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be 'columns', 'frame' or None, got {rule!r}")
    if type(gap) is not int or gap < 1:
        raise ValueError(f"gap must be an int >= 1 (spaces between columns), got {gap!r}")
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
    sides = [align[i] if i < len(align) else "l" for i in range(n)]
    space = " " * gap

    def line(row: Sequence[str]) -> str:
        cells = [c.rjust(w) if side == "r" else c.ljust(w)
                 for c, w, side in zip(row, widths, sides, strict=True)]
        return space.join(cells).rstrip()

    lines = [line(row) for row in table]
    if header is not None and rule == "columns":
        lines.insert(1, space.join("-" * w for w in widths))
    elif header is not None and rule == "frame":
        full = "=" * (sum(widths) + gap * (n - 1))
        lines.insert(1, full)
        lines.append(full)
    return "\n".join(lines)
