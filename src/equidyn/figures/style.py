"""The house style and the saving of figures (atomic PDF + PNG, lineage footer).

Every figure is drawn from a results table, and its footer names that table and the lineage of the rows it shows
(git revision, config hashes, seeds, data checksums), so a figure pasted into a report can still be traced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ..atomic import atomic_path

RC = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,
}

# One colour per model family, stable across figures: strict = blue, relaxed = orange/red, none = grey.
MODEL_COLORS = {
    "convnet": "#7f7f7f",
    "mlp": "#bcbd22",
    "e2cnn": "#1f77b4",
    "rsteer": "#d62728",
    "rgroup": "#ff7f0e",
    "rpp": "#9467bd",
    "combo": "#8c564b",
    "clcnn": "#e377c2",
    "lift": "#17becf",
    "cnn3d": "#7f7f7f",
    "gcnn3d": "#1f77b4",
    "rgcnn3d": "#ff7f0e",
    "cnn": "#7f7f7f",
    "escnn": "#1f77b4",
    "cnn_aug": "#2ca02c",
    "convnet_aug": "#2ca02c",
    "rsteer_tied": "#9467bd",
}


def color(model: str) -> str:
    return MODEL_COLORS.get(model, "#333333")


def figure(ncols: int = 1, nrows: int = 1, width: float = 3.3, height: float = 2.6, **kw):
    plt.rcParams.update(RC)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes


def _short(values: Iterable[object], n: int = 3) -> str:
    vals = sorted({str(v)[:8] for v in values if pd.notna(v)})
    return ",".join(vals[:n]) + (f",+{len(vals) - n}" if len(vals) > n else "")


def lineage_footer(df: pd.DataFrame, source: str) -> str:
    parts = [f"source: {source}"]
    if "git_rev" in df:
        parts.append(f"git {_short(df['git_rev'])}")
    if "config_sha" in df:
        parts.append(f"config {_short(df['config_sha'])}")
    if "seed" in df:
        parts.append(f"seeds {_short(df['seed'], 10)}")
    if "data_sha" in df:
        parts.append(f"data {_short(df['data_sha'])}")
    return " · ".join(parts)


def save(fig, pdf_path: str | os.PathLike, footer: str | None = None) -> None:
    """Write ``pdf_path`` and the PNG beside it, atomically."""
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    if footer:
        fig.text(0.005, 0.003, footer, fontsize=5, color="#555555", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03 if footer else 0, 1, 1))
    for path in (pdf_path, pdf_path.with_suffix(".png")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    plt.close(fig)
