"""Settings dataclasses from config mappings: one strict constructor for every section.

A typo in a YAML config (``n_sample: 10``) must not silently fall back to a default and produce a different
dataset, so every key has to be a field of the settings class; the error names the key and the section.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def settings_from_dict(cls: type[T], d: dict[str, Any] | None, section: str) -> T:
    """Build the frozen settings dataclass ``cls`` from a config mapping, rejecting unknown keys by name."""
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in config section '{section}'; allowed: {sorted(names)}")
    try:
        return cls(**d)
    except TypeError as err:
        raise ValueError(f"config section '{section}': {err}") from err
