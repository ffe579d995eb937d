"""The rotation forecasting benchmark (W22 Table 1, rotation rows): nine models, 10 input frames, rollouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_csv
from ..lineage import LINEAGE_COLUMNS
from ..published import W22_RMSE
from ..runs import BEST_CHECKPOINT, checkpoint_file
from . import common
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
    entry = {k: v for k, v in common.model_entry(section["models"], run["model"]).items() if k != "alphas"}
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


def train_run(
    settings: dict[str, Any],
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    model: str,
    alpha: float,
    seed: int,
) -> dict[str, Any]:
    """Train one (model, alpha, seed) run, then evaluate its checkpoints and save a rollout for the figure."""
    from ..training.trainer import TrainSettings, train

    if settings["model"]["name"] != model:
        raise ValueError(f"settings are for model {settings['model']['name']!r}, not {model!r}")
    task, ds = make_task(settings, store)
    n = int(ds.sizes["x"])
    spec = common.model_spec(settings["model"], f"{settings['input_frames']} vector", "1 vector", (n, n), "C4")
    meta = common.run_meta(settings, ds.attrs["content_sha256"], study="rotation", model=model, alpha=alpha, seed=seed)
    summary = train(
        task, spec, TrainSettings.from_dict(settings["training"]), run_dir, seed=seed, alpha=alpha, meta=meta
    )
    common.evaluate_checkpoints(
        task, run_dir, splits=TEST_SPLITS, ee_split="test_domain", evaluation=settings["evaluation"]
    )
    save_rollout_example(
        task, Path(run_dir) / checkpoint_file(BEST_CHECKPOINT), settings["evaluation"]["figure_steps"], Path(run_dir)
    )
    return summary


def save_rollout_example(task, checkpoint_path: Path, figure_steps: list[int], run_dir: Path) -> None:
    """Target and prediction of the first test-domain window at ``figure_steps`` (1-based), in physical units."""
    import numpy as np
    import torch

    from ..training import checkpoint

    model, _ = checkpoint.load_model(checkpoint_path)
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


def benchmark_table(eval_files: list[str], out: str | os.PathLike):
    """``rotation_benchmark.csv``: one row per (model, alpha, seed) from the best checkpoint."""
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
                "rmse_future": r["scores"]["test_future"]["rmse"],
                "rmse_domain": r["scores"]["test_domain"]["rmse"],
                "ee": r["ee"],
                "ee_rel": r["ee_rel"],
                **{k: r[k] for k in LINEAGE_COLUMNS},
            }
        )
    df = pd.DataFrame(rows).sort_values(["model", "alpha", "seed"]).reset_index(drop=True)
    write_csv(df, out)
    return df


def summary_table(benchmark_csv: str | os.PathLike, out: str | os.PathLike, baselines: list[str] | None = None):
    """``rotation_summary.csv``: mean and 95 % CI over seeds (Student's t) per (model, alpha), next to W22's RMSEs;
    with ``baselines``, persistence's RMSE on the same windows and each model's skill against it."""
    import pandas as pd

    from ..stats import ci_columns

    df = pd.read_csv(benchmark_csv)
    grouped = df.groupby(["model", "alpha"])
    summary = grouped.agg(
        params=("params", "first"),
        n_seeds=("seed", "nunique"),
        config_sha=("config_sha", lambda s: ";".join(sorted(set(map(str, s))))),
        git_rev=("git_rev", lambda s: ";".join(sorted(set(map(str, s))))),
        data_sha=("data_sha", lambda s: ";".join(sorted(set(map(str, s))))),
    )
    summary = summary.join(ci_columns(grouped.rmse_future, "rmse_future"))
    summary = summary.join(ci_columns(grouped.rmse_domain, "rmse_domain")).reset_index()
    summary["w22_rmse_future"] = summary["model"].map(lambda m: W22_RMSE.get(m, (None, None))[0])
    summary["w22_rmse_domain"] = summary["model"].map(lambda m: W22_RMSE.get(m, (None, None))[1])
    cols = [
        "model",
        "alpha",
        "params",
        "n_seeds",
        "rmse_future_mean",
        "rmse_future_ci_low",
        "rmse_future_ci_high",
        "w22_rmse_future",
        "rmse_domain_mean",
        "rmse_domain_ci_low",
        "rmse_domain_ci_high",
        "w22_rmse_domain",
        *LINEAGE_COLUMNS,
    ]
    summary = summary[cols].sort_values("rmse_domain_mean").reset_index(drop=True)
    if baselines:
        from .baselines import join_rotation

        summary = join_rotation(summary, baselines)
    write_csv(summary, out)
    return summary


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
