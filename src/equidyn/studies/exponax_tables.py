"""The exponax study's tables (issue 24), built with the shared table code (:mod:`equidyn.studies.tables`).

* ``exponax.csv`` — one row per (model, alpha, flow, seed, checkpoint): parameters, FLOPs per forward, test RMSE
  and MAE, the C4 EE the evaluation measures, the EE under D4's reflections (``mirror_ee.json``: no arm imposes
  them), the collapse diagnostic (skill over the model's own skip, correction ratio), the flow's data EE and the
  lineage.
* ``exponax_summary.csv`` — per (model, alpha, flow, checkpoint): the mean and 95 % CI over seeds of test RMSE,
  EE, mirror EE, skill over the skip and correction ratio, and beside them both trivial forecasts of the same test
  windows (persistence, linear extrapolation) with the skill over each and its CI, and ``beats_trivial_95``.

Comparisons between arms are the claims table's (:func:`equidyn.studies.claims.exponax_claims`).
"""

from __future__ import annotations

import os
from typing import Any

from ..lineage import LINEAGE_COLUMNS
from ..runs import CHECKPOINTS
from . import tables
from .common import read_json
from .exponax_study import DESCRIPTION

#: ``exponax.csv``'s columns before the derived ones, the flow's data EE and the lineage
TABLE_COLUMNS = (
    "model",
    "alpha",
    "flow",
    "seed",
    "checkpoint",
    "epoch",
    "params",
    "test_rmse",
    "test_mae",
    "ee",
    "ee_rel",
)
TABLE_SCORES = {"test_rmse": ("test", "rmse"), "test_mae": ("test", "mae")}
#: the flow's data EE columns joined from ``exponax_data_equivariance.csv`` (relative: the flows differ in scale)
DATA_EE_COLUMNS = ("data_ee_c4_rel", "data_ee_d4_rel", "data_ee_c4_rel_first_frame", "data_ee_d4_rel_first_frame")
#: the summary's per-seed statistics, in order
SUMMARY_METRICS = ("test_rmse", "ee_rel", "ee_mirror_rel", "skill_vs_skip", "correction_ratio")
SORT = ["model", "alpha", "flow", "seed", "checkpoint"]


def _diagnostics(record: dict[str, Any]) -> dict[str, float]:
    """FLOPs per forward and the collapse diagnostic on the test split (:mod:`equidyn.measures.correction`)."""
    test = record["correction"]["test"]
    return {
        "flops_per_sample": record["flops_per_sample"],
        "correction_ratio": test["correction_ratio"],
        "skill_vs_skip": test["skill_vs_skip"],
    }


def mirror_rows(mirror_files: list[str]):
    """One row per (run, checkpoint) of the ``mirror_ee.json`` files: ``ee_mirror`` (1/T) and ``ee_mirror_rel``."""
    import pandas as pd

    rows = []
    for path in mirror_files:
        record = read_json(path)
        keys = {k: record[k] for k in DESCRIPTION.keys}
        for checkpoint in CHECKPOINTS:
            ee = record[checkpoint]
            rows.append({**keys, "checkpoint": checkpoint, "ee_mirror": ee["ee"], "ee_mirror_rel": ee["ee_rel"]})
    return pd.DataFrame(rows)


def runs_table(
    eval_files: list[str],
    mirror_files: list[str],
    data_table_path: str | os.PathLike,
    out: str | os.PathLike,
):
    """``exponax.csv``: one row per evaluated checkpoint, with its mirror EE and its flow's data EE."""
    import pandas as pd

    data = pd.read_csv(data_table_path)[["flow", *DATA_EE_COLUMNS]]
    mirrors = mirror_rows(mirror_files)

    def join(df):
        on = [*DESCRIPTION.keys, "checkpoint"]
        merged = df.merge(mirrors, on=on, how="left", validate="one_to_one")
        if merged["ee_mirror"].isna().any():
            missing = merged.loc[merged["ee_mirror"].isna(), on].to_dict("records")[:3]
            raise ValueError(f"no mirror EE for {len(missing)}+ evaluated checkpoints, e.g. {missing}")
        return merged.merge(data, on="flow", how="left")

    return tables.runs_table(
        eval_files, out, columns=TABLE_COLUMNS, scores=TABLE_SCORES, sort_by=SORT, join=join, derived=_diagnostics
    )


def summary_table(exponax_csv: str | os.PathLike, out: str | os.PathLike, baselines: list[str] | None = None):
    """``exponax_summary.csv``: per (model, alpha, flow, checkpoint), the seed mean and 95 % CI (Student's t) of
    :data:`SUMMARY_METRICS`; with ``baselines`` (one file per flow, :mod:`equidyn.studies.baselines`) both trivial
    forecasts, the skill over each with its CI and ``beats_trivial_95``."""
    from .baseline_tables import join_exponax

    by = ["model", "alpha", "flow", "checkpoint"]
    first = ("params", "flops_per_sample", *DATA_EE_COLUMNS)
    stats = [f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "ci_low", "ci_high")]
    return tables.summary_table(
        exponax_csv,
        out,
        by=by,
        metrics=SUMMARY_METRICS,
        first=first,
        columns=[*by, "params", "flops_per_sample", "n_seeds", *stats, *DATA_EE_COLUMNS, *LINEAGE_COLUMNS],
        baselines=baselines,
        join_baselines=join_exponax,
    )
