"""The symmetry-level study: base plumes → level datasets → (model, alpha, level, seed) runs → EE tables/figure."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..atomic import write_csv, write_json
from ..lineage import LINEAGE_COLUMNS
from . import common, tables
from .description import Run, StudyDescription

log = logging.getLogger(__name__)

DESCRIPTION = StudyDescription(
    name="levels",
    run_pattern="{model}/alpha{alpha}/level{level}/seed{seed}",
    store="data/levels/level{level}.zarr",
    tables=("data_equivariance", "levels", "levels_summary"),
    measured_split="test",
    headline=("test", "rmse"),
)


def generate_base(settings: dict[str, Any], out: str | os.PathLike) -> str:
    from ..data.smoke import PlumePhysics
    from ..data.smoke_datasets import BasePlumes, generate_base

    return generate_base(PlumePhysics.from_dict(settings["physics"]), BasePlumes.from_dict(settings["base"]), out)


def protocol(section: dict[str, Any]) -> str:
    """``time`` (the published protocol: one plume group per level, split in time) or ``heldout``."""
    return str(section.get("protocol", "time"))


def level_data_settings(section: dict[str, Any]) -> dict[str, Any]:
    """What a level store depends on besides the base plumes: the frame splits, or the held-out plume groups."""
    if protocol(section) == "heldout":
        return {"protocol": "heldout", "heldout": section["heldout"]}
    return {"splits": section["splits"]}


def build_level(settings: dict[str, Any], base: str | os.PathLike, level: int, out: str | os.PathLike) -> str:
    from ..data.smoke_datasets import build_heldout_level, build_level

    if protocol(settings) == "heldout":
        return build_heldout_level(base, level, settings["heldout"], out)
    return build_level(base, level, settings["splits"], out)


def data_ee(store: str | os.PathLike, out: str | os.PathLike, frames: list[int] | None = None) -> float:
    """The level's data EE over the stored frames ``[start:stop]`` (``frames``; default: the published window)."""
    from ..data.smoke_datasets import PUBLISHED_DATA_EE_FRAMES, data_equivariance_error
    from ..store import open_store

    window = tuple(frames) if frames is not None else PUBLISHED_DATA_EE_FRAMES
    ds = open_store(store)
    value = data_equivariance_error(ds, window)
    record = {
        "level": int(ds.attrs["level"]),
        "data_ee": value,
        "data_ee_frames": list(window),
        "data_sha": ds.attrs["content_sha256"],
    }
    write_json(out, record)
    return value


def windows(n_sims: int | list[int], frame_range: tuple[int, int], length: int):
    """All ``(sim, start)`` whose ``length`` frames lie inside ``[lo, hi)``, as a ``(n, 2)`` long tensor;
    ``n_sims`` is a count (simulations ``0 … n-1``) or the list of simulations."""
    import torch

    lo, hi = frame_range
    starts = torch.arange(lo, hi - length + 1)
    sims = torch.arange(n_sims) if isinstance(n_sims, int) else torch.as_tensor(list(n_sims), dtype=torch.long)
    if not len(starts) or not len(sims):
        return torch.empty(0, 2, dtype=torch.long)
    return torch.cartesian_prod(sims, starts)


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    """The forecasting task on one level store, normalised by the store's train rms speed."""
    import torch

    from ..data.smoke_datasets import heldout_split_sims, level_protocol, level_splits
    from ..store import open_store
    from ..training.tasks import ForecastTask

    ds = open_store(store)
    scale = float(ds.attrs["norm_scale"])
    frames = torch.from_numpy(ds.velocity.values) / scale
    n_in = int(settings["input_frames"])
    steps = {split: int(settings["rollout"][split]) for split in ("train", "valid", "test")}
    if level_protocol(ds) == "heldout":
        # whole plume groups per split, every stored frame: the test plumes are unseen, not later in time
        sims = heldout_split_sims(ds)
        every = (0, frames.shape[1])
        wins = {split: windows(sims[split], every, n_in + steps[split]) for split in steps}
    else:
        splits = level_splits(ds)
        wins = {split: windows(frames.shape[0], tuple(splits[split]), n_in + steps[split]) for split in steps}
    task = ForecastTask(
        frames=frames, windows=wins, input_frames=n_in, steps=steps, scale=scale, augment=_augmentation(settings)
    )
    return task, ds


def _augmentation(settings: dict[str, Any]):
    """Random C4 rotations of every training window for a model entry with ``augment: true`` (the "equivariance
    learned from data" arm), through the one group action; ``None`` otherwise."""
    if not settings.get("model", {}).get("augment", False):
        return None
    from ..symmetry import C4, FieldLayout
    from ..training.tasks import C4Augmentation

    n_in = int(settings["input_frames"])
    return C4Augmentation(C4(), FieldLayout.parse(f"{n_in} vector"), FieldLayout.parse("1 vector"))


