"""Has a run's learning curve flattened? The one check behind ``tables/convergence.csv`` and the scaling table.

The measured quantity is the *best-so-far* validation loss (the loss the ``best`` checkpoint is chosen by), because
a single noisy epoch would otherwise decide "flat" or "not flat":

    rel_change_last20 = (min v[: n − k] − min v) / min v[: n − k],   k = ceil(0.2 n),

the fraction by which the best validation loss still improved during the last ``k`` epochs (0: no improvement;
0.3: it fell by 30 %, so more epochs would have changed the comparison). The raw end-to-end change of the last
``k`` epochs, ``|v[-1] − v[n−k−1]| / v[n−k−1]``, is reported beside it to show how noisy the curve is. Early-stopped
runs count with the epochs they ran (patience stopped them *because* the loss no longer improved).

Plain: no study module is imported here, so any study's table can use it (:mod:`equidyn.studies.convergence`
reads every study's runs through the catalog).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..lineage import LINEAGE_COLUMNS
from ..runs import SUMMARY_FILE

TAIL_FRACTION = 0.2
FLAT_THRESHOLD = 0.05


def validation_column(columns) -> str:
    """The validation metric matching the training loss (``val_rmse`` for MSE tasks, ``val_mae`` for L1)."""
    for metric in ("rmse", "mae"):
        if f"train_{metric}" in columns and f"val_{metric}" in columns:
            return f"val_{metric}"
    raise ValueError(f"history has no train_/val_ metric pair: {list(columns)}")


def relative_change(values, tail: float = TAIL_FRACTION) -> tuple[float, float]:
    """``(best-so-far improvement, raw change)`` over the last ``ceil(tail·n)`` epochs (see the module docstring).

    Fewer than two epochs cannot show a trend: ``(nan, nan)``.
    """
    v = [float(x) for x in values]
    n = len(v)
    if n < 2:
        return math.nan, math.nan
    k = min(n - 1, max(1, math.ceil(tail * n)))
    before = min(v[: n - k])
    best = (before - min(v)) / before if before else math.nan
    ref = v[n - k - 1]
    raw = abs(v[-1] - ref) / abs(ref) if ref else math.nan
    return best, raw


def run_row(history_csv: str | os.PathLike, keys: dict[str, Any], threshold: float = FLAT_THRESHOLD) -> dict[str, Any]:
    """One row of the convergence table for one run directory's history (and its ``train.json`` lineage)."""
    import json

    import pandas as pd

    history = pd.read_csv(history_csv)
    column = validation_column(history.columns)
    best, raw = relative_change(history[column])
    summary_path = Path(history_csv).with_name(SUMMARY_FILE)
    meta, summary = {}, {}
    if summary_path.exists():
        with open(summary_path) as fh:
            summary = json.load(fh)
        meta = summary.get("meta", {})
    return {
        **keys,
        "n_epochs": len(history),
        "metric": column,
        "val_first": float(history[column].iloc[0]),
        "val_best": float(history[column].min()),
        "val_last": float(history[column].iloc[-1]),
        "rel_change_last20": best,
        "rel_change_last20_raw": raw,
        "flattened": bool(best < threshold) if not math.isnan(best) else False,
        "stopped_early": bool(summary.get("stopped_early", False)),
        **{k: meta.get(k, "unknown") for k in LINEAGE_COLUMNS},
    }
