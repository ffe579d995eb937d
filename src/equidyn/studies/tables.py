"""The two tables every model-grid study writes, built once with each study's columns passed in.

* :func:`runs_table` — one row per evaluated checkpoint file (``eval_<checkpoint>.json``): the run keys, its
  scores, EE and lineage (``levels.csv``, ``rotation_benchmark.csv``, ``superres.csv``);
* :func:`summary_table` — one row per group of seeds: the mean and 95 % CI over seeds (Student's t,
  :func:`equidyn.stats.ci_columns`) of the study's metrics, the seed count and the lineage of every seed, then
  the study's own columns and, with baseline files, the baseline and skill columns
  (:mod:`equidyn.studies.baseline_tables`).

What differs between the studies (the columns, their order, the published numbers set beside them) is an argument;
what they share (reading the records, the seed statistics, the lineage joins, the write) is written here only.
Top-level imports stay light: pandas is imported by the table jobs alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_csv
from ..lineage import LINEAGE_COLUMNS
from ..runs import checkpoint_of
from .common import read_json

#: record fields that a table names differently (the checkpoint comes from the file name)
_FIELDS = {"epoch": "checkpoint_epoch"}


def _row(
    path: str,
    columns: Sequence[str],
    scores: Mapping[str, tuple[str, str]],
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    record = read_json(path)
    row: dict[str, Any] = {}
    for column in columns:
        if column in scores:
            split, metric = scores[column]
            row[column] = record["scores"][split][metric]
        elif column == "checkpoint":
            row[column] = checkpoint_of(Path(path).stem, "eval_")
        else:
            row[column] = record[_FIELDS.get(column, column)]
    if derived is not None:
        row.update(derived(record))
    return {**row, **{k: record[k] for k in LINEAGE_COLUMNS}}


def runs_table(
    eval_files: list[str],
    out: str | os.PathLike,
    *,
    columns: Sequence[str],
    scores: Mapping[str, tuple[str, str]],
    sort_by: list[str],
    join: Callable[[Any], Any] | None = None,
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
):
    """One row per evaluation file: ``columns`` in order (a column named in ``scores`` is ``(split, metric)`` of the
    record's scores; ``checkpoint`` is read from the file name, ``epoch`` is the checkpoint's epoch), then the
    columns ``derived(record)`` reads from each record, then those that ``join(df)`` adds, then the lineage;
    sorted by ``sort_by``."""
    import pandas as pd

    df = pd.DataFrame([_row(path, columns, scores, derived) for path in eval_files])
    if join is not None:
        df = join(df)
    added = [c for c in df.columns if c not in columns and c not in LINEAGE_COLUMNS]
    df = df[[*columns, *added, *LINEAGE_COLUMNS]].sort_values(sort_by).reset_index(drop=True)
    write_csv(df, out)
    return df


def summary_table(
    table_csv: str | os.PathLike,
    out: str | os.PathLike,
    *,
    by: list[str],
    metrics: Sequence[str],
    columns: Sequence[str],
    first: Sequence[str] = ("params",),
    derive: Callable[[Any], None] | None = None,
    sort_by: str | None = None,
    baselines: list[str] | None = None,
    join_baselines: Callable[[Any, list[str]], Any] | None = None,
):
    """Per group of ``by``: ``first`` (a value shared by the group's seeds), ``n_seeds``, the lineage of every seed
    (``;``-joined) and ``<metric>_mean``/``_ci_low``/``_ci_high`` of each of ``metrics``; ``derive(summary)`` adds
    the study's own columns in place; the table keeps ``columns`` in order, sorted by ``sort_by`` when given; with
    ``baselines``, ``join_baselines(summary, baselines)`` adds the baseline and skill columns."""
    import pandas as pd

    from ..stats import ci_columns

    df = pd.read_csv(table_csv)
    joined = lambda s: ";".join(sorted(set(map(str, s))))  # noqa: E731
    grouped = df.groupby(by)
    summary = grouped.agg(
        **{c: (c, "first") for c in first},
        n_seeds=("seed", "nunique"),
        **{c: (c, joined) for c in LINEAGE_COLUMNS},
    )
    for metric in metrics:
        summary = summary.join(ci_columns(grouped[metric], metric))
    summary = summary.reset_index()
    if derive is not None:
        derive(summary)
    summary = summary[list(columns)]
    if sort_by is not None:
        summary = summary.sort_values(sort_by).reset_index(drop=True)
    if baselines:
        if join_baselines is None:
            raise ValueError("baseline files given for a table that has no baseline columns")
        summary = join_baselines(summary.copy(), baselines)
    write_csv(summary, out)
    return summary
