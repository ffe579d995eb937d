"""Configuration: YAML files validated against ``config/schema.yaml``, then against what the code can run.

The Snakefile validates the merged config at start-up with this module, so a misspelt key stops the workflow
before any job runs, with an error that names the key and where it sits (``levels.training: unknown key
'lr_gama'``). The CLI and the tests use the same function. Beyond the schema, :func:`check_runnable` rejects what
would otherwise fail only after the data were built (minutes in the demo, hours at paper scale): an unknown model,
a 3-D model in a 2-D study, alpha > 0 (or a tutorial ``penalty``) for a model without a penalty, a level beyond the
base plumes, a split beyond the stored frames, a dynamics selection that selects nothing, ``device: cuda`` on a
torch without CUDA; and what would run but silently mislead: two model entries with one identity, a tutorial
``group`` that the model ignores.

Values given on the command line (``--config 'levels={training: {epochs: 10}}'``) reach the Snakefile as strings;
:func:`coerce_to_schema` converts them to the types the schema asks for before validation.

Imports stay light (jsonschema, PyYAML, and plain-data tables of the package): no torch, numpy or pandas.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .data.heldout_groups import heldout_group_problems

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def load_schema() -> dict[str, Any]:
    """The workflow's schema. It lives with the workflow (``config/``), not in the package, so a bare install of the
    package cannot validate a config: say so instead of failing with a bare ``FileNotFoundError``."""
    if not SCHEMA_PATH.is_file():
        raise ConfigError(f"{SCHEMA_PATH} not found: validating a config needs the equidyn repository (config/)")
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge like Snakemake: nested mappings merge, everything else (lists included) is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(paths: Iterable[str | os.PathLike]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in paths:
        with open(path) as fh:
            config = deep_merge(config, yaml.safe_load(fh) or {})
    validate_config(config)
    return config


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Coerce command-line strings (in place), then raise :class:`ConfigError` naming every offending key.

    Returns ``config`` (the same object, so the Snakefile's ``config`` holds the coerced values).
    """
    schema = load_schema()
    coerce_to_schema(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        problems = check_runnable(config)
        if problems:
            raise ConfigError("equidyn config cannot run:\n  " + "\n  ".join(problems))
        return config
    lines = []
    for err in errors:
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            lines.append(f"{_where(err)}: unknown key(s) {extra}; allowed: {allowed}")
        else:
            lines.append(f"{_where(err)}: {err.message}")
    raise ConfigError("invalid equidyn config:\n  " + "\n  ".join(lines))


def cli_validate(files: list[str]) -> None:
    """``equidyn validate-config a.yaml b.yaml``: exit non-zero with the offending keys named (no traceback)."""
    try:
        load_config(files)
    except (ConfigError, OSError, yaml.YAMLError) as err:
        raise SystemExit(f"equidyn validate-config: {err}") from None
    print(f"config OK: {' + '.join(files)}")


# -- command-line values ---------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


_BOOLEANS = {"true": True, "false": False}


def _scalar(value: str, types: list[str]) -> Any:
    """``value`` as the first of ``types`` it parses as, or unchanged."""
    text = value.strip()
    for kind in types:
        if kind == "integer" and re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if kind == "number":
            try:
                return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
            except ValueError:
                continue
        if kind == "boolean" and text.lower() in _BOOLEANS:
            return _BOOLEANS[text.lower()]
        if kind == "null" and text.lower() in ("null", "none", "~", ""):
            return None
        if kind == "string":
            return value
    return value


def coerce_to_schema(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """Convert, in place where nested, strings (and numbers) to the types ``schema`` asks for; return the value.

    Snakemake hands ``--config`` values to the Snakefile as strings below the top level (``'10'``) and numbers at the
    top level (``name=2024`` → ``2024``); a value that does not parse stays as it is, so the schema names it.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in list(value):
            if key in props:
                value[key] = coerce_to_schema(value[key], props[key], root)
        return value
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            value[:] = [coerce_to_schema(v, items, root) for v in value]
        return value
    if isinstance(value, str) and "enum" in schema and value not in schema["enum"]:
        return next((e for e in schema["enum"] if str(e).lower() == value.strip().lower()), value)
    if isinstance(value, str) and types and "string" not in types[:1]:
        return _scalar(value, types)
    if isinstance(value, int | float) and not isinstance(value, bool) and types == ["string"]:
        return str(value)
    return value


# -- what the code can run -------------------------------------------------------------------------------------


def check_runnable(config: dict[str, Any]) -> list[str]:
    """Problems the schema cannot see, each naming its place: models, alphas, levels, dynamics selections."""
    from .models.registry import MODELS
    from .runs import EPOCH_CHECKPOINTS, MIN_EPOCHS

    problems: list[str] = []
    known = ", ".join(sorted(MODELS))
    study_ndim = {"levels": 2, "rotation": 2, "tutorial": 2, "superres": 3, "scaling": 2, "exponax": 2}
    for study, ndim in study_ndim.items():
        section = config.get(study)
        if not section:
            continue
        key = "model" if study == "tutorial" else "name"
        for i, entry in enumerate(section.get("models", [])):
            where, name = f"{study}.models[{i}]", entry.get(key)
            info = MODELS.get(name)
            if info is None:
                problems.append(f"{where}.{key}: unknown model {name!r}; known: {known}")
                continue
            if info.ndim != ndim:
                problems.append(f"{where}.{key}: {name!r} is a {info.ndim}-D model; the {study} study needs {ndim}-D")
            positive = [a for a in entry.get("alphas", [0]) if a > 0]
            if positive and not info.penalty:
                problems.append(
                    f"{where}.alphas: alpha {positive} > 0, but {name!r} has no penalty for alpha to weigh; use [0]"
                )
            frames = section.get("input_frames", 1)
            if entry.get("residual") == "linear" and study in FORECASTING and frames < 2:
                problems.append(f"{where}.residual: 'linear' extrapolates two frames, but {study}.input_frames is 1")
        epochs = section.get("training", {}).get("epochs")
        if isinstance(epochs, int) and epochs < MIN_EPOCHS:
            problems.append(
                f"{study}.training.epochs: {epochs} < {MIN_EPOCHS}, needed for checkpoints {EPOCH_CHECKPOINTS}"
            )
    problems += _level_problems(config.get("levels"))
    problems += _scaling_problems(config)
    problems += _dynamics_problems(config)
    problems += _duplicate_problems(config)
    problems += _tutorial_problems(config.get("tutorial"))
    problems += _frame_range_problems(config)
    problems += _device_problems(config)
    return problems


#: what identifies a study's model entry: its runs, run directories and table rows are keyed by it
#: the key that identifies a study's model entry in paths and tables; ``label`` falls back to ``name`` where an
#: entry has none (``studies.common.model_label``), so two entries of one network differ by their labels
MODEL_IDENTITY = {
    "levels": "label",
    "rotation": "label",
    "superres": "label",
    "tutorial": "label",
    "scaling": "label",
    "exponax": "label",
}
#: the studies that forecast from ``input_frames`` frames (a ``residual: linear`` skip needs two)
FORECASTING = ("levels", "rotation", "scaling", "exponax")


def _repeats(values: list[Any]) -> list[tuple[int, Any, int]]:
    """``(index, value, index of its first occurrence)`` of every repeated value."""
    first: dict[str, int] = {}
    out = []
    for i, value in enumerate(values):
        key = repr(value)
        if key in first:
            out.append((i, value, first[key]))
        else:
            first[key] = i
    return out


def _duplicate_problems(config: dict[str, Any]) -> list[str]:
    """Two model entries with one identity make one set of runs: the second entry is never trained and the first
    run's results enter the tables twice (a duplicated row, n_seeds = 1 with a zero-width CI). So does an alpha
    given twice (the schema's ``uniqueItems`` covers seeds and levels)."""
    problems = []
    for study, key in MODEL_IDENTITY.items():
        models = (config.get(study) or {}).get("models", [])
        fallback = "" if study == "tutorial" else " (default: its name)"
        for i, value, first in _repeats([m.get(key, m.get("name")) for m in models]):
            problems.append(
                f"{study}.models[{i}].{key}: {value!r} repeats {study}.models[{first}]; a run is identified by its "
                f"{key}{fallback}, so give each entry its own {key} (or merge the two)"
            )
        for j, entry in enumerate(models):
            for i, value, first in _repeats([float(a) for a in entry.get("alphas", [])]):
                problems.append(f"{study}.models[{j}].alphas[{i}]: alpha {value:g} repeats alphas[{first}]")
            study_seeds = (config.get(study) or {}).get("seeds", [])
            for i, seed in enumerate(entry.get("extra_seeds", [])):
                if seed in study_seeds:
                    problems.append(
                        f"{study}.models[{j}].extra_seeds[{i}]: seed {seed} is already in {study}.seeds (extra seeds "
                        "add runs; a repeated seed would be the same run twice)"
                    )
    return problems


def _tutorial_problems(tutorial: dict[str, Any] | None) -> list[str]:
    """A ``penalty:`` weighs a regulariser, and a ``group:`` chooses the group of a model built for several: on any
    other model each was silently ignored."""
    from .models.registry import MODELS

    problems = []
    for i, entry in enumerate((tutorial or {}).get("models", [])):
        info = MODELS.get(entry.get("model"))
        if info is None:
            continue  # named by check_runnable
        name, where = entry["model"], f"tutorial.models[{i}]"
        if entry.get("penalty") and not info.penalty:
            with_penalty = sorted(m for m, inf in MODELS.items() if inf.penalty and m.startswith("closure_"))
            problems.append(
                f"{where}.penalty: {name!r} has no regulariser for the penalty to weigh; use one of {with_penalty} "
                "or drop the key"
            )
        if "group" in entry and entry["group"] not in info.groups:
            allowed = f"it is built for {list(info.groups)}" if info.groups else "it is not built for a group"
            problems.append(f"{where}.group: {entry['group']!r} would be ignored by {name!r}: {allowed}")
    return problems


def _heldout_problems(section: dict[str, Any]) -> list[str]:
    """The held-out level protocol (issue 20), checked at the most broken level the config asks for: that level's
    highest group member is the one that would otherwise fail only when the level's data were built."""
    n_sims = int(section.get("base", {}).get("n_sims", 50))
    return heldout_group_problems(section.get("heldout") or {}, max(section.get("levels", [0])), n_sims)


#: the frame ranges of a 2-D study, checked against the frames its physics stores
FRAME_RANGES = {"levels": "splits", "rotation": "frames"}


def _frame_range_problems(config: dict[str, Any]) -> list[str]:
    """A split beyond the stored frames (``physics``: steps ``keep_from`` … ``keep_to`` (default ``n_steps``),
    exclusive) used to fail only when the data were built."""
    problems = []
    for study, key in FRAME_RANGES.items():
        section = config.get(study)
        if not section:
            continue
        if study == "levels" and section.get("protocol", "time") == "heldout":
            problems += _heldout_problems(section)
            continue  # every stored frame is used; ``splits`` (inherited or not) plays no part
        physics = section["physics"]
        stored = (physics.get("keep_to") or physics["n_steps"]) - physics["keep_from"]
        for split, (lo, hi) in section[key].items():
            if not 0 <= lo < hi <= stored:
                problems.append(
                    f"{study}.{key}.{split}: frames [{lo}, {hi}) are not inside the {stored} stored frames "
                    f"(physics: steps {physics['keep_from']} to {physics.get('keep_to') or physics['n_steps']}, "
                    "exclusive)"
                )
    return problems


def _device_problems(config: dict[str, Any]) -> list[str]:
    """``training.device: cuda`` with a torch built without CUDA fails in the first training job, after the data
    were built, with ``AttributeError … _cuda_resetPeakMemoryStats``. The build is read from torch's version file,
    not by importing torch (seconds at every start-up); where torch is not importable here (a Snakemake outside
    the project's environment) nothing is checked, and the training job names the key."""
    build = torch_cuda_build()
    if build is not False:
        return []
    problems = []
    for study in MODEL_IDENTITY:
        device = str((config.get(study) or {}).get("training", {}).get("device", "auto"))
        if device.startswith("cuda"):
            problems.append(
                f"{study}.training.device: {device!r}, but this torch is built without CUDA; use 'auto' (CUDA when "
                "available) or 'cpu', or install a CUDA build of torch"
            )
    return problems


def torch_cuda_build() -> bool | None:
    """Whether the installed torch is built with CUDA (or ROCm); ``None`` if torch or its version file is absent."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version.read_text()
    except OSError:
        return None
    builds = re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+?)\s*$", text, re.M)
    if not builds:
        return None
    return any(value != "None" for _name, value in builds)


def _level_problems(levels: dict[str, Any] | None) -> list[str]:
    """Level ``l`` uses base plumes ``1, 1+l, 1+2l, 1+3l`` (:func:`equidyn.data.smoke_datasets.level_members`)."""
    if not levels:
        return []
    n_sims = int(levels.get("base", {}).get("n_sims", 50))
    highest = (n_sims - 2) // 3
    too_high = [lvl for lvl in levels.get("levels", []) if 1 + 3 * lvl >= n_sims]
    if not too_high:
        return []
    return [
        f"levels.levels: level(s) {too_high} need base plume 1 + 3·level, but levels.base.n_sims is {n_sims} "
        f"(highest possible level: {highest})"
    ]


def _scaling_problems(config: dict[str, Any]) -> list[str]:
    """The scaling study trains on the level study's held-out stores, and each arm's budget is its data-sweep size."""
    section = config.get("scaling")
    if not section:
        return []
    problems = []
    levels = config.get("levels", {})
    if levels.get("protocol", "time") != "heldout":
        problems.append("scaling: needs levels.protocol: heldout (its runs train on the held-out level stores)")
    missing = [lvl for lvl in section.get("levels", []) if lvl not in levels.get("levels", [])]
    if missing:
        problems.append(
            f"scaling.levels: level(s) {missing} are not in levels.levels {levels.get('levels')}; the base plumes "
            "and held-out groups are checked for those (add them there)"
        )
    for i, entry in enumerate(section.get("models", [])):
        if "budget" not in entry:
            problems.append(f"scaling.models[{i}]: needs a budget (its model size in the data sweep), not hidden")
    return problems


def _dynamics_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    chosen = config.get("studies")
    for study in chosen or []:
        if not config.get(study):
            problems.append(f"studies: {study!r} has no config section")
    for i, selection in enumerate(config.get("dynamics", {}).get("runs", [])):
        study = selection["study"]
        section = config.get(study)
        if chosen is not None and study not in chosen:
            problems.append(f"dynamics.runs[{i}].study: {study!r} is not in studies {chosen}")
            continue
        if not section:
            problems.append(f"dynamics.runs[{i}].study: {study!r} has no config section")
            continue
        # a run's model key is its entry's label (default: its name), so a selection names labels (rsteer_tied)
        models = [m.get("label", m.get("name")) for m in section.get("models", [])]
        flows = list(section["flows"]) if study == "exponax" and "flows" in section else None
        keys = (
            (
                "seed",
                [*section.get("seeds", []), *(s for m in section.get("models", []) for s in m.get("extra_seeds", []))],
            ),
            ("level", section.get("levels")),
            ("flow", flows),
            ("model", models),
        )
        for key, configured in keys:
            if key not in selection:
                continue
            if configured is None:
                problems.append(f"dynamics.runs[{i}].{key}: the {study} study has no {key}s")
                continue
            absent = sorted(set(selection[key]) - set(configured))
            if absent:
                problems.append(f"dynamics.runs[{i}].{key}: {absent} not in {study}.{key}s {configured}")
    return problems
