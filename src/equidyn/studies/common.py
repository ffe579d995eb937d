"""Pieces every study shares: the run grid, model specs from config entries, run metadata, alpha, evaluation.

Top-level imports stay light (no torch or numpy): the study modules import this, and the Snakefile imports the
study modules (their descriptions and ``run_settings``) at DAG-building time.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_json
from ..lineage import lineage_record
from ..runs import CHECKPOINTS, checkpoint_file, eval_file

if TYPE_CHECKING:
    from ..models.base import ModelSpec

log = logging.getLogger(__name__)

#: a path argument, and a study's settings (a config section or one run's ``run_settings``)
PathLike = str | os.PathLike
Settings = dict[str, Any]


def format_alpha(alpha: float) -> str:
    """Path-safe, round-trippable alpha: 0, 1e-06, 0.0001, 0.01, 1 (``float(format_alpha(a)) == a``)."""
    text = f"{float(alpha):g}"
    if float(text) != float(alpha):
        text = repr(float(alpha))
    return text


def model_alpha_seed_runs(section: dict[str, Any], levels: list[int] | None = None) -> list[dict[str, Any]]:
    """The runs of a ``models`` × ``alphas`` × ``seeds`` grid (× ``levels`` when given), as run keys.

    A model entry without ``alphas`` runs at alpha 0 only; alphas are formatted as they appear in paths. An entry's
    ``extra_seeds`` add seeds to that entry alone (:func:`entry_seeds`).
    """
    runs = []
    for m in section["models"]:
        for a in m.get("alphas", [0]):
            for s in entry_seeds(section, m):
                base = {"model": model_label(m), "alpha": format_alpha(a), "seed": s}
                runs += [base] if levels is None else [{**base, "level": lvl} for lvl in levels]
    return runs


#: a model entry's keys that choose *which* runs it has, not what a run is: left out of a run's settings, so adding
#: an alpha or a seed to an entry changes (and reruns) no existing run
GRID_KEYS = ("alphas", "extra_seeds")


def entry_seeds(section: dict[str, Any], entry: dict[str, Any]) -> list[int]:
    """The study's ``seeds``, then the entry's ``extra_seeds``: a comparison that the power estimate says ≤ 20 seeds
    would resolve is extended by training more seeds of the two arms it compares, not of every arm (issue 20)."""
    return [*section["seeds"], *entry.get("extra_seeds", [])]


def run_entry(models: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """The entry whose :func:`model_label` is ``label``, without its grid keys (:data:`GRID_KEYS`): what a run's
    settings hold of it."""
    return {k: v for k, v in model_entry(models, label).items() if k not in GRID_KEYS}


def model_spec(entry: dict[str, Any], in_layout: str, out_layout: str, grid: tuple[int, ...], group: str) -> ModelSpec:
    """A spec from a config model entry (``name``, ``layers``, ``budget`` or ``hidden``, ``options``...)."""
    from ..models.base import ModelSpec
    from ..models.registry import fit_hidden
    from ..symmetry import FieldLayout

    spec = ModelSpec(
        name=entry["name"],
        in_layout=FieldLayout.parse(in_layout),
        out_layout=FieldLayout.parse(out_layout),
        hidden=int(entry.get("hidden", 1)),
        layers=int(entry.get("layers", 4)),
        grid=tuple(grid),
        group=group,
        kernel_size=int(entry.get("kernel_size", 3)),
        options=dict(entry.get("options", {})),
        residual=str(entry.get("residual", "")),
        rescale=bool(entry.get("rescale", False)),
    )
    if "budget" in entry:
        spec, predicted = fit_hidden(spec, int(entry["budget"]))
        log.info(
            "%s: hidden=%d for a budget of %d parameters (%d)",
            spec.name,
            spec.hidden,
            entry["budget"],
            predicted,
        )
    return spec


def model_label(entry: dict[str, Any]) -> str:
    """A model entry's identity in paths and tables: its ``label``, else its ``name``. Two entries of one network
    that differ in training (``augment``) or in a constraint (``options.tied``) need labels of their own; a
    tutorial entry always has one (it names its network by ``model``)."""
    return str(entry["label"] if "label" in entry else entry["name"])


def model_entry(models: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """The entry whose :func:`model_label` is ``label``."""
    for entry in models:
        if model_label(entry) == label:
            return entry
    raise ValueError(f"model {label!r} is not in this study's config (have {[model_label(m) for m in models]})")


def run_meta(settings: dict[str, Any], data_sha: str, **keys: Any) -> dict[str, Any]:
    """Metadata stored with a run: its keys (model, alpha, seed, ...) and lineage."""
    return {**keys, **lineage_record(settings, data_sha)}


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def spread_elements(order: int, count: int) -> list[int]:
    """``count`` non-identity elements of a group of ``order``, evenly spread over its element list (0: all).

    Why: the EE of an O_h model averages 47 forward passes per sample; at paper size (64³) each costs about half a
    minute on a CPU, so the paper-scale execution check measures one element (``evaluation.ee_elements``) — the
    shapes, and so the memory, are those of every element.
    """
    others = list(range(1, order))
    if count <= 0 or count >= len(others):
        return others
    return [others[(i * len(others)) // count] for i in range(count)]


def evaluate_checkpoint(
    task,
    ckpt_path: str | os.PathLike,
    *,
    splits: tuple[str, ...],
    ee_split: str,
    ee_samples: int,
    ee_elements: int = 0,
) -> dict[str, Any]:
    """Scores on ``splits`` and the equivariance error on ``ee_split`` of one checkpoint, in physical units.

    EE is measured on ``ee_samples`` inputs of ``ee_split`` drawn seeded (seed 0) and stratified across simulations
    and times (``measures/samples.py``; recorded as ``ee_samples``), over every non-identity group element or
    ``ee_elements`` of them (``spread_elements``; recorded as ``ee_elements``); for a model on normalised data the
    physical EE is ``scale`` times the normalised one, because the group action is linear. The model runs on the
    task's device (the training job's: a GPU job evaluates on its GPU, issue 14).
    """

    from ..measures.correction import correction_diagnostics, flops_per_sample
    from ..measures.equivariance import equivariance_error
    from ..measures.samples import evaluation_sample
    from ..models.base import count_parameters
    from ..symmetry import group_by_name
    from ..training import checkpoint
    from ..training.tasks import score

    model, ckpt = checkpoint.load_model(ckpt_path)
    model.to(task.device)
    scores = {split: score(task, model, split) for split in splits}
    index, chosen = evaluation_sample(task, ee_split, ee_samples, seed=0)
    x, _ = task.batch(ee_split, index)
    group = group_by_name(model.spec.group)
    elements = spread_elements(group.order, ee_elements)
    ee = equivariance_error(model, x, group, model.in_layout, model.out_layout, elements=elements)
    extra: dict[str, Any] = {"flops_per_sample": flops_per_sample(model, x)}
    if hasattr(task, "input_frames"):  # a forecasting task: its skip (or persistence) is a trivial forecast
        # the collapse diagnostic (issue 20): the learned correction against what the skip alone gets
        extra["correction"] = {split: correction_diagnostics(task, model, split) for split in splits}
    return {
        **ckpt["meta"],
        "checkpoint_epoch": ckpt["epoch"],
        "params": count_parameters(model),
        "hidden": model.spec.hidden,
        "scores": scores,
        "ee": ee["ee"] * task.scale,
        "ee_rel": ee["ee_rel"],
        "ee_max": ee["ee_max"] * task.scale,
        "ee_samples": chosen,  # [simulation, start] of each sample
        "ee_elements": elements,
        **extra,
    }


def evaluate_checkpoints(
    task, run_dir: str | os.PathLike, *, splits: tuple[str, ...], ee_split: str, evaluation: dict[str, Any]
) -> None:
    """Evaluate every checkpoint of a finished run (``runs.CHECKPOINTS``) into ``eval_<checkpoint>.json``.

    Done by the training job itself, on its device: the evaluation is a few forward passes, far cheaper than a job
    of its own. ``evaluation`` is the study's config section (``ee_samples``, optional ``ee_elements``).
    """
    for name in CHECKPOINTS:
        result = evaluate_checkpoint(
            task,
            Path(run_dir) / checkpoint_file(name),
            splits=splits,
            ee_split=ee_split,
            ee_samples=int(evaluation["ee_samples"]),
            ee_elements=int(evaluation.get("ee_elements", 0)),
        )
        write_json(Path(run_dir) / eval_file(name), result)


def data_sha(data: Any) -> str:
    """The content hash of a study's data: a store's ``content_sha256`` attribute, or ``data_sha`` of loaded pairs
    (the super-resolution data object)."""
    return data.attrs["content_sha256"] if hasattr(data, "attrs") else data.data_sha


def forecast_spec(settings: dict[str, Any], ds: Any) -> ModelSpec:
    """The spec of a 2-D forecasting model (levels, rotation): ``input_frames`` velocity frames → the next one on the
    store's square grid, C4."""
    n = int(ds.sizes["x"])
    return model_spec(settings["model"], f"{settings['input_frames']} vector", "1 vector", (n, n), "C4")


