"""Did training converge? The relative change of the validation loss over the last epochs of every run.

A comparison of two models at a fixed epoch budget says which one *trains faster*, not which one *learns better*,
unless both curves have flattened. Issue 11 asks that in every compared run the validation loss changes by less
than 5 % over the last 20 % of epochs, and that the curves are shown. This module measures that from each run's
``history.csv`` and writes one row per run (its run keys, epochs, the change, the verdict and the run's lineage);
:mod:`equidyn.figures.convergence` draws the curves.

The measure itself (the relative change of the best validation loss over the last 20 % of epochs) lives in
:mod:`equidyn.studies.flatness`, which the scaling table uses too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import write_csv
from ..runs import HISTORY_FILE
from .flatness import FLAT_THRESHOLD, TAIL_FRACTION, relative_change, run_row, validation_column

__all__ = [
    "FLAT_THRESHOLD",
    "TAIL_FRACTION",
    "combine",
    "relative_change",
    "run_row",
    "study_table",
    "validation_column",
]


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
    if not runs:
        raise ValueError(
            f"{study}: the configuration trains no run (a scaling study whose parts are all saved_parts "
            "is gathered by its own target, scaling_all)"
        )
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
