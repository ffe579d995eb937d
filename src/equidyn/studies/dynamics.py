"""Training-dynamics measures of trained checkpoints: Lie derivative, sharpness, Hessian spectrum; dynamics.csv.

Generic over the studies: a measure job rebuilds its run's task from the run's settings (the study's
``make_task``, looked up in :mod:`equidyn.studies.catalog`), loads one checkpoint, and evaluates one measure of
``equidyn.measures`` on

* the *test* inputs, the study description's ``measured_split`` (Lie derivative: how equivariant the trained
  function is beyond the group it was built for),
* a fixed, seeded subset of the *training* windows (sharpness, Hessian: the landscape the optimiser saw), with the
  training criterion on the first prediction step, in normalised units — the same subset and seed for every model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import write_csv, write_json
from ..lineage import LINEAGE_COLUMNS
from ..runs import checkpoint_of
from . import catalog, common

MEASURES = ("lie", "sharpness", "hessian")
COLUMNS = (
    "lie_derivative",
    "sharpness",
    "sharpness_rel",
    "hessian_lambda_max",
    "hessian_trace",
    "hessian_trace_se",
    "hessian_negative_mass",
)


def study_module(study: str):
    """The module of a study the measures can take (its description has a ``measured_split``)."""
    if study not in catalog.measurable():
        raise ValueError(f"study {study!r} has no measured runs; expected one of {catalog.measurable()}")
    return catalog.study(study)


def fixed_subset(task, samples: int, seed: int, batch_size: int = 32) -> list[tuple[Any, Any]]:
    """A seeded subset of training windows as ``(x, y_first_step)`` batches, identical for every model."""
    import torch

    n = min(samples, task.n("train"))
    index = torch.randperm(task.n("train"), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    batches = []
    for chunk in index.split(batch_size):
        x, y = task.batch("train", chunk)
        batches.append((x, y[:, 0]))
    return batches


def measure(
    study: str,
    measure: str,
    settings: dict[str, Any],
    store: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
) -> dict[str, Any]:
    """Evaluate one measure on one checkpoint; ``settings`` = {"run": run settings, "dynamics": section}."""
    import torch

    from ..measures.hessian import hessian_spectrum
    from ..measures.lie import lie_derivative
    from ..measures.sharpness import sharpness
    from ..symmetry import group_by_name
    from ..training import checkpoint as ckpt_io
    from ..training.tasks import LOSSES

    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")
    dyn = settings["dynamics"]
    module = study_module(study)
    task, _ = module.make_task(settings["run"], store)
    task.to(torch.device("cpu"))
    model, ckpt = ckpt_io.load_model(checkpoint)
    criterion = LOSSES[task.loss]
    if measure == "lie":
        split = module.DESCRIPTION.measured_split
        x, _ = task.batch(split, torch.arange(min(int(dyn["lie"]["samples"]), task.n(split))))
        ndim = group_by_name(model.spec.group).ndim
        result = lie_derivative(model, x, model.in_layout, model.out_layout, ndim)
    else:
        batches = fixed_subset(task, int(dyn["subset"]["samples"]), int(dyn["subset"]["seed"]))
        if measure == "sharpness":
            s = dyn["sharpness"]
            result = sharpness(model, batches, criterion, s["displacements"], int(s["directions"]), int(s["seed"]))
        else:
            h = dyn["hessian"]
            result = hessian_spectrum(
                model,
                batches,
                criterion,
                int(h["top_k"]),
                int(h["hutchinson"]),
                int(h["slq_runs"]),
                int(h["slq_steps"]),
                int(h["seed"]),
                tol=float(h.get("tol", 1e-4)),
                max_steps=int(h.get("max_steps", 200)),
                cache_graphs=bool(h.get("cache_graphs", False)),
            )
    record = {
        **ckpt["meta"],
        "measure": measure,
        "checkpoint": checkpoint_of(Path(checkpoint).stem),
        "checkpoint_epoch": ckpt["epoch"],
        **_jsonable(result),
    }
    write_json(out, record)
    return record


def _jsonable(obj: Any) -> Any:
    """Tensors and numpy arrays inside a result as lists (the Hessian density, per-sample values)."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def run_keys(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "study": record["study"],
        "model": record["model"],
        "alpha": record["alpha"],
        "level": record.get("level"),
        "seed": record["seed"],
    }


def table(measure_files: list[str], eval_files: list[str], out: str | os.PathLike):
    """``dynamics.csv``: one row per (study, model, alpha, level, seed, checkpoint), every measure as a column."""
    import pandas as pd

    rows: dict[tuple, dict[str, Any]] = {}

    def row(record: dict[str, Any], checkpoint: str) -> dict[str, Any]:
        keys = run_keys(record)
        key = (*keys.values(), checkpoint)
        return rows.setdefault(key, {**keys, "checkpoint": checkpoint})

    for path in eval_files:
        r = common.read_json(path)
        checkpoint = checkpoint_of(Path(path).stem, "eval_")
        split, metric = catalog.description(r["study"]).headline
        target = row(r, checkpoint)
        target.update(
            {
                "epoch": r["checkpoint_epoch"],
                "params": r["params"],
                f"test_{metric}": r["scores"][split][metric],
                "ee": r["ee"],
                "ee_rel": r["ee_rel"],
                **{k: r[k] for k in LINEAGE_COLUMNS},
            }
        )
    for path in measure_files:
        r = common.read_json(path)
        target = row(r, r["checkpoint"])
        if r["measure"] == "lie":
            target["lie_derivative"] = r["lie_derivative"]
        elif r["measure"] == "sharpness":
            target.update(sharpness=r["sharpness"], sharpness_rel=r["sharpness_rel"], train_subset_loss=r["loss"])
        else:
            target.update(
                hessian_lambda_max=r["lambda_max"],
                hessian_trace=r["trace"],
                hessian_trace_se=r["trace_se"],
                hessian_negative_mass=r["negative_mass"],
            )
        for k in LINEAGE_COLUMNS:
            target.setdefault(k, r[k])
    df = pd.DataFrame(list(rows.values()))
    for col in COLUMNS:
        if col not in df:
            df[col] = float("nan")
    first = ["study", "model", "alpha", "level", "seed", "checkpoint", "epoch", "params"]
    metrics = [c for c in ("test_rmse", "test_mae") if c in df]
    df = df[[*first, *metrics, "ee", "ee_rel", *COLUMNS, *LINEAGE_COLUMNS]]
    df = df.sort_values(["study", "model", "alpha", "level", "seed", "checkpoint"], na_position="first")
    write_csv(df, out)
    return df
