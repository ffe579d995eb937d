"""Learning curves of one study: the validation loss of every run against epoch, one panel per model (and alpha).

Every seed is drawn (not a mean band): a curve that has not flattened must be visible as itself. The y axis is
logarithmic, so a 5 % change has the same height at every loss level. Runs whose
best validation loss still improved by ≥ 5 % over the last 20 % of epochs (``flattened`` false in
``tables/convergence.csv``) are drawn dashed in red, and each panel's title counts the flat runs.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from . import style

#: run keys that do not split panels (they are the lines within one)
LINE_KEYS = ("seed", "level", "size", "fraction")


def _panel_keys(curves: pd.DataFrame) -> list[str]:
    return [k for k in ("flow", "model", "label", "alpha") if k in curves]


def learning_curves(study: str, curves: pd.DataFrame, table: pd.DataFrame, out: str | os.PathLike) -> None:
    """``curves``: history rows with the run keys and ``val``; ``table``: the study's convergence rows."""
    panel_keys = _panel_keys(curves)
    line_keys = [k for k in LINE_KEYS if k in curves]
    panels = list(curves.groupby(panel_keys, sort=True))
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = style.figure(ncols=ncols, nrows=nrows, width=2.4, height=2.0)
    flat = {tuple(r[k] for k in panel_keys + line_keys): r["flattened"] for _, r in table.iterrows()}
    metric = table["metric"].iloc[0].removeprefix("val_").upper()
    levels = sorted(curves["level"].unique()) if "level" in curves else [None]
    for ax, (name, g) in zip(axes.flat, panels, strict=False):
        name = name if isinstance(name, tuple) else (name,)
        n_flat = n_runs = 0
        for line, run in g.groupby(line_keys, sort=True):
            line = line if isinstance(line, tuple) else (line,)
            ok = bool(flat.get((*name, *line), False))
            n_flat, n_runs = n_flat + ok, n_runs + 1
            shade = (
                1.0 if levels[0] is None else 0.35 + 0.65 * levels.index(run["level"].iloc[0]) / max(1, len(levels) - 1)
            )
            base = style.color(str(run["model" if "model" in run else "label"].iloc[0]))
            ax.plot(
                run["epoch"],
                run["val"],
                color=base if ok else "#d62728",
                linestyle="-" if ok else "--",
                alpha=shade,
                linewidth=0.8,
            )
        label = " ".join(
            f"{k}={v}" if k in ("alpha", "flow") else str(v) for k, v in zip(panel_keys, name, strict=True)
        )
        ax.set_title(f"{label}\n{n_flat}/{n_runs} flat", fontsize=7)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {metric} (log)")
        # log: the flatness criterion is a *relative* change (5 %), which is the same height anywhere on a log axis;
        # on a linear one the first epochs (up to 100x the final loss in the laptop run) hide every tail
        if (g["val"] > 0).all():
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    lines = " × ".join(line_keys) + (" (darker: higher level)" if "level" in line_keys else "")
    fig.suptitle(
        f"{study}: validation {metric} per run (one line per {lines}); red dashed: best loss still fell ≥ 5 % "
        "in the last 20 % of epochs",
        fontsize=7,
    )
    style.save(fig, out, style.lineage_footer(table, f"runs/{study}/*/history.csv ({len(table)} runs)"))
