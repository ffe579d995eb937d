"""The scaling study (issue 23): test error against model size, data size and compute, per arm and level.

The runs train on the held-out level stores of the level study (``data/levels/level{level}.zarr``, built from the
config's ``levels`` section, which must use ``protocol: heldout``): the test plumes are unseen plume groups, so a
lower test error means a model that generalises, not one that extrapolates a trajectory further.

Two sweeps per arm and level, every point with the same seeds:

* **model size**: the arm at each parameter budget of ``sizes``, on all the training plume groups;
* **data size**: the arm at its own ``budget`` (the model entry's), on a ``fraction`` of the training plume groups.

A run is keyed by ``(model, alpha, level, size, fraction, seed)``; the run at the entry's budget on all the data
belongs to both sweeps and is trained once.

**Fewer plume groups, the same optimisation.** A run on a fraction f of the groups sees f times the windows per
epoch. It trains ``epochs / f`` epochs with the decay ``γ^f`` per epoch and a patience of ``patience / f``: the same
number of optimiser steps with the same learning rate at every step as the full-data run (:func:`fraction_training`).
Training the same number of epochs would give the small-data runs a quarter of the steps, and a curve that has
not flattened would be read as a data effect (docs/decisions.md, "The scaling study").

**Which groups.** ``k = round(f·n)`` of the ``n`` training groups (ordered by buoyancy), the centres of ``k`` equal
bins (:func:`chosen_groups`): each subset spans the buoyancy range evenly, so the test plumes stay interpolations
at every fraction. A group is a whole C4 orbit, so the subset stays exactly symmetric at level 0.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import write_csv
from ..lineage import LINEAGE_COLUMNS
from . import common, levels
from .description import Run, StudyDescription

DESCRIPTION = StudyDescription(
    name="scaling",
    run_pattern="{model}/alpha{alpha}/level{level}/size{size}/frac{fraction}/seed{seed}",
    store="data/levels/level{level}.zarr",
    tables=("scaling", "scaling_fits", "scaling_gaps"),
    measured_split=None,
    headline=("test", "rmse"),
)

#: the two sweeps: ``sizes`` (every budget at fraction 1) and ``data`` (every fraction at the entry's budget)
SWEEPS = ("sizes", "data")
RUN_KEYS = ("input_frames", "rollout", "evaluation")


def format_fraction(fraction: float) -> str:
    """Path-safe and round-trippable: 0.25, 0.5, 1."""
    return common.format_alpha(fraction)


def sweep_runs(section: dict[str, Any], sweep: str, level: int | None = None) -> list[dict[str, Any]]:
    """The runs of one sweep (``sizes`` or ``data``), for one level or all, as run keys."""
    if sweep not in SWEEPS:
        raise ValueError(f"unknown scaling sweep {sweep!r}; expected one of {SWEEPS}")
    runs = []
    for entry in section["models"]:
        label = common.model_label(entry)
        points = (
            [(int(s), 1.0) for s in section["sizes"]]
            if sweep == "sizes"
            else [(int(entry["budget"]), float(f)) for f in section["fractions"]]
        )
        for alpha in entry.get("alphas", [0]):
            for lvl in section["levels"] if level is None else [level]:
                for size, fraction in points:
                    for seed in common.entry_seeds(section, entry):
                        runs.append(
                            {
                                "model": label,
                                "alpha": common.format_alpha(alpha),
                                "level": int(lvl),
                                "size": size,
                                "fraction": format_fraction(fraction),
                                "seed": seed,
                            }
                        )
    return runs


def _parts(section: dict[str, Any]) -> list[tuple[str, int]]:
    """Every part, ``(sweep, level)``, sweep by sweep and level by level."""
    return [(sweep, int(level)) for sweep in SWEEPS for level in section["levels"]]


def kept_runs(section: dict[str, Any]) -> set[tuple]:
    """The runs (:func:`_run_key`) of the parts kept from an earlier sitting (``saved_parts``)."""
    saved = set(section.get("saved_parts") or {})
    return {_run_key(r) for sweep, level in _parts(section) if part_name(sweep, level) in saved
            for r in sweep_runs(section, sweep, level)}  # fmt: skip


def runs_to_train(section: dict[str, Any], sweep: str, level: int) -> list[dict[str, Any]]:
    """The runs of one part that this sitting trains: all of them, less those of a kept part (the full-data run at
    an entry's budget is in both sweeps; with the sizes part kept, the data part takes that run's row from it)."""
    kept = kept_runs(section)
    return [r for r in sweep_runs(section, sweep, level) if _run_key(r) not in kept]


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run this sitting trains, each once (the full-data run at an entry's budget is in both sweeps): the runs
    of the parts not kept from an earlier sitting (``saved_parts``, :func:`part_sources`), less the kept ones."""
    seen, out = kept_runs(section), []  # a kept part's runs are all kept, so its part adds none
    for sweep, level in _parts(section):
        for run in sweep_runs(section, sweep, level):
            if _run_key(run) not in seen:
                seen.add(_run_key(run))
                out.append(run)
    return out