@dataclass(frozen=True)
class Training:
    """What a study's training job does differently from another's; :func:`train_run` does the rest.

    ``make_task(settings, store)`` → ``(task, data)``; ``spec(settings, data)`` → the model's spec; the checkpoints
    are scored on ``splits`` with the EE on ``ee_split``; ``example(task, run_dir, settings)``, when given, saves
    the figure's example after the evaluation.
    """

    study: str
    make_task: Callable[[dict[str, Any], Any], tuple[Any, Any]]
    spec: Callable[[dict[str, Any], Any], ModelSpec]
    splits: tuple[str, ...]
    ee_split: str
    example: Callable[[Any, Path, dict[str, Any]], None] | None = None


def train_model(
    settings: dict[str, Any], task: Any, spec: ModelSpec, run_dir: str | os.PathLike, sha: str, keys: dict[str, Any]
) -> dict[str, Any]:
    """Train one run with ``settings["training"]``; ``keys`` (``study``, the run keys with ``seed`` and ``alpha``, in
    the order the metadata lists them) and the lineage are stored with it."""
    from ..training.trainer import TrainSettings, train

    meta = run_meta(settings, sha, **keys)
    training = TrainSettings.from_dict(settings["training"])
    return train(task, spec, training, run_dir, seed=keys["seed"], alpha=keys["alpha"], meta=meta)


