"""config/laptop.yaml (issue 11): valid, runnable, >= 5 seeds for every compared model, and its DAG plans."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from equidyn.config import check_runnable, load_config, validate_config
from equidyn.studies.catalog import STUDIES

ROOT = Path(__file__).resolve().parents[1]
MIN_SEEDS = 5


@pytest.fixture(scope="module")
def laptop() -> dict:
    return validate_config(load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "laptop.yaml"]))


def test_laptop_config_is_valid_and_runnable(laptop):
    assert laptop["name"] == "laptop"
    assert check_runnable(laptop) == []


def test_every_compared_model_has_at_least_five_seeds(laptop):
    for name, module in STUDIES.items():
        section = laptop[name]
        for run_key in {tuple(sorted((k, v) for k, v in r.items() if k != "seed")) for r in module.runs(section)}:
            seeds = {r["seed"] for r in module.runs(section) if all(r[k] == v for k, v in run_key)}
            assert len(seeds) >= MIN_SEEDS, f"{name} {dict(run_key)}: {len(seeds)} seeds"


def test_level_study_answers_the_central_questions(laptop):
    lv = laptop["levels"]
    assert 0 in lv["levels"] and len(lv["levels"]) >= 3  # level 0, and enough levels for EE tracking
    models = {m["name"]: m for m in lv["models"]}
    assert {"convnet", "e2cnn", "rsteer"} <= set(models) and len(models["rsteer"]["alphas"]) >= 2
    # every level-0 run is measured, with the Hessian on >= 64 samples and an SE from >= 3 SLQ runs
    dyn = laptop["dynamics"]
    assert {"study": "levels", "level": [0]} in dyn["runs"]
    assert dyn["subset"]["samples"] >= 64 and dyn["hessian"]["slq_runs"] >= 3


def test_laptop_dry_run_plans_every_part():
    args = ["all", "-n", "--nolock", "--profile", "profiles/local", "--configfile", "config/laptop.yaml"]
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "results/laptop/" in text and "results/demo/" not in text
    stats = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", text.split("Job stats:")[1], re.M)}
    laptop = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "laptop.yaml"])
    for study in ("levels", "rotation", "superres", "tutorial"):
        assert stats[f"{study}_train"] == len(STUDIES[study].runs(laptop[study]))
    assert stats["baseline_levels"] == len(laptop["levels"]["levels"]) and stats["convergence_study"] == 4
