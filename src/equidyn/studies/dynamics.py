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
from ..lineage import LINEAGE_COLUMNS, config_sha, git_rev
from ..runs import checkpoint_of
from . import catalog, common

MEASURES = ("lie", "sharpness", "hessian")
# Which sharpness: ``sharpness_blog`` is the BLOG's mean |L(w+td) − L(w)| (first + second order, comparable with the
# published numbers); ``sharpness_curvature`` the symmetric difference mean [(L(w+td)+L(w−td))/2 − L(w)], a curvature.
# ``hessian_negative_mass`` is the smoothed spectral mass below −ε above a zero eigenvalue's floor (docs/measures.md),
# not the old weight below 0; ``hessian_lambda_min`` (± its Lanczos residual) and ``hessian_lambda_min_ratio``
# (λ_min/λ_max) are the negative curvature itself (issue 21).
COLUMNS = (
    "lie_derivative",
    "sharpness_blog",
    "sharpness_blog_rel",
    "sharpness_curvature",
    "sharpness_curvature_se",
    "hessian_lambda_max",
    "hessian_trace",
    "hessian_trace_se",
    "hessian_negative_mass",
    "hessian_negative_mass_se",
    "hessian_lambda_min",
    "hessian_lambda_min_residual",
    "hessian_lambda_min_ratio",
)
# A measure is rerun without retraining when its settings or its code change, so its record carries its own
# lineage next to the run's (``git_rev`` and ``config_sha`` are the training's): the commit the measure ran at and
# the hash of the ``dynamics`` section it used. In the table, a row's value joins those of its measures.
MEASURE_LINEAGE = ("measure_git_rev", "measure_config_sha")
# Memory knobs (values do not depend on them): samples per forward/backward of the sharpness and Hessian
# (``dynamics.subset.batch_size``) and vectors per vmapped Hessian-vector product (``dynamics.hessian.vector_chunk``).
# A ``dynamics.runs`` entry may lower them for its study's runs (3-D samples are ~10⁴× a 2-D one's).
SUBSET_BATCH = 32
VECTOR_CHUNK = 16


def study_module(study: str):
    """The module of a study the measures can take (its description has a ``measured_split``)."""
    if study not in catalog.measurable():
        raise ValueError(f"study {study!r} has no measured runs; expected one of {catalog.measurable()}")
    return catalog.study(study)


def fixed_subset(task, samples: int, seed: int, batch_size: int = SUBSET_BATCH) -> tuple[list[tuple[Any, Any]], list]:
    """A seeded subset of training windows as ``(x, y_first_step)`` batches, identical for every model, and the
    ``[simulation, start]`` of each window (stratified across simulations and times: ``measures/samples.py``)."""
    from ..measures.samples import evaluation_sample

    index, chosen = evaluation_sample(task, "train", samples, seed)
    batches = []
    for chunk in index.split(batch_size):
        x, y = task.batch("train", chunk)
        batches.append((x, y[:, 0]))
    return batches, chosen


def measure(
    study: str,
    measure: str,
    settings: dict[str, Any],
    store: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
) -> dict[str, Any]:
    """Evaluate one measure on one checkpoint; ``settings`` = {"run": run settings, "dynamics": section}."""
    from ..measures.hessian import NEGATIVE_SIGMA, NEGATIVE_THRESHOLD, hessian_spectrum
    from ..measures.lie import lie_derivative
    from ..measures.samples import evaluation_sample
    from ..measures.sharpness import sharpness
    from ..symmetry import group_by_name
    from ..training import checkpoint as ckpt_io
    from ..training.tasks import LOSSES
    from ..training.trainer import TrainSettings

    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")
    dyn = settings["dynamics"]
    module = study_module(study)
    task, _ = module.make_task(settings["run"], store)
    # on the run's training device (a GPU where the cluster job has one; issue 14): the measures draw their random
    # vectors on the CPU in float64 and move them, so the numbers do not depend on the device
    device = TrainSettings.from_dict(settings["run"]["training"]).torch_device()
    task.to(device)
    model, ckpt = ckpt_io.load_model(checkpoint)
    model.to(device)
    criterion = LOSSES[task.loss]
    if measure == "lie":
        split = module.DESCRIPTION.measured_split
        lie = dyn["lie"]
        index, chosen = evaluation_sample(task, split, int(lie["samples"]), int(lie.get("seed", 0)))
        x, _ = task.batch(split, index)
        ndim = group_by_name(model.spec.group).ndim
        result = lie_derivative(
            model, x, model.in_layout, model.out_layout, ndim, order=lie.get("order"), batch_size=lie.get("batch_size")
        )
    else:
        subset = dyn["subset"]
        batch_size = int(subset.get("batch_size", SUBSET_BATCH))
        batches, chosen = fixed_subset(task, int(subset["samples"]), int(subset["seed"]), batch_size)
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
                negative_threshold=float(h.get("negative_threshold", NEGATIVE_THRESHOLD)),
                negative_sigma=float(h.get("negative_sigma", NEGATIVE_SIGMA)),
                chunk=int(h.get("vector_chunk", VECTOR_CHUNK)),
            )
    result["samples"] = chosen  # [simulation, start] of every sample the measure averaged over
    record = {
        **ckpt["meta"],
        "measure": measure,
        "checkpoint": checkpoint_of(Path(checkpoint).stem),
        "checkpoint_epoch": ckpt["epoch"],
        **_prefixed_collisions(_jsonable(result), ckpt["meta"]),
        "measure_git_rev": git_rev(),
        "measure_config_sha": config_sha(dyn),
    }
    write_json(out, record)
    return record