def train_run(
    training: Training, settings: dict[str, Any], store: str | os.PathLike, run_dir: str | os.PathLike, **run: Any
) -> dict[str, Any]:
    """Train one run of a model grid (``run``: ``model``, ``alpha``, ``seed`` and the study's other keys, in path
    order), evaluate every checkpoint and save the study's example; ``settings`` is the study's ``run_settings``."""
    if model_label(settings["model"]) != run["model"]:
        raise ValueError(f"settings are for model {model_label(settings['model'])!r}, not {run['model']!r}")
    task, data = training.make_task(settings, store)
    spec = training.spec(settings, data)
    summary = train_model(settings, task, spec, run_dir, data_sha(data), {"study": training.study, **run})
    evaluate_checkpoints(
        task, run_dir, splits=training.splits, ee_split=training.ee_split, evaluation=settings["evaluation"]
    )
    if training.example is not None:
        training.example(task, Path(run_dir), settings)
    return summary


def study_train_run(training: Training, keys: Sequence[str]) -> Callable[..., dict[str, Any]]:
    """A study's ``train_run(settings, store, run_dir, *, <keys>)``: :func:`train_run` with ``training`` bound.

    Why a factory and not one wrapper per study: the wrappers were copies that differed only in their keywords. The
    run keys (``DESCRIPTION.keys``, in path order) become keyword-only parameters of the returned function's
    signature, so the CLI (``--threads`` only to functions that take it) and the interface test read the study's
    keys from it, and a missing or unknown key is a ``TypeError`` naming it, as for a written-out signature.
    """
    keys = tuple(keys)
    signature = inspect.Signature(
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in ("settings", "store", "run_dir")]
        + [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in keys]
    )

    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs).arguments
        return train_run(training, bound["settings"], bound["store"], bound["run_dir"], **{k: bound[k] for k in keys})

    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = "train_run"
    run.__doc__ = (
        f"Train one run of the {training.study} study (run keys {', '.join(keys)}), evaluate every checkpoint and "
        "save the study's example; ``settings`` is the study's ``run_settings``."
    )
    return run