def fraction_training(training: dict[str, Any], fraction: float) -> dict[str, Any]:
    """The training settings of a run on ``fraction`` of the data: the full-data run's optimiser steps and
    per-step learning rates (epochs / f, γ^f per epoch, patience / f); unchanged at f = 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a data fraction lies in (0, 1], got {fraction}")
    if fraction == 1:
        return dict(training)
    out = {**training, "epochs": math.ceil(int(training["epochs"]) / fraction)}
    if "lr_gamma" in training:
        out["lr_gamma"] = float(training["lr_gamma"]) ** fraction
    if "patience" in training:
        out["patience"] = math.ceil(int(training["patience"]) / fraction)
    return out


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run: the task settings, the model entry at the run's size (its ``budget``), the data
    fraction and the training settings that fraction implies. Adding a size, fraction or seed reruns nothing."""
    entry = common.run_entry(section["models"], run["model"])
    entry["budget"] = int(run["size"])
    fraction = float(run["fraction"])
    return {
        **{k: section[k] for k in RUN_KEYS},
        "model": entry,
        "fraction": fraction,
        "training": fraction_training(section["training"], fraction),
    }


def chosen_groups(groups: list[int], fraction: float) -> list[int]:
    """``round(f·n)`` (at least 1) of the training groups, ordered by base index (= buoyancy): the centres of as many
    equal bins, so every subset spans the range."""
    ordered = sorted(int(g) for g in groups)
    n = len(ordered)
    k = max(1, min(n, round(fraction * n)))
    return [ordered[min(n - 1, int((i + 0.5) * n / k))] for i in range(k)]


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    """The level task on the store, its training windows restricted to the chosen plume groups."""
    import torch

    from ..data.smoke_datasets import heldout_split_sims, level_protocol

    task, ds = levels.make_task(settings, store)
    if level_protocol(ds) != "heldout":
        raise ValueError(f"{store}: the scaling study needs a held-out level store (levels.protocol: heldout)")
    train_sims = heldout_split_sims(ds)["train"]
    group_of = {int(s): int(g) for s, g in zip(ds.sim.values, ds.group.values, strict=True)}
    groups = chosen_groups(sorted({group_of[s] for s in train_sims}), float(settings.get("fraction", 1.0)))
    keep_sims = torch.as_tensor([s for s in train_sims if group_of[s] in groups], dtype=torch.long)
    train = task.windows["train"]
    task.windows["train"] = train[torch.isin(train[:, 0], keep_sims)]
    task.train_groups = groups
    return task, ds


TRAINING = common.Training(
    study="scaling", make_task=make_task, spec=common.forecast_spec, splits=("test",), ee_split="test"
)


#: ``train_run(settings, store, run_dir, *, <DESCRIPTION.keys>)`` (:func:`common.study_train_run`)
train_run = common.study_train_run(TRAINING, DESCRIPTION.keys)


#: ``scaling.csv``'s columns: the run keys, then what was measured
TABLE_COLUMNS = (
    "model",
    "alpha",
    "level",
    "size",
    "fraction",
    "seed",
    "params",
    "hidden",
    "train_groups",
    "train_windows",
    "epochs_run",
    "best_epoch",
    "test_rmse",
    "skill_vs_skip",
    "correction_ratio",
    "flops_per_sample",
    "samples_seen",
    "compute_flops",
    "train_seconds",
    "rel_change_last20",
    "flattened",
)