def _prefixed_collisions(result: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """A measure's own settings named like a run key (its RNG ``seed``) become ``measure_<key>``.

    Otherwise the measure's seed overwrote the run's seed in the record, and the dynamics table merged every seed's
    measures into seed 0's row (found by the laptop study, the first run to measure more than one seed).
    """
    return {f"measure_{k}" if k in meta else k: v for k, v in result.items()}


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
    """A record's run keys in the table: ``level`` (levels) and ``flow`` (exponax) are empty for other studies."""
    return {
        "study": record["study"],
        "model": record["model"],
        "alpha": record["alpha"],
        "level": record.get("level"),
        "flow": record.get("flow"),
        "seed": record["seed"],
    }


def table(measure_files: list[str], eval_files: list[str], out: str | os.PathLike):
    """``dynamics.csv``: one row per (study, model, alpha, level[, flow], seed, checkpoint), every measure as a
    column."""
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
        # issue 20: whether the measured run learned (its correction against its own skip), beside its flatness
        correction = r.get("correction", {}).get(split)
        if correction:
            target.update(correction_ratio=correction["correction_ratio"], skill_vs_skip=correction["skill_vs_skip"])
    for path in measure_files:
        r = common.read_json(path)
        target = row(r, r["checkpoint"])
        if r["measure"] == "lie":
            target["lie_derivative"] = r["lie_derivative"]
        elif r["measure"] == "sharpness":
            target.update(
                sharpness_blog=r["sharpness"],
                sharpness_blog_rel=r["sharpness_rel"],
                sharpness_curvature=r["curvature"],
                sharpness_curvature_se=r["curvature_se"],
                train_subset_loss=r["loss"],
            )
        else:
            target.update(
                hessian_lambda_max=r["lambda_max"],
                hessian_trace=r["trace"],
                hessian_trace_se=r["trace_se"],
                hessian_negative_mass=r["negative_mass"],
                hessian_negative_mass_se=r["negative_mass_se"],
                hessian_lambda_min=r.get("lambda_min", float("nan")),
                hessian_lambda_min_residual=r.get("lambda_min_residual", float("nan")),
                hessian_lambda_min_ratio=r.get("lambda_min_ratio", float("nan")),
            )
        for k in LINEAGE_COLUMNS:
            target.setdefault(k, r[k])
        for k in MEASURE_LINEAGE:
            seen = set(filter(None, str(target.get(k) or "").split(";"))) | {str(r.get(k) or "unknown")}
            target[k] = ";".join(sorted(seen))
    df = pd.DataFrame(list(rows.values()))
    for col in (*COLUMNS, *MEASURE_LINEAGE):
        if col not in df:
            df[col] = float("nan")
    # the exponax study's flow is a column only where a table has its runs: every other table keeps its columns
    flow = ["flow"] if df["flow"].notna().any() else []
    first = ["study", "model", "alpha", "level", *flow, "seed", "checkpoint", "epoch", "params"]
    metrics = [c for c in ("test_rmse", "test_mae", "correction_ratio", "skill_vs_skip") if c in df]
    df = df[[*first, *metrics, "ee", "ee_rel", *COLUMNS, *LINEAGE_COLUMNS, *MEASURE_LINEAGE]]
    df = df.sort_values(["study", "model", "alpha", "level", *flow, "seed", "checkpoint"], na_position="first")
    write_csv(df, out)
    return df
