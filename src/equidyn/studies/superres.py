"""3-D turbulence super-resolution (W24 Exp. 5.5, BLOG): 16³ → 64³ with CNN, GCNN (O_h) and RGCNN (relaxed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_csv
from ..lineage import LINEAGE_COLUMNS
from ..published import BLOG_MAE, BLOG_PARAMS, W24_MAE
from ..runs import BEST_CHECKPOINT, checkpoint_file
from . import common
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
    entry = {k: v for k, v in common.model_entry(section["models"], run["model"]).items() if k != "alphas"}
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


def train_run(
    settings: dict[str, Any],
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    model: str,
    alpha: float,
    seed: int,
) -> dict[str, Any]:
    from ..training.trainer import TrainSettings, train

    if settings["model"]["name"] != model:
        raise ValueError(f"settings are for model {settings['model']['name']!r}, not {model!r}")
    task, sr = make_task(settings, store)
    coarse = tuple(sr.train.inputs.shape[-3:])
    spec = common.model_spec(settings["model"], str(sr.input_layout), str(sr.target_layout), coarse, settings["group"])
    meta = common.run_meta(settings, sr.data_sha, study="superres", model=model, alpha=alpha, seed=seed)
    summary = train(
        task, spec, TrainSettings.from_dict(settings["training"]), run_dir, seed=seed, alpha=alpha, meta=meta
    )
    common.evaluate_checkpoints(task, run_dir, splits=("test",), ee_split="test", evaluation=settings["evaluation"])
    save_slice_example(task, Path(run_dir))
    return summary


def save_slice_example(task, run_dir: Path) -> None:
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


def table(eval_files: list[str], out: str | os.PathLike):
    """``superres.csv``: one row per (model, alpha, seed), best checkpoint; test MAE is a mean over samples."""
    import pandas as pd

    rows = []
    for path in eval_files:
        r = common.read_json(path)
        rows.append(
            {
                "model": r["model"],
                "alpha": r["alpha"],
                "seed": r["seed"],
                "params": r["params"],
                "epoch": r["checkpoint_epoch"],
                "test_mae": r["scores"]["test"]["mae"],
                "test_rmse": r["scores"]["test"]["rmse"],
                "ee": r["ee"],
                "ee_rel": r["ee_rel"],
                **{k: r[k] for k in LINEAGE_COLUMNS},
            }
        )
    df = pd.DataFrame(rows).sort_values(["model", "alpha", "seed"]).reset_index(drop=True)
    write_csv(df, out)
    return df


def summary_table(superres_csv: str | os.PathLike, out: str | os.PathLike, baselines: list[str] | None = None):
    """``superres_summary.csv``: mean and 95 % CI over seeds (Student's t), MAE per 1e6 parameters, next to the W24
    and BLOG numbers (those are published as mean ± sd); with ``baselines``, the interpolated input's MAE/RMSE on
    the same test pairs and each model's skill against it."""
    import pandas as pd

    from ..stats import ci_columns

    df = pd.read_csv(superres_csv)
    joined = lambda s: ";".join(sorted(set(map(str, s))))  # noqa: E731
    grouped = df.groupby(["model", "alpha"])
    summary = grouped.agg(
        params=("params", "first"),
        n_seeds=("seed", "nunique"),
        config_sha=("config_sha", joined),
        git_rev=("git_rev", joined),
        data_sha=("data_sha", joined),
    )
    summary = summary.join(ci_columns(grouped.test_mae, "test_mae")).reset_index()
    summary["mae_per_1e6_params"] = summary.test_mae_mean / (summary.params / 1e6)
    for col, table_ in (("w24", W24_MAE), ("blog", BLOG_MAE)):
        summary[f"{col}_test_mae"] = summary.model.map(lambda m, t=table_: t.get(m, (None, None))[0])
        summary[f"{col}_test_mae_sd"] = summary.model.map(lambda m, t=table_: t.get(m, (None, None))[1])
    summary["blog_params"] = summary.model.map(BLOG_PARAMS)
    cols = [
        "model",
        "alpha",
        "params",
        "n_seeds",
        "test_mae_mean",
        "test_mae_ci_low",
        "test_mae_ci_high",
        "mae_per_1e6_params",
        "w24_test_mae",
        "w24_test_mae_sd",
        "blog_test_mae",
        "blog_test_mae_sd",
        "blog_params",
        *LINEAGE_COLUMNS,
    ]
    summary = summary[cols]
    if baselines:
        from .baselines import join_superres

        summary = join_superres(summary.copy(), baselines)
    write_csv(summary, out)
    return summary
