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

The parts, one job each: this module says which baseline a study has, where its file lies and what settings its
job gets (plain Python: the rules import it at DAG-building time); :mod:`equidyn.models.trivial` defines the
predictors; :mod:`equidyn.studies.baseline_job` scores one; :mod:`equidyn.studies.baseline_tables` joins the scores
into the summary tables. Only this module and the job look studies up in :mod:`equidyn.studies.catalog`, and the
study modules import only the joins, so the catalog and the baselines import each other nowhere.
"""

from __future__ import annotations

from typing import Any

#: which baseline each study's tasks are compared with, and the splits it is scored on
BASELINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "levels": ("persistence", ("test",)),
    "rotation": ("persistence", ("test_future", "test_domain")),
    "superres": ("interpolated_input", ("test",)),
    "exponax": ("persistence", ("test",)),
}
#: the studies whose baseline is one file per value of a run key (one store each), and that key
PER_STORE_KEY = {"levels": "level", "exponax": "flow"}


def baseline_file(study: str) -> str:
    """Where a study's baseline lies below ``results/<name>/`` (a pattern in ``{level}`` for the level study, in
    ``{flow}`` for the exponax study)."""
    if study not in BASELINES:
        raise ValueError(f"no baseline for study {study!r}; have {sorted(BASELINES)}")
    if study in PER_STORE_KEY:
        key = PER_STORE_KEY[study]
        return f"analysis/baselines/{study}/{key}{{{key}}}.json"
    return f"analysis/baselines/{study}.json"


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
