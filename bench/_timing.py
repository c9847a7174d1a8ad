"""The one timing and reporting helper of the bench scripts.

Every script measures its variants in interleaved rounds (one of each per round, the starting
variant rotating from round to round, so that a machine that drifts in speed moves all of them
together), keeps every round's sample, and reports the median with the min-max over the rounds
and each variant's ratio against the baseline measured in the same rounds (the median of the
per-round ratios, with their min-max). ``Table.print()`` writes the table for a person;
``emit()`` also writes the tables as JSON (``--json PATH``) for ``bench/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def best_of(fn: Callable[[], object], *, repeat: int = 5) -> float:
    """The fastest of ``repeat`` runs of ``fn``, in seconds (for one-off costs)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ns(seconds: float, n: int) -> float:
    return seconds / n * 1e9


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` as a variant: its wall time in seconds."""
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run


def interleaved(variants: Mapping[str, Callable[[], Any]], *, rounds: int,
                progress: bool = False) -> dict[str, list[Any]]:
    """Run every variant once per round, the first one rotating each round; every sample kept.

    A variant returns a number (or anything: a dict of measures, kept as is)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(variants)
    samples: dict[str, list[Any]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(variants[name]())
        if progress:
            print(f"  round {r + 1}/{rounds} done", flush=True)
    return samples


def fmt(x: float | None) -> str:
    """3 significant digits, thousands separated: 0.00123, 1.23, 123, 1,235, 1,234,568."""
    if x is None or x != x:
        return "-"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


@dataclass
class Row:
    name: str
    samples: list[float]
    ratios: list[float] = field(default_factory=list)
    note: str = ""

    def stat(self) -> tuple[float, float, float]:
        return statistics.median(self.samples), min(self.samples), max(self.samples)

    def ratio(self) -> tuple[float, float, float] | None:
        if not self.ratios:
            return None
        return statistics.median(self.ratios), min(self.ratios), max(self.ratios)


@dataclass
class Table:
    """One benchmark's table: a unit, a baseline row and the rows measured with it."""

    key: str
    title: str
    unit: str
    baseline: str | None = None
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ratio_label: str = "x baseline"

    def add(self, name: str, samples: Sequence[float], *, note: str = "",
            baseline: Sequence[float] | None = None, invert: bool = False) -> Row:
        """Add a row; its ratios are per round against ``baseline`` (the table's baseline row
        by default), ``baseline/sample`` when ``invert`` (how many times faster)."""
        if baseline is None and self.baseline is not None:
            base_row = self.find(self.baseline)
            baseline = base_row.samples if base_row is not None else None
        ratios: list[float] = []
        if baseline is not None:
            pairs = list(zip(samples, baseline))
            ratios = [(b / s if invert else s / b) for s, b in pairs if s and b]
        row = Row(name, [float(s) for s in samples], ratios, note)
        self.rows.append(row)
        return row

    def find(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.name == name), None)

    def markdown(self) -> str:
        lines = [f"| {'what':s} | {self.unit}, median | min-max | {self.ratio_label} "
                 f"(min-max) | note |", "|---|---|---|---|---|"]
        for row in self.rows:
            med, lo, hi = row.stat()
            r = row.ratio()
            ratio = "-" if r is None else f"{fmt(r[0])} ({fmt(r[1])}-{fmt(r[2])})"
            lines.append(f"| {row.name} | {fmt(med)} | {fmt(lo)}-{fmt(hi)} | {ratio} | "
                         f"{row.note} |")
        return "\n".join(lines)

    def print(self) -> None:
        print(f"\n{self.title}")
        width = max([len(row.name) for row in self.rows] + [10])
        print(f"{'':{width}s}  {self.unit + ' median':>18s}  {'min-max':>21s}  "
              f"{self.ratio_label:>22s}")
        for row in self.rows:
            med, lo, hi = row.stat()
            r = row.ratio()
            ratio = "" if r is None else f"{fmt(r[0])} ({fmt(r[1])}-{fmt(r[2])})"
            print(f"{row.name:{width}s}  {fmt(med):>18s}  {fmt(lo) + '-' + fmt(hi):>21s}  "
                  f"{ratio:>22s}  {row.note}")
        for note in self.notes:
            print(f"  {note}")

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "unit": self.unit,
                "baseline": self.baseline, "ratio_label": self.ratio_label,
                "notes": self.notes,
                "rows": [{"name": r.name, "samples": r.samples, "ratios": r.ratios,
                          "note": r.note} for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Table:
        table = cls(data["key"], data["title"], data["unit"], data.get("baseline"),
                    notes=list(data.get("notes", [])),
                    ratio_label=data.get("ratio_label", "x baseline"))
        for r in data["rows"]:
            table.rows.append(Row(r["name"], list(r["samples"]), list(r["ratios"]),
                                  r.get("note", "")))
        return table


def arguments(doc: str | None, *, rounds: int) -> argparse.ArgumentParser:
    """The options every script takes: --rounds, --quick (a short pass), --json PATH."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"interleaved rounds (default {rounds}; 3 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a short pass: fewer rounds, smaller sizes")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the tables as JSON (for bench/run_all.py)")
    parser.set_defaults(default_rounds=rounds)
    return parser


def rounds_of(args: argparse.Namespace) -> int:
    if args.rounds is not None:
        return int(args.rounds)
    return 3 if args.quick else int(args.default_rounds)


def emit(tables: Sequence[Table], args: argparse.Namespace,
         extra: Mapping[str, Any] | None = None) -> None:
    """Print every table; with ``--json PATH`` also write them there."""
    for table in tables:
        table.print()
    if getattr(args, "json", None):
        with open(args.json, "w") as fh:
            json.dump({"tables": [t.to_dict() for t in tables], "extra": dict(extra or {})},
                      fh, indent=1)
