"""The rotation forecasting benchmark (W22 Table 1, rotation rows): nine models, 10 input frames, rollouts."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_csv
from ..lineage import LINEAGE_COLUMNS
from ..published import W22_RMSE
from ..runs import BEST_CHECKPOINT, checkpoint_file
from . import common, tables
from .description import Run, StudyDescription

DESCRIPTION = StudyDescription(
    name="rotation",
    run_pattern="{model}/alpha{alpha}/seed{seed}",
    store="data/rotation/plumes.zarr",
    examples=("rollout_example.npz",),
    tables=("rotation_benchmark", "rotation_by_step", "rotation_summary"),
    measured_split="test_domain",
    headline=("test_domain", "rmse"),
)
TEST_SPLITS = ("test_future", "test_domain")
RUN_KEYS = (
    "physics",
    "plumes",
    "held_out",
    "frames",
    "input_frames",
    "rollout",
    "window_stride",
    "training",
    "evaluation",
)


def generate(settings: dict[str, Any], out: str | os.PathLike) -> str:
    from ..data.rotation import RotationPlumes, generate_rotation
    from ..data.smoke import PlumePhysics

    return generate_rotation(
        PlumePhysics.from_dict(settings["physics"]),
        RotationPlumes.from_dict(settings["plumes"]),
        settings["held_out"],
        settings["frames"],
        out,
    )


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (model, alpha, seed) of the configured grid."""
    return common.model_alpha_seed_runs(section)


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run (see :func:`equidyn.studies.levels.run_settings`)."""
    entry = common.run_entry(section["models"], run["model"])
    return {**{k: section[k] for k in RUN_KEYS}, "model": entry}


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    import torch

    from ..data.rotation import load_splits
    from ..training.tasks import ForecastTask

    ds, sims, frames = load_splits(store)
    scale = float(ds.attrs["norm_scale"])
    n_in = int(settings["input_frames"])
    steps = {split: int(settings["rollout"][split]) for split in ("train", "valid", *TEST_SPLITS)}
    windows = {}
    for split, n_steps in steps.items():
        lo, hi = frames[split]
        # every `stride`-th start: the demo thins the heavily overlapping windows; the paper config uses all
        starts = torch.arange(lo, hi - (n_in + n_steps) + 1, int(settings["window_stride"][split]))
        windows[split] = torch.cartesian_prod(torch.tensor(sims[split]), starts)
    task = ForecastTask(
        frames=torch.from_numpy(ds.velocity.values) / scale,
        windows=windows,
        input_frames=n_in,
        steps=steps,
        scale=scale,
    )
    return task, ds


def save_rollout_example(task, run_dir: Path, settings: dict[str, Any]) -> None:
    """Target and prediction of the best checkpoint on the first test-domain window at the ``figure_steps``
    (1-based) of ``settings["evaluation"]``, in physical units."""
    import numpy as np
    import torch

    from ..training import checkpoint

    figure_steps = settings["evaluation"]["figure_steps"]
    model, _ = checkpoint.load_model(run_dir / checkpoint_file(BEST_CHECKPOINT))
    x, y = task.batch("test_domain", torch.tensor([0]))
    with torch.no_grad():
        pred = task.predict(model, x, y.shape[1])
    idx = [s - 1 for s in figure_steps]
    sim, start = (int(v) for v in task.windows["test_domain"][0])
    with atomic_path(run_dir / "rollout_example.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            steps=np.asarray(figure_steps),
            target=(y[0, idx] * task.scale).numpy(),
            prediction=(pred[0, idx] * task.scale).numpy(),
            sim=sim,
            start=start,
        )


TRAINING = common.Training(
    study="rotation",
    make_task=make_task,
    spec=common.forecast_spec,
    splits=TEST_SPLITS,
    ee_split="test_domain",
    example=save_rollout_example,
)


#: ``train_run(settings, store, run_dir, *, <DESCRIPTION.keys>)`` (:func:`common.study_train_run`)
train_run = common.study_train_run(TRAINING, DESCRIPTION.keys)


#: the per-run table's columns (then the lineage), and the (split, metric) of the score columns
TABLE_COLUMNS = ("model", "alpha", "seed", "params", "epoch", "rmse_future", "rmse_domain", "ee", "ee_rel")
TABLE_SCORES = {"rmse_future": ("test_future", "rmse"), "rmse_domain": ("test_domain", "rmse")}


#: ``benchmark_table(eval_files, out)``: ``rotation_benchmark.csv``, one row per (model, alpha, seed) from the best
#: checkpoint
benchmark_table = partial(
    tables.runs_table, columns=TABLE_COLUMNS, scores=TABLE_SCORES, sort_by=["model", "alpha", "seed"]
)


def _published(summary) -> None:
    summary["w22_rmse_future"] = summary["model"].map(lambda m: W22_RMSE.get(m, (None, None))[0])
    summary["w22_rmse_domain"] = summary["model"].map(lambda m: W22_RMSE.get(m, (None, None))[1])


def summary_table(benchmark_csv: str | os.PathLike, out: str | os.PathLike, baselines: list[str] | None = None):
    """``rotation_summary.csv``: mean and 95 % CI over seeds (Student's t) per (model, alpha), next to W22's RMSEs;
    with ``baselines``, persistence's RMSE on the same windows and each model's skill against it."""
    from .baseline_tables import join_rotation

    by = ["model", "alpha"]
    # per split: the mean and CI over seeds, then W22's RMSE
    future, domain = (
        [f"rmse_{t}_{s}" for s in ("mean", "ci_low", "ci_high")] + [f"w22_rmse_{t}"] for t in ("future", "domain")
    )
    return tables.summary_table(
        benchmark_csv,
        out,
        by=by,
        metrics=("rmse_future", "rmse_domain"),
        derive=_published,
        columns=[*by, "params", "n_seeds", *future, *domain, *LINEAGE_COLUMNS],
        sort_by="rmse_domain_mean",
        baselines=baselines,
        join_baselines=join_rotation,
    )


def by_step_table(eval_files: list[str], out: str | os.PathLike) -> None:
    """Long table of RMSE per rollout step (best checkpoint), the data of the RMSE-by-step figure."""
    import pandas as pd

    rows = []
    for path in eval_files:
        r = common.read_json(path)
        for split in TEST_SPLITS:
            for step, value in enumerate(r["scores"][split]["rmse_by_step"], start=1):
                rows.append(
                    {
                        "model": r["model"],
                        "alpha": r["alpha"],
                        "seed": r["seed"],
                        "split": split,
                        "step": step,
                        "rmse": value,
                        **{k: r[k] for k in LINEAGE_COLUMNS},
                    }
                )
    write_csv(pd.DataFrame(rows), out)