RUN_KEYS = ("physics", "base", "splits", "input_frames", "rollout", "training", "evaluation")


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (model, alpha, level, seed) of the configured grid."""
    return common.model_alpha_seed_runs(section, levels=section["levels"])


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run: the study settings it uses and its model entry (without the alpha grid).

    The Snakefile passes exactly this to a training job, so adding a seed, a level or an alpha to the config does
    not change — and rerun — the jobs that already exist; its hash is the run's ``config_sha``.
    """
    entry = common.run_entry(section["models"], run["model"])
    # the level data's own settings (splits, or protocol and held-out groups): the published protocol's settings,
    # and so its runs' config_sha, stay as they were
    shared = {k: section[k] for k in RUN_KEYS if k != "splits"}
    settings = {**shared, **level_data_settings(section), "model": entry}
    # ``training_by_level``: the levels with more symmetry breaking fit a harder map and may need more epochs to
    # flatten; only those runs' settings (and jobs) change, so a measured level-0 run is not retrained
    for longer in section.get("training_by_level", []):
        if "level" in run and int(run["level"]) in longer["levels"]:
            settings["training"] = {**settings["training"], "epochs": int(longer["epochs"])}
    return settings


TRAINING = common.Training(
    study="levels", make_task=make_task, spec=common.forecast_spec, splits=("test",), ee_split="test"
)


#: ``train_run(settings, store, run_dir, *, <DESCRIPTION.keys>)`` (:func:`common.study_train_run`)
train_run = common.study_train_run(TRAINING, DESCRIPTION.keys)


def data_table(data_ee_files: list[str], out: str | os.PathLike, settings: dict[str, Any]):
    """``data_equivariance.csv``; ``settings`` (physics, base plumes, splits) give its ``config_sha``."""
    import pandas as pd

    from ..lineage import config_sha, git_rev

    rows = [common.read_json(p) for p in data_ee_files]
    df = pd.DataFrame(rows).sort_values("level")
    df["config_sha"] = config_sha(settings)
    df["git_rev"] = git_rev()
    df = df[["level", "data_ee", *LINEAGE_COLUMNS]]
    write_csv(df, out)
    return df


#: ``levels.csv``'s columns before the level's data EE and the lineage, and the (split, metric) of its score columns
TABLE_COLUMNS = (
    "model",
    "alpha",
    "level",
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


def _diagnostics(record: dict[str, Any]) -> dict[str, float]:
    """Issue 20's columns, after the scores: FLOPs per forward and the collapse diagnostic (learned correction /
    needed correction, skill over the model's own skip) on the test split; NaN for runs evaluated before them."""
    nan = float("nan")
    test = record.get("correction", {}).get("test", {})
    return {
        "flops_per_sample": record.get("flops_per_sample", nan),
        "correction_ratio": test.get("correction_ratio", nan),
        "skill_vs_skip": test.get("skill_vs_skip", nan),
    }


def levels_table(eval_files: list[str], data_table_path: str | os.PathLike, out: str | os.PathLike):
    """``levels.csv``: one row per (model, alpha, level, seed, checkpoint), next to the level's data EE."""
    import pandas as pd

    data = pd.read_csv(data_table_path)[["level", "data_ee"]]
    return tables.runs_table(
        eval_files,
        out,
        columns=TABLE_COLUMNS,
        scores=TABLE_SCORES,
        sort_by=["model", "alpha", "level", "seed", "checkpoint"],
        join=lambda df: df.merge(data, on="level", how="left"),
        derived=_diagnostics,
    )


def summary_table(levels_csv: str | os.PathLike, out: str | os.PathLike, baselines: list[str] | None = None):
    """``levels_summary.csv``: per (model, alpha, level, checkpoint), test RMSE and model EE as mean and 95 % CI
    over seeds (Student's t), next to the level's data EE. Comparisons between models: the claims table.
    ``baselines`` (persistence per level, :mod:`equidyn.studies.baselines`) add ``baseline_test_rmse`` and skill."""
    from .baseline_tables import join_levels

    by = ["model", "alpha", "level", "checkpoint"]
    # issue 20: skill over the model's own skip (linear extrapolation for residual: linear) with its seed CI — an
    # arm has learned where the interval lies above 0 — and how large its learned correction is
    import pandas as pd

    have = set(pd.read_csv(levels_csv, nrows=0).columns)  # a table written before issue 20 lacks its columns
    metrics = tuple(m for m in ("test_rmse", "ee", "skill_vs_skip", "correction_ratio") if m in have)
    first = tuple(c for c in ("params", "flops_per_sample", "data_ee") if c in have)
    stats = [f"{v}_{s}" for v in metrics for s in ("mean", "ci_low", "ci_high")]
    return tables.summary_table(
        levels_csv,
        out,
        by=by,
        metrics=metrics,
        first=first,
        columns=[*by, *first[:-1], "n_seeds", *stats, "data_ee", *LINEAGE_COLUMNS],
        baselines=baselines,
        join_baselines=join_levels,
    )
