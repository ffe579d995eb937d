"""What the Snakefile needs to know about the studies: result paths, the runs of each grid, settings per job.

Everything study-specific comes from the study descriptions (``DESCRIPTION`` of each module in
:mod:`equidyn.studies.catalog`): run directories, stores, the files a training job writes, checkpoint names. Paths
are formatted from run keys and never parsed back. Kept out of the ``.smk`` files so they hold rules only
(``snakemake --lint`` asks for that) and so it is plain, testable Python. Imports stay light (no torch, numpy or
pandas): Snakemake evaluates this at DAG-building time, possibly outside the project's environment.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from .runs import CHECKPOINTS, checkpoint_file, eval_file, measure_file
from .studies.catalog import STUDIES, description, measurable
from .studies.description import StudyDescription

#: tables made from several studies' runs, so declared by none of them
OTHER_TABLES = ("dynamics", "claims")
# What a ``dynamics.runs`` entry may set for its runs besides the filters: the measures' memory knobs only
# (``subset.batch_size``, ``hessian.vector_chunk``, ``lie.batch_size``), which do not change a measured value.
MEASURE_OVERRIDES = ("subset", "hessian", "lie")
MEASURE_SECTIONS = {"lie": ("lie",), "sharpness": ("subset", "sharpness"), "hessian": ("subset", "hessian")}
# A resumable job's attempt log: every attempt appends its output there, and the rule copies it to the job's
# ``log:``, which Snakemake 9 deletes before each attempt (so ``>> {log}`` kept only the last one; issue 22).
ATTEMPTS_SUFFIX = ".attempts.log"


def settings_json(section: Any) -> str:
    """A config section as compact JSON: what a job receives, and what its params rerun-trigger compares."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))


