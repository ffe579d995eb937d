"""Trivial baselines, scored exactly like the models, so a table can show that every model beats them.

A model's test error means little until it is set against what no learning achieves: *persistence* (the last
input frame, repeated over the rollout) for forecasting, and the *interpolated input* (the last coarse time,
trilinearly upsampled) for super-resolution. Each baseline is a parameter-free ``nn.Module`` scored by the same
:func:`equidyn.training.tasks.score` on the same task (same windows, rollout steps, normalisation and physical
units) that the training job rebuilds from the run's settings, so model and baseline differ in nothing but the
prediction. A baseline depends on the data store and the task settings only, not on the model or seed, so it is
computed once per store (one small job) and joined into the summary tables as columns.

The tutorial needs no job: its table reports R², which *is* skill against the mean prediction (R² = 0 is the
mean), so ``tutorial.csv`` shows that baseline by construction.

Top-level imports stay light (no torch): the rules import :func:`baseline_settings` at DAG-building time.
"""

from __future__ import annotations

import os
from typing import Any

from ..atomic import write_json
from ..lineage import lineage_record

#: which baseline each study's tasks are compared with, and the splits it is scored on
BASELINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "levels": ("persistence", ("test",)),
    "rotation": ("persistence", ("test_future", "test_domain")),
    "superres": ("interpolated_input", ("test",)),
}


def baseline_file(study: str) -> str:
    """Where a study's baseline lies below ``results/<name>/`` (a pattern in ``{level}`` for the level study)."""
    if study not in BASELINES:
        raise ValueError(f"no baseline for study {study!r}; have {sorted(BASELINES)}")
    return "analysis/baselines/levels/level{level}.json" if study == "levels" else f"analysis/baselines/{study}.json"