def run_row(run_dir: str | os.PathLike, keys: dict[str, Any], groups: list[int]) -> dict[str, Any]:
    """One run's row: the best checkpoint's evaluation, the training summary and the convergence check.

    ``compute_flops`` is the forward FLOPs per sample (``torch.utils.flop_counter``, recorded by the evaluation)
    times the training samples seen over the whole run; a backward pass costs about twice a forward, a factor
    common to every arm that moves no exponent, so it is left out. ``train_seconds`` is a record of this machine's
    wall time, not a measure of cost.
    """
    from ..runs import HISTORY_FILE, SUMMARY_FILE, eval_file
    from .flatness import run_row as convergence_row

    run_dir = Path(run_dir)
    record = common.read_json(run_dir / eval_file("best"))
    summary = common.read_json(run_dir / SUMMARY_FILE)
    conv = convergence_row(run_dir / HISTORY_FILE, {})
    test = record.get("correction", {}).get("test", {})
    seen = int(summary["samples_seen"])
    return {
        **keys,
        "params": record["params"],
        "hidden": record["hidden"],
        "train_groups": " ".join(map(str, groups)),
        "train_windows": int(summary["train_samples_per_epoch"]),
        "epochs_run": int(summary["epochs_run"]),
        "best_epoch": int(summary["best_epoch"]),
        "test_rmse": record["scores"]["test"]["rmse"],
        "skill_vs_skip": test.get("skill_vs_skip", math.nan),
        "correction_ratio": test.get("correction_ratio", math.nan),
        "flops_per_sample": record["flops_per_sample"],
        "samples_seen": seen,
        "compute_flops": float(record["flops_per_sample"]) * seen,
        "train_seconds": float(summary["train_seconds"]),
        "rel_change_last20": conv["rel_change_last20"],
        "flattened": conv["flattened"],
        **{k: record[k] for k in LINEAGE_COLUMNS},
    }


def part_table(settings: dict[str, Any], sweep: str, level: int, root: str | os.PathLike, out: str | os.PathLike):
    """One part of the study (a sweep at one level): its runs' rows, ``analysis/scaling/<sweep>_level<level>.csv``.

    ``settings`` is the ``scaling`` config section, ``root`` is ``results/<name>``. A part is what one sitting
    trains (docs/reproduction.md, "The scaling study"); ``tables/scaling.csv`` gathers the parts.
    """
    import pandas as pd

    from ..store import open_store

    store = open_store(Path(root) / DESCRIPTION.store_path({"level": level}))
    train_groups = json.loads(store.attrs["heldout_groups"])["train"]
    kept = _kept_rows(settings)
    rows = []
    for run in sweep_runs(settings, sweep, level):
        if _run_key(run) in kept:  # trained in an earlier sitting: its row, with its own lineage, from the kept part
            rows.append({**kept[_run_key(run)], "sweep": sweep})
            continue
        run_dir = Path(root) / DESCRIPTION.run_path(run)
        groups = chosen_groups(train_groups, float(run["fraction"]))
        rows.append({"sweep": sweep, **run_row(run_dir, dict(run), groups)})
    df = pd.DataFrame(rows)
    write_csv(df, out)
    return df


def part_name(sweep: str, level: int) -> str:
    """A part's name, ``<sweep>_level<level>``: its table's file stem and its key under ``saved_parts``."""
    return f"{sweep}_level{int(level)}"


