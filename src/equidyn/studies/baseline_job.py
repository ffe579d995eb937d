"""The baseline job: score a study's trivial baseline on its test splits (``equidyn baseline``).

The task is the one the study's training job rebuilds from the run's settings (same windows, rollout steps,
normalisation and physical units), and the baseline (:mod:`equidyn.models.trivial`) is scored by the same
:func:`equidyn.training.tasks.score`, so model and baseline differ in nothing but the prediction. Which baseline a
study has, and the settings and path of its job: :mod:`equidyn.studies.baselines`.
"""

from __future__ import annotations

import os
from typing import Any

from ..atomic import write_json
from ..lineage import lineage_record
from . import common
from .baselines import BASELINES


def baseline_model(study: str, settings: dict[str, Any], task: Any):
    """The baseline of ``study`` for the task that ``settings`` build."""
    from ..models.trivial import InterpolatedInput, Persistence

    if BASELINES[study][0] == "persistence":
        return Persistence(int(settings["input_frames"]))
    factor = int(task.targets["test"].shape[-1] // task.inputs["test"].shape[-1])
    return InterpolatedInput(factor)


def compute(study: str, settings: dict[str, Any], store: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Score the study's baseline on its test splits and write ``{baseline, scores, lineage}`` to ``out``."""
    import torch

    from ..models.trivial import LinearExtrapolation
    from ..training.tasks import score
    from .catalog import study as study_module

    name, splits = BASELINES[study]
    task, data = study_module(study).make_task(settings, store)
    task.to(torch.device("cpu"))
    model = baseline_model(study, settings, task).eval()
    record = {
        "study": study,
        "baseline": name,
        "scores": {split: score(task, model, split) for split in splits},
        "n_samples": {split: task.n(split) for split in splits},
        **lineage_record(settings, common.data_sha(data)),
    }
    if name == "persistence" and int(settings["input_frames"]) >= 2:
        linear = LinearExtrapolation(int(settings["input_frames"])).eval()
        record["scores_linear_extrapolation"] = {split: score(task, linear, split) for split in splits}
    if study == "levels":
        record["level"] = int(data.attrs["level"])
    if study == "exponax":
        record["flow"] = str(data.attrs["flow"])
    write_json(out, record)
    return record
