"""docs/benchmarks.png: the main ratios of a bench run (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from _timing import Table

PANELS = [
    ("entry_tiny", "Per step, tiny model (x plain loop)", 1.05),
    ("entry_mlp", "Per step, MLP 784-512-512-10 (x plain loop)", 1.05),
    ("bar", "Bar with 3 metrics, tight loop (x bare loop)", None),
    ("store_rate", "Scalars/s to disk (x csv.writer)", None),
    ("read", "Read + downsample (x slower than loopwise)", 10.0),
    ("ui_peers", "First chart, 1M points, headless Chromium (x loopwise dashboard's time)",
     None),
]


def draw(path: Path, tables: dict[str, Table]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(tables[key], title, goal) for key, title, goal in PANELS if key in tables]
    if not panels:
        return
    heights = [len(t.rows) for t, _, _ in panels]
    fig = plt.figure(figsize=(9, 1.0 + 0.3 * sum(h + 2 for h in heights)))
    grid = fig.add_gridspec(len(panels), 1, height_ratios=[h + 2 for h in heights])
    for i, (table, title, goal) in enumerate(panels):
        ax = fig.add_subplot(grid[i])
        rows = [r for r in table.rows if r.ratio() is not None]
        names = [r.name for r in rows]
        ratios = [r.ratio() for r in rows]
        med = [r[0] for r in ratios if r is not None]
        lo = [r[0] - r[1] for r in ratios if r is not None]
        hi = [r[2] - r[0] for r in ratios if r is not None]
        colors = ["tab:blue" if n.startswith(("Training", "Workflow", "fit", "Run.",
                                              "loopwise")) else "tab:gray" for n in names]
        ax.barh(range(len(rows)), med, xerr=[lo, hi], color=colors, capsize=2)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        if goal is not None:
            ax.axvline(goal, color="tab:green", linestyle="--", linewidth=0.8,
                       label=f"goal {goal:g}x")
            ax.legend(fontsize=7, loc="lower right")
        for y, v in enumerate(med):
            ax.text(v, y, f" {v:.3g}x", va="center", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("loopwise (blue) and its peers (grey); bars: median ratio, whiskers: min-max",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