def _keys(wildcards: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Snakemake wildcards (or a plain mapping) as a dict of run keys."""
    return dict(wildcards.items())


class Workflow:
    """Paths and job lists of one configured study (``results/<name>/…``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.name = config["name"]

    # -- paths and resources -------------------------------------------------------------------------------------
    def R(self, path: str) -> str:
        """Path of a result of this study: ``results/<name>/<path>``."""
        return f"results/{self.name}/{path}"

    def res(self, kind: str, key: str, default: Any = None) -> Any:
        return self.config["resources"][kind].get(key, default)

    def model_res(self, kind: str, key: str, default: Any = None) -> Any:
        """A run job's request as a function of its ``model`` wildcard: ``resources.by_model.<model>.<kind>`` over
        the class's value. The 64³ O_h GCNN needs ~15× the memory of the 3-D CNN (the paper-scale check's table,
        docs/benchmarks.md); one request per class would give every training job the largest."""
        base = self.res(kind, key, default)
        by_model = self.config["resources"].get("by_model", {})
        if not any(key in entry.get(kind, {}) for entry in by_model.values()):
            return base
        return lambda wildcards: by_model.get(wildcards.model, {}).get(kind, {}).get(key, base)

    def scaling_res(self, key: str) -> Any:
        """A scaling run's request as a function of its ``size`` wildcard: the first tier of
        ``scaling.resources_by_size`` whose ``max_size`` holds the run (tiers sorted by ``max_size``), else the
        ``train`` class's value. A 600k-parameter run on 64² plumes needs many times the memory and time of a
        1.5k one; one request for all would give every job the largest (docs/reproduction.md, the cluster plan)."""
        base = self.res("train", key)
        tiers = sorted(self.config.get("scaling", {}).get("resources_by_size", []), key=lambda t: t["max_size"])
        if not tiers:
            return base

        def request(wildcards: Any) -> Any:
            for tier in tiers:
                if int(wildcards.size) <= int(tier["max_size"]):
                    return tier.get(key, base)
            return tiers[-1].get(key, base)

        return request

    def study(self, study: str) -> StudyDescription:
        return description(study)

    def studies(self) -> list[str]:
        """The studies ``all`` runs: the config's ``studies`` list (default: every study with a config section).

        A smaller study (the laptop study) can leave one out without deleting its section, which the merged
        configuration of a profile always carries.
        """
        return list(self.config.get("studies", [s for s in STUDIES if s in self.config]))

    def run_dir_pattern(self, study: str) -> str:
        """``runs/levels/{model}/alpha{alpha}/level{level}/seed{seed}`` (below ``results/<name>/``)."""
        return description(study).run_dir

    def store(self, study: str) -> str:
        """The store a run of ``study`` trains on, as a pattern in the run keys (a rule's input)."""
        return self.R(description(study).store)

    def table(self, name: str) -> str:
        """``results/<name>/tables/<table>.csv`` of a table a study declares: a misspelt table fails at DAG building."""
        declared = {t for m in STUDIES.values() for t in m.DESCRIPTION.tables} | set(OTHER_TABLES)
        if name not in declared:
            raise ValueError(f"table {name!r} is declared by no study description; declared: {sorted(declared)}")
        return self.R(f"tables/{name}.csv")

    def train_outputs(self, study: str) -> dict[str, str]:
        """The named outputs of a study's training rule: every file its training job writes."""
        d = description(study)
        return {key: self.R(f"{d.run_dir}/{name}") for key, name in d.train_files().items()}

    def run_dir(self, study: str, wildcards: Any) -> str:
        return self.R(description(study).run_path(_keys(wildcards)))

    # The attempt logs are params functions of ``output``: Snakemake counts such a param as derived from the
    # outputs and leaves it out of the params rerun trigger, so adding them reran no existing job.
    def train_attempts(self, study: str) -> Callable[[Any, Any], str]:
        """A training job's attempt log, ``<run dir>/train.attempts.log``.

        In the run folder, with the state a resumed attempt continues from: deleting the folder to retrain also
        starts a new history.
        """
        return lambda wildcards, output: f"{self.run_dir(study, wildcards)}/train{ATTEMPTS_SUFFIX}"

    @staticmethod
    def output_attempts(wildcards: Any, output: Any) -> str:
        """A job's attempt log next to its (first) output, ``lie_best.json`` → ``lie_best.attempts.log``."""
        return os.path.splitext(output[0])[0] + ATTEMPTS_SUFFIX

    def run_settings(self, study: str, wildcards: Any) -> str:
        return settings_json(STUDIES[study].run_settings(self.config[study], _keys(wildcards)))

    # -- the grids ----------------------------------------------------------------------------------------------
    def runs(self, study: str) -> list[dict[str, Any]]:
        """Every run of a study as run keys (= wildcard values)."""
        return STUDIES[study].runs(self.config[study])

    def run_files(self, study: str, name: str, runs: list[dict[str, Any]] | None = None) -> list[str]:
        d = description(study)
        return [self.R(d.run_file(r, name)) for r in (self.runs(study) if runs is None else runs)]

    def runs_files(self, study: str, names: tuple[str, ...], runs: list[dict[str, Any]]) -> list[str]:
        """The files ``names`` of each of ``runs`` (a part of a study's grid), grouped by name."""
        return [f for name in names for f in self.run_files(study, name, runs)]

    def first_seed_runs(self, study: str, **filters: Any) -> list[dict[str, Any]]:
        first = self.config[study]["seeds"][0]
        return [r for r in self.runs(study) if r["seed"] == first and all(r[k] == v for k, v in filters.items())]

    def eval_files(self, study: str) -> list[str]:
        return [f for c in description(study).evaluations for f in self.run_files(study, eval_file(c))]

    def level_history_files(self) -> list[str]:
        lowest = min(self.config["levels"]["levels"])
        return self.run_files("levels", "history.csv", [r for r in self.runs("levels") if r["level"] == lowest])

    # -- the tutorial's input --------------------------------------------------------------------------------------
    def tutorial_user_file(self) -> str | None:
        """The user's input file (``tutorial_data``, else ``tutorial.data.path``), which must exist.

        Checked here, when the DAG is built: a missing input of a job whose outputs exist does not stop Snakemake
        ("Nothing to be done"), so a mistyped path would leave the old results looking current (issue 22).
        """
        key = "tutorial_data" if self.config.get("tutorial_data") else "tutorial.data.path"
        path = self.config.get("tutorial_data") or self.config["tutorial"]["data"].get("path")
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"{key}: the tutorial input {path} does not exist (from {os.getcwd()})")
        return path

    def tutorial_flows(self) -> dict[str, float]:
        """Flow name (``f0``, ``f2`` …) → Coriolis parameter of the tutorial's data."""
        return STUDIES["tutorial"].flows(self.config["tutorial"])

    def tutorial_source(self, wildcards: Any) -> str:
        """A user's file is the ``f0`` flow; the rotating flow is always the built-in f-plane simulation."""
        user = self.tutorial_user_file()
        if user and wildcards.flow == "f0":
            return user
        return self.R(f"data/tutorial/{wildcards.flow}/builtin.nc")

    def tutorial_source_signature(self, wildcards: Any) -> str:
        """A digest of a zarr (directory) input's files: names, sizes and mtimes; ``""`` for a file.

        Snakemake compares a directory input by the directory's own mtime, which rewriting a chunk in place does not
        change (issue 22); in the prepare job's settings, a changed signature reruns it (rerun trigger ``params``).
        A file's own mtime is compared already.
        """
        source = self.tutorial_source(wildcards)
        if not os.path.isdir(source):
            return ""
        digest = hashlib.sha256()
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                info = os.stat(path)
                digest.update(f"{os.path.relpath(path, source)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def tutorial_prepare_settings(self, wildcards: Any) -> str:
        """The prepare job's settings, with a zarr input's :meth:`tutorial_source_signature` (none for a file, so
        the settings, and the jobs, of a NetCDF input stay what they were)."""
        tu = self.config["tutorial"]
        path = self.tutorial_user_file() if wildcards.flow == "f0" else None
        signature = self.tutorial_source_signature(wildcards)
        return settings_json(
            {"data": {**tu["data"], "path": path}, "outputs": tu["outputs"]}
            | ({"source_signature": signature} if signature else {})
        )

    def tutorial_turbulence_settings(self, wildcards: Any) -> str:
        tu = self.config["tutorial"]
        return settings_json({"turbulence": tu["turbulence"], "coriolis": self.tutorial_flows()[wildcards.flow]})

    def tutorial_stores(self) -> list[str]:
        return [self.R(f"data/tutorial/{flow}/prepared.zarr") for flow in self.tutorial_flows()]

    # -- the dynamics measures ------------------------------------------------------------------------------------
    def measured_studies(self) -> tuple[str, ...]:
        """Studies the dynamics measures can take (each gets its own measure rules)."""
        return measurable()

    def dynamics_runs(self) -> list[tuple[str, dict[str, Any]]]:
        """``(study, run keys)`` of every measured run.

        Each entry of ``dynamics.runs`` names a study and optionally restricts its ``level``/``seed``/``model`` lists
        (a measure that no claim reads need not be paid for: the level-0 claims compare RSteer with E2CNN only); a
        study without an entry is not measured.
        """
        return [(selection["study"], run) for selection in self.config["dynamics"]["runs"]
                for run in self.runs(selection["study"]) if _selects(selection, run)]  # fmt: skip

    def _selection(self, study: str, run: dict[str, Any]) -> dict[str, Any]:
        """The first ``dynamics.runs`` entry that selects ``run`` (``{}`` if none does)."""
        for selection in self.config["dynamics"]["runs"]:
            if selection["study"] == study and _selects(selection, run):
                return selection
        return {}

    def measure_overrides(self, study: str, run: dict[str, Any]) -> dict[str, Any]:
        """The memory knobs (``subset``/``hessian`` mappings) of the first ``dynamics.runs`` entry selecting ``run``."""
        return {k: v for k, v in self._selection(study, run).items() if k in MEASURE_OVERRIDES}

    def measured_checkpoints(self, study: str, run: dict[str, Any]) -> tuple[str, ...]:
        """The checkpoints measured for ``run``: the ``checkpoints`` list of the first ``dynamics.runs`` entry that
        selects it (default: every checkpoint). A study whose claims read the best checkpoint only need not pay for
        the early one's Hessians (issue 20: 70 runs on a laptop)."""
        chosen = self._selection(study, run).get("checkpoints", CHECKPOINTS)
        return tuple(c for c in CHECKPOINTS if c in chosen)

    def dynamics_files(self, measures: tuple[str, ...]) -> list[str]:
        return [
            self.R(description(study).run_file(run, measure_file(m, c)))
            for study, run in self.dynamics_runs()
            for m in measures
            for c in self.measured_checkpoints(study, run)
        ]

    def dynamics_eval_files(self) -> list[str]:
        return [
            self.R(description(study).run_file(run, eval_file(c)))
            for study, run in self.dynamics_runs()
            for c in CHECKPOINTS
        ]

    def checkpoint_pattern(self, study: str) -> str:
        """A measure rule's checkpoint input: ``…/{checkpoint}.pt`` in the study's run directory."""
        return self.R(f"{description(study).run_dir}/{checkpoint_file('{checkpoint}')}")

    def measure_pattern(self, study: str, measure: str, kind: str = "") -> str:
        """A measure rule's output (``kind=""``), or its log/benchmark path (``kind="logs"``/``"benchmarks"``)."""
        name = measure_file(measure, "{checkpoint}")
        path = f"{description(study).run_dir}/{name}"
        if kind:
            path = f"{kind}/{path.removesuffix('.json')}.{'log' if kind == 'logs' else 'tsv'}"
        return self.R(path)

    def measure_settings(self, study: str, wildcards: Any, measure: str) -> str:
        keys = _keys(wildcards)
        overrides = self.measure_overrides(study, keys)
        dyn = {k: {**v, **overrides.get(k, {})} for k, v in self.config["dynamics"].items() if k != "runs"}
        return settings_json(
            {
                "run": STUDIES[study].run_settings(self.config[study], keys),
                "dynamics": {k: dyn[k] for k in MEASURE_SECTIONS[measure]},
            }
        )

    def hessian_figure_files(self) -> list[str]:
        """Hessian JSONs of the first measured seed (and lowest measured level) of every measured study."""
        chosen = []
        for study in ("levels", "superres", "rotation"):
            runs = [run for s, run in self.dynamics_runs() if s == study]
            if not runs:
                continue
            first_seed = min(int(run["seed"]) for run in runs)
            runs = [run for run in runs if int(run["seed"]) == first_seed]
            if study == "levels":
                lowest = min(int(run["level"]) for run in runs)
                runs = [run for run in runs if int(run["level"]) == lowest]
            d = description(study)
            chosen += [
                self.R(d.run_file(run, measure_file("hessian", c)))
                for run in runs
                for c in self.measured_checkpoints(study, run)
            ]
        return chosen


def _selects(selection: dict[str, Any], run: dict[str, Any]) -> bool:
    """Whether a ``dynamics.runs`` entry's filters (``level``/``seed``/``model`` lists) admit ``run``."""
    filters = {k: v for k, v in selection.items() if k not in ("study", "checkpoints") and k not in MEASURE_OVERRIDES}
    return all(_matches(run[k], v) for k, v in filters.items())


def _matches(value: Any, allowed: list[Any]) -> bool:
    """Whether a run key is in a selection list (compared as text: levels and seeds are ints, models names)."""
    return str(value) in {str(a) for a in allowed}