def baseline_settings(study: str, section: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """What determines a baseline: the settings of the grid's first run matching ``run`` (e.g. ``{"level": 2}``;
    ``{}`` for a one-store study) without the model and training entries (the task, not the network)."""
    from .catalog import study as study_module

    if study not in BASELINES:
        raise ValueError(f"no baseline for study {study!r}; have {sorted(BASELINES)}")
    module = study_module(study)
    run = {k: v for k, v in run.items() if k != "seed"}
    first = next(r for r in module.runs(section) if all(r[k] == v for k, v in run.items() if k in r))
    settings = module.run_settings(section, first)
    return {k: v for k, v in settings.items() if k not in ("model", "training")}


def _modules():
    """The baseline modules (built lazily: torch is imported only by a baseline job)."""
    import torch
    from torch import nn

    from ..models.base import last_frame, skip_prediction

    class Persistence(nn.Module):
        """Predicts the last input frame: ``(B, frames*C, *grid)`` → ``(B, C, *grid)``."""

        def __init__(self, input_frames: int) -> None:
            super().__init__()
            self.input_frames = input_frames

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return last_frame(x, x.shape[1] // self.input_frames)

    class LinearExtrapolation(nn.Module):
        """``2·x_t − x_{t−1}`` from the last two input frames: the second trivial forecast, reported next to
        persistence because a ``residual: linear`` model is built on it (a model that beats persistence only
        through its skip has learnt nothing; this column shows whether it does better than its skip)."""

        def __init__(self, input_frames: int) -> None:
            super().__init__()
            self.input_frames = input_frames

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return skip_prediction("linear", x, x.shape[1] // self.input_frames, tuple(x.shape[2:]))

    class InterpolatedInput(nn.Module):
        """The last coarse time's velocity (channels ``-3:``), trilinearly upsampled by ``factor`` (cell centres,
        ``align_corners=False``: coarse block means sit at the centres of their fine blocks)."""

        def __init__(self, factor: int, components: int = 3) -> None:
            super().__init__()
            self.factor, self.components = factor, components

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return last_frame(x, self.components, tuple(n * self.factor for n in x.shape[2:]))

    return Persistence, InterpolatedInput, LinearExtrapolation


def persistence(input_frames: int):
    return _modules()[0](input_frames)


def interpolated_input(factor: int, components: int = 3):
    return _modules()[1](factor, components)


def linear_extrapolation(input_frames: int):
    return _modules()[2](input_frames)


def baseline_model(study: str, settings: dict[str, Any], task: Any):
    """The baseline of ``study`` for the task that ``settings`` build."""
    name = BASELINES[study][0]
    if name == "persistence":
        return persistence(int(settings["input_frames"]))
    factor = int(task.targets["test"].shape[-1] // task.inputs["test"].shape[-1])
    return interpolated_input(factor)


def compute(study: str, settings: dict[str, Any], store: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Score the study's baseline on its test splits and write ``{baseline, scores, lineage}`` to ``out``."""
    import torch

    from ..training.tasks import score
    from .catalog import study as study_module

    name, splits = BASELINES[study]
    task, data = study_module(study).make_task(settings, store)
    task.to(torch.device("cpu"))
    model = baseline_model(study, settings, task).eval()
    data_sha = data.attrs["content_sha256"] if hasattr(data, "attrs") else data.data_sha
    record = {
        "study": study,
        "baseline": name,
        "scores": {split: score(task, model, split) for split in splits},
        "n_samples": {split: task.n(split) for split in splits},
        **lineage_record(settings, data_sha),
    }
    if BASELINES[study][0] == "persistence" and int(settings["input_frames"]) >= 2:
        linear = linear_extrapolation(int(settings["input_frames"])).eval()
        record["scores_linear_extrapolation"] = {split: score(task, linear, split) for split in splits}
    if study == "levels":
        record["level"] = int(data.attrs["level"])
    write_json(out, record)
    return record


# -- joining into the summary tables ----------------------------------------------------------------------------------
def _read(files: list[str]) -> list[dict[str, Any]]:
    import json

    records = []
    for path in files:
        with open(path) as fh:
            records.append(json.load(fh))
    return records


def _skill(summary, metric: str, baseline_col: str) -> None:
    """``<metric>_skill = 1 − model/baseline`` with its 95 % CI (the baseline is one number per store, so the
    seed CI of the model's mean carries over): > 0 beats the baseline, 0 is no better, 1 is perfect."""
    summary[f"{metric}_skill"] = 1 - summary[f"{metric}_mean"] / summary[baseline_col]
    summary[f"{metric}_skill_ci_low"] = 1 - summary[f"{metric}_ci_high"] / summary[baseline_col]
    summary[f"{metric}_skill_ci_high"] = 1 - summary[f"{metric}_ci_low"] / summary[baseline_col]


def _check_data(summary, records: list[dict[str, Any]], on: str | None = None) -> None:
    """A baseline scored on other data than the runs would make the skill meaningless: refuse it."""
    for rec in records:
        rows = summary if on is None else summary[summary[on] == rec[on]]
        for shas in rows["data_sha"]:
            if rec["data_sha"] not in str(shas).split(";"):
                where = "" if on is None else f" ({on} {rec[on]})"
                raise ValueError(
                    f"baseline {rec['baseline']} of {rec['study']}{where} was scored on data {rec['data_sha']}, "
                    f"the runs on {shas}: rebuild the baseline"
                )


def join_levels(summary, files: list[str]):
    """``baseline_test_rmse`` (persistence on the same level's test windows) and ``test_rmse_skill`` columns."""
    records = _read(files)
    _check_data(summary, records, on="level")
    by_level = {r["level"]: r for r in records}
    missing = sorted(set(summary["level"]) - set(by_level))
    if missing:
        raise ValueError(f"no persistence baseline for level(s) {missing}")
    summary["baseline"] = "persistence"
    summary["baseline_test_rmse"] = summary["level"].map(lambda lv: by_level[lv]["scores"]["test"]["rmse"])
    _skill(summary, "test_rmse", "baseline_test_rmse")
    summary["linear_extrapolation_test_rmse"] = summary["level"].map(lambda lv: _linear(by_level[lv], "test"))
    return summary


def _linear(record: dict[str, Any], split: str) -> float:
    """The linear extrapolation's RMSE on ``split`` (NaN where the runs have one input frame)."""
    return record.get("scores_linear_extrapolation", {}).get(split, {}).get("rmse", float("nan"))


def join_rotation(summary, files: list[str]):
    """``baseline_rmse_future`` / ``baseline_rmse_domain`` (persistence) and the two skill columns."""
    (record,) = _read(files)
    _check_data(summary, [record])
    summary["baseline"] = "persistence"
    for split, short in (("test_future", "future"), ("test_domain", "domain")):
        summary[f"baseline_rmse_{short}"] = record["scores"][split]["rmse"]
        _skill(summary, f"rmse_{short}", f"baseline_rmse_{short}")
        summary[f"linear_extrapolation_rmse_{short}"] = _linear(record, split)
    return summary


def join_superres(summary, files: list[str]):
    """``baseline_test_mae`` / ``baseline_test_rmse`` (trilinearly upsampled input) and ``test_mae_skill``."""
    (record,) = _read(files)
    _check_data(summary, [record])
    summary["baseline"] = "interpolated_input"
    summary["baseline_test_mae"] = record["scores"]["test"]["mae"]
    summary["baseline_test_rmse"] = record["scores"]["test"]["rmse"]
    _skill(summary, "test_mae", "baseline_test_mae")
    return summary
