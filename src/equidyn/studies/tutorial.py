"""The rotation-equivariance tutorial: biased training, rotated testing, CNN vs escnn vs augmentation.

A plain CNN, an escnn C4 model and the CNN trained with random C4 rotations (the soft-constraint baseline) learn a
filtered flux from ``(u, v)`` + a scalar on orientation-biased samples, then are tested on the held-out samples
rotated by 0°, 90°, 180° and 270° against the correspondingly transformed truth ([TUT]).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_csv, write_json
from ..lineage import LINEAGE_COLUMNS
from ..runs import BEST_CHECKPOINT, checkpoint_file
from . import common
from .description import Run, StudyDescription

DESCRIPTION = StudyDescription(
    name="tutorial",
    run_pattern="{target}/{label}/seed{seed}",
    store="data/tutorial/prepared.zarr",
    model_key="label",
    evaluations=("rotated",),
    examples=("rotated_example.npz",),
    tables=("tutorial",),
)

RUN_KEYS = ("data", "training")


def builtin(settings: dict[str, Any], turbulence: str | os.PathLike, out: str | os.PathLike) -> None:
    from ..data.tutorial_data import TutorialData, builtin_from_turbulence

    builtin_from_turbulence(turbulence, TutorialData.from_dict(settings["data"]).mean_wind, out)


def prepare(settings: dict[str, Any], source: str | os.PathLike, out: str | os.PathLike) -> str:
    from ..data.tutorial_data import TutorialData, prepare

    return prepare(TutorialData.from_dict(settings["data"]), source, list(settings["targets"]), out)


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (target, model label, seed) of the configured grid."""
    return [
        {"target": t, "label": m["label"], "seed": s}
        for t in section["targets"]
        for m in section["models"]
        for s in section["seeds"]
    ]


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run: data and training settings, the model entry and the flux target it learns."""
    entry = common.model_entry_by(section["models"], "label", run["label"])
    return {**{k: section[k] for k in RUN_KEYS}, "model": entry, "target": run["target"]}


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    """``(task, prepared store)`` of one run (the study interface; see :mod:`equidyn.studies.description`)."""
    task, ds, _, _ = _task_and_layouts(store, settings["target"], bool(settings["model"].get("augment", False)))
    return task, ds


def _task_and_layouts(store: str | os.PathLike, target: str, augment_layouts: bool):
    import torch

    from ..store import open_store
    from ..symmetry import C4, FieldLayout
    from ..training.tasks import C4Augmentation, PairTask

    ds = open_store(store)
    if f"target_{target}" not in ds:
        raise ValueError(f"the prepared tutorial store {store} has no target {target!r}")
    x = torch.from_numpy(ds.inputs.values).clone()
    x[:, :2] /= float(ds.attrs["wind_scale"])
    x[:, 2] /= float(ds.attrs["scalar_scale"])
    scale = float(ds.attrs[f"target_{target}_scale"])
    y = torch.from_numpy(ds[f"target_{target}"].values) / scale
    split = ds.split.values
    inputs = {s: x[split == s] for s in ("train", "valid", "test")}
    targets = {s: y[split == s] for s in ("train", "valid", "test")}
    in_layout = FieldLayout.parse(ds.attrs["input_layout"])
    out_layout = FieldLayout.parse(ds.attrs[f"target_{target}_layout"])
    augment = C4Augmentation(C4(), in_layout, out_layout) if augment_layouts else None
    return PairTask(inputs, targets, scale, augment=augment), ds, in_layout, out_layout


def train_run(
    settings: dict[str, Any],
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    label: str,
    target: str,
    seed: int,
) -> dict[str, Any]:
    from ..training.trainer import TrainSettings, train

    entry = settings["model"]
    if entry["label"] != label:
        raise ValueError(f"settings are for model {entry['label']!r}, not {label!r}")
    if settings["target"] != target:
        raise ValueError(f"settings are for target {settings['target']!r}, not {target!r}")
    task, ds, in_layout, out_layout = _task_and_layouts(store, target, bool(entry.get("augment", False)))
    n = int(ds.sizes["x"])
    model_entry = {k: v for k, v in entry.items() if k not in ("label", "augment", "model")} | {"name": entry["model"]}
    spec = common.model_spec(model_entry, str(in_layout), str(out_layout), (n, n), "C4")
    meta = common.run_meta(
        settings, ds.attrs["content_sha256"], study="tutorial", model=label, target=target, seed=seed, alpha=0.0
    )
    summary = train(task, spec, TrainSettings.from_dict(settings["training"]), run_dir, seed=seed, alpha=0.0, meta=meta)
    evaluate_rotated(task, Path(run_dir), in_layout, out_layout)
    return summary


def evaluate_rotated(task, run_dir: Path, in_layout, out_layout) -> dict[str, Any]:
    """Test RMSE and R² of the best checkpoint on the test split rotated by each C4 element, plus example maps."""
    import numpy as np
    import torch

    from ..symmetry import C4
    from ..training import checkpoint

    group = C4()
    model, ckpt = checkpoint.load_model(run_dir / checkpoint_file(BEST_CHECKPOINT))
    x, y = task.inputs["test"], task.targets["test"]
    rows, maps_truth, maps_pred = [], [], []
    with torch.no_grad():
        for k in group.elements:
            xk, yk = group.act(k, x, in_layout), group.act(k, y, out_layout)
            pred = model(xk)
            err = (pred - yk).double()
            ss_res = float(err.pow(2).sum())
            ss_tot = float((yk.double() - yk.double().mean()).pow(2).sum())
            rows.append(
                {
                    "rotation": 90 * k,
                    "rmse": float(err.pow(2).mean().sqrt()) * task.scale,
                    "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
                }
            )
            maps_truth.append((yk[0] * task.scale).numpy())
            maps_pred.append((pred[0] * task.scale).numpy())
    result = {**ckpt["meta"], "checkpoint_epoch": ckpt["epoch"], "rotations": rows}
    write_json(run_dir / "eval_rotated.json", result)
    with atomic_path(run_dir / "rotated_example.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            rotation=np.array([r["rotation"] for r in rows]),
            truth=np.stack(maps_truth),
            prediction=np.stack(maps_pred),
        )
    return result


def table(eval_files: list[str], out: str | os.PathLike):
    """``tutorial.csv``: one row per (model, target, rotation, seed)."""
    import pandas as pd

    rows = []
    for path in eval_files:
        r = common.read_json(path)
        for rot in r["rotations"]:
            rows.append(
                {
                    "model": r["model"],
                    "target": r["target"],
                    "rotation": rot["rotation"],
                    "seed": r["seed"],
                    "rmse": rot["rmse"],
                    "r2": rot["r2"],
                    **{k: r[k] for k in LINEAGE_COLUMNS},
                }
            )
    df = pd.DataFrame(rows).sort_values(["target", "model", "seed", "rotation"]).reset_index(drop=True)
    write_csv(df, out)
    return df
