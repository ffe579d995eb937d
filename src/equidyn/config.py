"""Configuration: YAML files validated against ``config/schema.yaml``.

The Snakefile validates the merged config at start-up with this module, so a misspelt key stops the workflow
before any job runs, with an error that names the key and where it sits (``levels.training: unknown key
'lr_gama'``). The CLI and the tests use the same function.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def load_schema() -> dict[str, Any]:
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


def validate_config(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming every offending key and its location."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
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
    """``equidyn validate-config a.yaml b.yaml``: exit non-zero with the offending keys named."""
    load_config(files)
    print(f"config OK: {' + '.join(files)}")
