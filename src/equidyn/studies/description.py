"""One description per study, and the interface every study module implements.

A study (levels, rotation, superres, tutorial, …) is identified by *one* :class:`StudyDescription`, declared as
``DESCRIPTION`` at the top of its module: where its runs live, which data store a run reads, which checkpoints
and evaluations a training job writes, which tables it makes and what the dynamics study measures on it. The
rules (through :class:`equidyn.workflow.Workflow`), the dynamics study and the figures read paths and names from
it, so adding a checkpoint, renaming the early epoch or adding a study is a change in one place. Run paths are
only ever *formatted* from run keys; nothing parses them back.

Every study module also implements :class:`StudyModule` (checked by ``tests/test_study_description.py``), and
:mod:`equidyn.studies.catalog` lists the modules, so code that is generic over studies (the dynamics measures,
the workflow) dispatches through that one table instead of importing a module by name.

Plain Python (no torch, numpy or pandas): the Snakefile imports this at DAG-building time.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..runs import CHECKPOINTS, HISTORY_FILE, SUMMARY_FILE, checkpoint_file, eval_file, measure_file

Run = Mapping[str, Any]  # the run keys of one run: {"model": "rsteer", "alpha": "0.01", "level": 3, "seed": 0}


def pattern_keys(pattern: str) -> tuple[str, ...]:
    """The ``{field}`` names of a format pattern, in order: ``"{model}/seed{seed}"`` → ``("model", "seed")``."""
    return tuple(field for _, field, _, _ in string.Formatter().parse(pattern) if field)


@dataclass(frozen=True)
class StudyDescription:
    """What identifies a study's runs and outputs (paths are relative to ``results/<config name>/``).

    ``run_pattern`` lies below ``runs/<name>/`` and names the run keys, which are also the rules' wildcards;
    ``store`` is the data store a run trains on and may use run keys (``data/levels/level{level}.zarr``).
    """

    name: str
    run_pattern: str
    store: str
    #: the run key that selects the model entry in the config (``label`` for the tutorial)
    model_key: str = "model"
    #: checkpoints the training job keeps (``<checkpoint>.pt``)
    checkpoints: tuple[str, ...] = CHECKPOINTS
    #: evaluations the training job writes (``eval_<evaluation>.json``); one per checkpoint unless stated
    evaluations: tuple[str, ...] = CHECKPOINTS
    #: further per-run files the training job writes for the figures
    examples: tuple[str, ...] = ()
    #: tables of the study (``tables/<table>.csv``)
    tables: tuple[str, ...] = ()
    #: split whose inputs the Lie derivative is measured on; ``None``: the dynamics study does not measure it
    measured_split: str | None = None
    #: ``(split, metric)`` that ``dynamics.csv`` reports as the run's test error
    headline: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.model_key not in self.keys or "seed" not in self.keys:
            raise ValueError(f"study {self.name!r}: run pattern {self.run_pattern!r} needs {self.model_key} and seed")
        unknown = set(pattern_keys(self.store)) - set(self.keys)
        if unknown:
            raise ValueError(f"study {self.name!r}: store {self.store!r} uses {sorted(unknown)}, not run keys")

    # -- keys and paths ----------------------------------------------------------------------------------------
    @property
    def keys(self) -> tuple[str, ...]:
        """The run keys (= wildcards), in path order."""
        return pattern_keys(self.run_pattern)

    @property
    def run_dir(self) -> str:
        """The run directory as a pattern: ``runs/levels/{model}/alpha{alpha}/level{level}/seed{seed}``."""
        return f"runs/{self.name}/{self.run_pattern}"

    def run_path(self, run: Run) -> str:
        """The run directory of one run."""
        return self.run_dir.format(**{k: run[k] for k in self.keys})

    def run_file(self, run: Run, name: str) -> str:
        return f"{self.run_path(run)}/{name}"

    def store_path(self, run: Run) -> str:
        """The data store one run trains on."""
        return self.store.format(**{k: run[k] for k in pattern_keys(self.store)})

    @property
    def measurable(self) -> bool:
        return self.measured_split is not None

    # -- what a training job writes ----------------------------------------------------------------------------
    def train_files(self) -> dict[str, str]:
        """Every file a training job writes, as ``{output name: file name in the run directory}``.

        The names are valid identifiers, so a rule can declare them as named outputs (``output: **files``).
        """
        files = {c: checkpoint_file(c) for c in self.checkpoints}
        files |= {"history": HISTORY_FILE, "summary": SUMMARY_FILE}
        files |= {f"eval_{e}": eval_file(e) for e in self.evaluations}
        files |= {name.split(".")[0]: name for name in self.examples}
        return files

    def measure_file(self, measure: str, checkpoint: str) -> str:
        return measure_file(measure, checkpoint)


@runtime_checkable
class StudyModule(Protocol):
    """The interface of a study module (``equidyn.studies.<name>``); each is a module-level function.

    * ``runs(section)`` — every run of the configured grid as run keys (the keys of ``DESCRIPTION.keys``);
    * ``run_settings(section, run)`` — what determines one run: exactly what its training job receives, and whose
      hash is the run's ``config_sha`` (so adding a seed does not rerun existing runs);
    * ``make_task(settings, store)`` — ``(task, data)``: the run's training task rebuilt from its settings, as the
      training job and the dynamics measures both need it;
    * ``train_run(settings, store, run_dir, **run)`` — train and evaluate one run, called with keywords (the run
      keys as in ``DESCRIPTION.keys``; ``alpha`` as a float, ``seed``/``level`` as ints).
    """

    DESCRIPTION: StudyDescription

    def runs(self, section: dict[str, Any]) -> list[dict[str, Any]]: ...

    def run_settings(self, section: dict[str, Any], run: Run) -> dict[str, Any]: ...

    def make_task(self, settings: dict[str, Any], store: Any) -> tuple[Any, Any]: ...

    def train_run(self, settings: dict[str, Any], store: Any, run_dir: Any, **run: Any) -> dict[str, Any]: ...
