"""Did training converge? The relative change of the validation loss over the last epochs of every run.

A comparison of two models at a fixed epoch budget says which one *trains faster*, not which one *learns better*,
unless both curves have flattened. Issue 11 asks that in every compared run the validation loss changes by less
than 5 % over the last 20 % of epochs, and that the curves are shown. This module measures that from each run's
``history.csv`` and writes one row per run (its run keys, epochs, the change, the verdict and the run's lineage);
:mod:`equidyn.figures.convergence` draws the curves.

The measured quantity is the *best-so-far* validation loss (the loss the ``best`` checkpoint is chosen by), because
a single noisy epoch would otherwise decide "flat" or "not flat":

    rel_change_last20 = (min v[: n − k] − min v) / min v[: n − k],   k = ceil(0.2 n),

the fraction by which the best validation loss still improved during the last ``k`` epochs (0: no improvement;
0.3: it fell by 30 %, so more epochs would have changed the comparison). The raw end-to-end change of the last
``k`` epochs, ``|v[-1] − v[n−k−1]| / v[n−k−1]``, is reported beside it to show how noisy the curve is. Early-stopped
runs count with the epochs they ran (patience stopped them *because* the loss no longer improved).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..atomic import write_csv
from ..lineage import LINEAGE_COLUMNS
from ..runs import HISTORY_FILE, SUMMARY_FILE

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


def histories(study: str, settings: dict[str, Any], root: str | os.PathLike) -> list[tuple[dict[str, Any], Path]]:
    """``(run keys, history path)`` of every run of the study's grid, paths formatted from the run keys."""
    from .catalog import study as study_module

    module = study_module(study)
    d = module.DESCRIPTION
    return [(dict(run), Path(root) / d.run_file(run, HISTORY_FILE)) for run in module.runs(settings)]


def study_table(
    study: str,
    settings: dict[str, Any],
    root: str | os.PathLike,
    out: str | os.PathLike,
    figure: str | os.PathLike | None = None,
    threshold: float = FLAT_THRESHOLD,
):
    """The convergence rows of one study (``analysis/convergence/<study>.csv``) and its learning-curves figure.

    ``settings`` is the study's config section (its grid), ``root`` is ``results/<name>``.
    """
    import pandas as pd

    runs = histories(study, settings, root)
    missing = [str(p) for _, p in runs if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{study}: {len(missing)} run(s) have no history, e.g. {missing[0]}")
    df = pd.DataFrame([{"study": study, **run_row(p, keys, threshold)} for keys, p in runs])
    write_csv(df, out)
    if figure is not None:
        from ..figures.convergence import learning_curves

        curves = []
        for keys, p in runs:
            h = pd.read_csv(p)
            h = h.assign(**{k: v for k, v in keys.items()}, val=h[validation_column(h.columns)])
            curves.append(h)
        learning_curves(study, pd.concat(curves, ignore_index=True), df, figure)
    return df


def combine(tables: list[str], out: str | os.PathLike):
    """``tables/convergence.csv``: every study's rows (run keys a study lacks are empty)."""
    import pandas as pd

    df = pd.concat([pd.read_csv(t) for t in tables], ignore_index=True)
    first = ["study", "model", "label", "flow", "alpha", "level", "seed"]
    cols = [c for c in first if c in df] + [c for c in df if c not in first]
    write_csv(df[cols], out)
    return df