def _kept_rows(section: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    """The rows of the kept parts (``saved_parts``), by run (:func:`_run_key`); each part held to ``section`` first."""
    import pandas as pd

    rows: dict[tuple, dict[str, Any]] = {}
    for path in (section.get("saved_parts") or {}).values():
        part = pd.read_csv(path)
        check_part(part, section, path)
        rows.update({_run_key(r): r for r in part.to_dict("records")})
    return rows


def part_sources(section: dict[str, Any], fresh: Callable[[str, int], str]) -> list[str]:
    """Each part's table, sweep by sweep and level by level: the file ``saved_parts`` names for it, else
    ``fresh(sweep, level)`` (the part rule's output).

    Why saved parts: on 2 cores the study is four parts of 45–105 min, and a sitting may end, or move to another
    machine, with ``results/`` gone. A finished part's table is self-contained (every row carries its run's config
    hash, code revision, seed and data checksum), so it can be kept (``docs/findings/scaling/parts/``) and named here
    instead of being trained again; :func:`check_part` then holds it to the current config.
    """
    saved = dict(section.get("saved_parts") or {})
    names = {part_name(sweep, level) for sweep, level in _parts(section)}
    unknown = sorted(set(saved) - names)
    if unknown:
        raise ValueError(f"scaling.saved_parts: {unknown} are not parts of this config (its parts: {sorted(names)})")
    return [saved.get(part_name(sweep, level)) or fresh(sweep, level) for sweep, level in _parts(section)]


def _run_key(run: Any) -> tuple:
    """A run's keys in one form, whether read from a CSV (numbers) or made by :func:`sweep_runs` (strings)."""
    return (
        str(run["model"]),
        float(run["alpha"]),
        int(run["level"]),
        int(run["size"]),
        float(run["fraction"]),
        int(run["seed"]),
    )


def check_part(part, section: dict[str, Any], path: str | os.PathLike) -> None:
    """A part's table holds exactly the runs of its sweep and level under ``section``, each trained with the settings
    this config gives it (its ``config_sha``); otherwise a ``ValueError`` names the file and the first bad run.

    Why: a kept part (``saved_parts``) may come from another sitting; one trained under other settings, or with runs
    missing, would silently mix two studies in one fit.
    """
    from ..lineage import config_sha

    sweeps, lvls = sorted(set(part["sweep"])), sorted(set(part["level"]))
    if len(sweeps) != 1 or len(lvls) != 1:
        raise ValueError(f"{path}: a part is one sweep at one level, this has sweeps {sweeps} and levels {lvls}")
    sweep, level = sweeps[0], int(lvls[0])
    if level not in [int(v) for v in section["levels"]]:
        raise ValueError(f"{path}: level {level} is not in scaling.levels {section['levels']}")
    expected = {_run_key(r): r for r in sweep_runs(section, sweep, level)}
    rows = {_run_key(r): r for r in part.to_dict("records")}
    missing, extra = sorted(expected.keys() - rows.keys()), sorted(rows.keys() - expected.keys())
    if missing or extra:
        raise ValueError(
            f"{path}: the {sweep} part of level {level} does not match this config: "
            f"{len(missing)} runs missing (first {missing[:1]}), {len(extra)} not in it (first {extra[:1]})"
        )
    for key, run in expected.items():
        want, got = config_sha(run_settings(section, run)), str(rows[key]["config_sha"])
        if got != want:
            raise ValueError(
                f"{path}: run {DESCRIPTION.run_path(run)} was trained with settings {got}, this config gives {want} "
                "(a part from another configuration)"
            )


def study_table(parts: list[str], out: str | os.PathLike, settings: dict[str, Any] | None = None):
    """``tables/scaling.csv``: every run once, with the sweeps it belongs to (``sizes``, ``data`` or both).

    With ``settings`` (the ``scaling`` section) every part is first held to it (:func:`check_part`), and each level's
    runs must share one data store checksum across parts.
    """
    import pandas as pd

    frames = [pd.read_csv(p) for p in parts]
    if settings is not None:
        for path, part in zip(parts, frames, strict=True):
            check_part(part, settings, path)
    df = pd.concat(frames, ignore_index=True)
    stores = df.groupby("level").data_sha.nunique()
    if (stores > 1).any():
        raise ValueError(f"scaling parts {parts}: level(s) {list(stores[stores > 1].index)} mix data stores")
    keys = list(DESCRIPTION.keys)
    sweeps = df.groupby(keys, sort=False)["sweep"].agg(lambda s: " ".join(sorted(set(s)))).rename("sweeps")
    df = df.drop(columns="sweep").drop_duplicates(subset=keys).merge(sweeps.reset_index(), on=keys)
    df = (
        df[[*TABLE_COLUMNS, "sweeps", *LINEAGE_COLUMNS]]
        .sort_values(["level", "model", "alpha", "size", "fraction", "seed"])
        .reset_index(drop=True)
    )
    write_csv(df, out)
    return df
