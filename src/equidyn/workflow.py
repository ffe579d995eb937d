"""What the Snakefile needs to know about the studies: result paths, the runs of each grid, settings per job.

Kept out of the ``.smk`` files so they hold rules only (``snakemake --lint`` asks for that) and so it is plain,
testable Python. Imports stay light (no torch): Snakemake evaluates this at DAG-building time.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .studies import levels, rotation, superres, tutorial
from .studies.common import format_alpha

CHECKPOINTS = ("epoch3", "best")
RUN_PATTERNS = {
    "levels": "runs/levels/{model}/alpha{alpha}/level{level}/seed{seed}",
    "rotation": "runs/rotation/{model}/alpha{alpha}/seed{seed}",
    "superres": "runs/superres/{model}/alpha{alpha}/seed{seed}",
    "tutorial": "runs/tutorial/{target}/{label}/seed{seed}",
}
RUN_SETTINGS = {
    "levels": levels.run_settings,
    "rotation": rotation.run_settings,
    "superres": superres.run_settings,
    "tutorial": tutorial.run_settings,
}
MEASURE_SECTIONS = {"lie": ("lie",), "sharpness": ("subset", "sharpness"), "hessian": ("subset", "hessian")}


def settings_json(section: Any) -> str:
    """A config section as compact JSON: what a job receives, and what its params rerun-trigger compares."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))


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

    def run_dir(self, study: str, wildcards: Any) -> str:
        return self.R(RUN_PATTERNS[study].format(**dict(wildcards.items())))

    def run_settings(self, study: str, model: str) -> str:
        return settings_json(RUN_SETTINGS[study](self.config[study], model))

    # -- the grids ----------------------------------------------------------------------------------------------
    def runs(self, study: str) -> list[dict[str, Any]]:
        """Every run of a study as wildcard values."""
        cfg = self.config[study]
        if study == "tutorial":
            return [
                {"target": t, "label": m["label"], "seed": s}
                for t in cfg["targets"]
                for m in cfg["models"]
                for s in cfg["seeds"]
            ]
        runs = []
        for m in cfg["models"]:
            for a in m.get("alphas", [0]):
                for s in cfg["seeds"]:
                    base = {"model": m["name"], "alpha": format_alpha(a), "seed": s}
                    if study == "levels":
                        runs += [{**base, "level": lvl} for lvl in cfg["levels"]]
                    else:
                        runs.append(base)
        return runs

    def run_files(self, study: str, name: str, runs: list[dict[str, Any]] | None = None) -> list[str]:
        pattern = RUN_PATTERNS[study]
        return [self.R(f"{pattern}/{name}".format(**r)) for r in (self.runs(study) if runs is None else runs)]

    def first_seed_runs(self, study: str, **filters: Any) -> list[dict[str, Any]]:
        first = self.config[study]["seeds"][0]
        return [r for r in self.runs(study) if r["seed"] == first and all(r[k] == v for k, v in filters.items())]

    def eval_files(self, study: str) -> list[str]:
        return [f for c in CHECKPOINTS for f in self.run_files(study, f"eval_{c}.json")]

    def level_history_files(self) -> list[str]:
        lowest = min(self.config["levels"]["levels"])
        return self.run_files("levels", "history.csv", [r for r in self.runs("levels") if r["level"] == lowest])

    # -- the tutorial's input --------------------------------------------------------------------------------------
    def tutorial_user_file(self) -> str | None:
        return self.config.get("tutorial_data") or self.config["tutorial"]["data"].get("path")

    def tutorial_source(self) -> str:
        return self.tutorial_user_file() or self.R("data/tutorial/builtin.nc")

    def tutorial_prepare_settings(self) -> str:
        tu = self.config["tutorial"]
        return settings_json({"data": {**tu["data"], "path": self.tutorial_user_file()}, "targets": tu["targets"]})

    # -- the dynamics measures ------------------------------------------------------------------------------------
    def dynamics_runs(self) -> list[tuple[str, str]]:
        """``(study, run path below runs/<study>/)`` of every measured run.

        Each entry of ``dynamics.runs`` names a study and optionally restricts its ``level``/``seed`` lists; a study
        without an entry is not measured.
        """
        selected = []
        for selection in self.config["dynamics"]["runs"]:
            study = selection["study"]
            filters = {k: v for k, v in selection.items() if k != "study"}
            for r in self.runs(study):
                if all(int(r[key]) in values for key, values in filters.items()):
                    selected.append((study, RUN_PATTERNS[study].removeprefix(f"runs/{study}/").format(**r)))
        return selected

    def dynamics_files(self, measures: tuple[str, ...]) -> list[str]:
        return [
            self.R(f"runs/{study}/{run}/{m}_{c}.json")
            for study, run in self.dynamics_runs()
            for m in measures
            for c in CHECKPOINTS
        ]

    def dynamics_eval_files(self) -> list[str]:
        return [self.R(f"runs/{study}/{run}/eval_{c}.json") for study, run in self.dynamics_runs() for c in CHECKPOINTS]

    def dynamics_store(self, wildcards: Any) -> str:
        if wildcards.study == "levels":
            return self.R(f"data/levels/level{_field(wildcards.run, 'level')}.zarr")
        return {"rotation": self.R("data/rotation/plumes.zarr"), "superres": self.R("data/superres/turbulence.zarr")}[
            wildcards.study
        ]

    def measure_settings(self, wildcards: Any, measure: str) -> str:
        model = wildcards.run.split("/")[0]
        dyn = self.config["dynamics"]
        return settings_json(
            {
                "run": RUN_SETTINGS[wildcards.study](self.config[wildcards.study], model),
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
            first_seed = min(int(_field(run, "seed")) for run in runs)
            runs = [run for run in runs if int(_field(run, "seed")) == first_seed]
            if study == "levels":
                lowest = min(int(_field(run, "level")) for run in runs)
                runs = [run for run in runs if int(_field(run, "level")) == lowest]
            chosen += [self.R(f"runs/{study}/{run}/hessian_{c}.json") for run in runs for c in CHECKPOINTS]
        return chosen


def _field(run: str, key: str) -> str:
    """The value of ``key`` (``level``, ``seed``) in a run path such as ``rsteer/alpha0.01/level3/seed0``."""
    match = re.search(rf"(?:^|{re.escape(os.sep)}){key}(\d+)(?:{re.escape(os.sep)}|$)", run)
    if not match:
        raise ValueError(f"run path {run!r} has no {key}")
    return match.group(1)
