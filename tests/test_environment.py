"""The three statements of the environment (pyproject, lock, conda env) agree, and the pins that matter hold."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)\s*", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def lock() -> dict[str, str]:
    return _pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())


def test_lock_pins_the_critical_versions() -> None:
    pins = lock()
    assert pins["torch"] == "2.13.0"  # the CPU wheel on disk; a bare `torch` would pull a CUDA build
    assert pins["numpy"].startswith("1.")  # escnn's lie_learn needs numpy < 2
    assert pins["escnn"] == "1.0.11"
    assert pins["snakemake"].startswith("9.")
    assert pins["snakemake-executor-plugin-slurm"].startswith("2.6.")
    assert pins["zarr"].startswith("3.1")
    assert pins["pandas"].startswith("2.3")
    assert pins["phiflow"].startswith("3.")
    assert "py3nj" not in pins  # optional Fortran build, deliberately left out (docs/decisions.md)


def test_pyproject_dependencies_match_the_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    pins = lock()
    for name, version in declared.items():
        assert pins.get(name) == version, f"{name}: pyproject {version} vs lock {pins.get(name)}"
    numpy_spec = next(d for d in project["dependencies"] if d.startswith("numpy"))
    assert "<2" in numpy_spec


def test_conda_environments_state_the_same_pins() -> None:
    envs = sorted((ROOT / "workflow" / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        assert "python=3.11" in spec["dependencies"]
        assert _pins(pip) == lock(), f"{env.name} differs from requirements/lock.txt"
