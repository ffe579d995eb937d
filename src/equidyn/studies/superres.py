"""3-D turbulence super-resolution (W24 Exp. 5.5, BLOG): 16³ → 64³ with CNN, GCNN (O_h) and RGCNN (relaxed)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..lineage import LINEAGE_COLUMNS
from ..published import BLOG_MAE, BLOG_PARAMS, W24_MAE
from ..runs import BEST_CHECKPOINT, checkpoint_file
from . import common, tables
from .description import Run, StudyDescription

DESCRIPTION = StudyDescription(
    name="superres",
    run_pattern="{model}/alpha{alpha}/seed{seed}",
    store="data/superres/turbulence.zarr",
    examples=("slice_example.npz",),
    tables=("superres", "superres_summary"),
    measured_split="test",
    headline=("test", "mae"),
)

RUN_KEYS = ("group", "data", "training", "evaluation")


def data(settings: dict[str, Any], out: str | os.PathLike, threads: int | None = None) -> str:
    """Make the turbulence store from the configured source (offline solver or JHTDB)."""
    from ..data.superres_data import SuperResDataSettings, generate_superres_store

    return generate_superres_store(SuperResDataSettings.from_dict(settings["data"]), out, threads=threads)


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (model, alpha, seed) of the configured grid."""
    return common.model_alpha_seed_runs(section)


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run (see :func:`equidyn.studies.levels.run_settings`)."""
    entry = common.run_entry(section["models"], run["model"])
    return {**{k: section[k] for k in RUN_KEYS}, "model": entry}


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    from ..data.superres_data import SuperResDataSettings, load_from_settings
    from ..training.tasks import PairTask

    sr = load_from_settings(SuperResDataSettings.from_dict(settings["data"]), store)
    task = PairTask(
        inputs={"train": sr.train.inputs, "valid": sr.val.inputs, "test": sr.test.inputs},
        targets={"train": sr.train.targets, "valid": sr.val.targets, "test": sr.test.targets},
        scale=sr.scale,
        loss="l1",
    )
    return task, sr


def _spec(settings: dict[str, Any], sr: Any):
    """16³ → 64³: the coarse grid and the data's layouts, in the configured group."""
    coarse = tuple(sr.train.inputs.shape[-3:])
    return common.model_spec(settings["model"], str(sr.input_layout), str(sr.target_layout), coarse, settings["group"])


def save_slice_example(task, run_dir: Path, settings: dict[str, Any] | None = None) -> None:
    """Mid-plane (z) slices of the first test sample: last input time (coarse), target and prediction."""
    import numpy as np
    import torch

    from ..training import checkpoint

    model, _ = checkpoint.load_model(run_dir / checkpoint_file(BEST_CHECKPOINT))
    x, y = task.inputs["test"][:1], task.targets["test"][:1]
    with torch.no_grad():
        pred = model(x)
    mid, mid_coarse = y.shape[-3] // 2, x.shape[-3] // 2
    with atomic_path(run_dir / "slice_example.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            input=(x[0, 6:9, mid_coarse] * task.scale).numpy(),  # time 2, components (x, y, z)
            target=(y[0, :, mid] * task.scale).numpy(),
            prediction=(pred[0, :, mid] * task.scale).numpy(),
        )


TRAINING = common.Training(
    study="superres", make_task=make_task, spec=_spec, splits=("test",), ee_split="test", example=save_slice_example
)


#: ``train_run(settings, store, run_dir, *, <DESCRIPTION.keys>)`` (:func:`common.study_train_run`)
train_run = common.study_train_run(TRAINING, DESCRIPTION.keys)


#: the per-run table's columns (then the lineage), and the (split, metric) of the score columns
TABLE_COLUMNS = ("model", "alpha", "seed", "params", "epoch", "test_mae", "test_rmse", "ee", "ee_rel")
TABLE_SCORES = {"test_mae": ("test", "mae"), "test_rmse": ("test", "rmse")}


#: ``table(eval_files, out)``: ``superres.csv``, one row per (model, alpha, seed), best checkpoint; test MAE is a mean
#: over samples
table = partial(tables.runs_table, columns=TABLE_COLUMNS, scores=TABLE_SCORES, sort_by=["model", "alpha", "seed"])


def _published(summary) -> None:
    """MAE per 1e6 parameters and the W24 and BLOG numbers (published as mean ± sd) of the same model."""
    summary["mae_per_1e6_params"] = summary.test_mae_mean / (summary.params / 1e6)
    for col, table_ in (("w24", W24_MAE), ("blog", BLOG_MAE)):
        summary[f"{col}_test_mae"] = summary.model.map(lambda m, t=table_: t.get(m, (None, None))[0])
        summary[f"{col}_test_mae_sd"] = summary.model.map(lambda m, t=table_: t.get(m, (None, None))[1])
    summary["blog_params"] = summary.model.map(BLOG_PARAMS)


def summary_table(superres_csv: str | os.PathLike, out: str | os.PathLike, baselines: list[str] | None = None):
    """``superres_summary.csv``: mean and 95 % CI over seeds (Student's t), MAE per 1e6 parameters, next to the W24
    and BLOG numbers (those are published as mean ± sd); with ``baselines``, the interpolated input's MAE/RMSE on
    the same test pairs and each model's skill against it."""
    from .baseline_tables import join_superres

    by = ["model", "alpha"]
    stats = ["test_mae_mean", "test_mae_ci_low", "test_mae_ci_high", "mae_per_1e6_params"]
    published = ["w24_test_mae", "w24_test_mae_sd", "blog_test_mae", "blog_test_mae_sd", "blog_params"]
    return tables.summary_table(
        superres_csv,
        out,
        by=by,
        metrics=("test_mae",),
        derive=_published,
        columns=[*by, "params", "n_seeds", *stats, *published, *LINEAGE_COLUMNS],
        baselines=baselines,
        join_baselines=join_superres,
    )
