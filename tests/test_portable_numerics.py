"""The simulators pin Intel MKL to its CPU-independent path, so a store's checksum is the same on every x86 CPU.

The level-0 store of config/scaling.yaml is rebuilt and compared with the checksum committed in the scaling study's
kept part, which was built on AMD EPYC machines: without the pin an Intel Xeon with AVX-512 gave another checksum.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
needs_mkl = pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="torch has no MKL on this platform")


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter whose MKL has not been called yet and whose environment sets no mode."""
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


@needs_mkl
def test_the_pin_sets_the_compatible_path_in_a_fresh_process() -> None:
    done = _fresh_python(
        "import torch\n"
        "from equidyn.data.portable_numerics import mkl_branch_in_use, pin_mkl_branch\n"
        "pin_mkl_branch()\n"
        "print(mkl_branch_in_use())\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "COMPATIBLE"


@needs_mkl
def test_a_pin_after_an_mkl_call_is_refused_with_the_cause_named() -> None:
    done = _fresh_python(
        "import torch\n"
        "x = torch.randn(64, 64, dtype=torch.float64)\n"
        "(x @ x).sum()  # MKL's first call fixes its per-CPU path\n"
        "from equidyn.data.portable_numerics import MklBranchError, pin_mkl_branch\n"
        "try:\n"
        "    pin_mkl_branch()\n"
        "except MklBranchError as e:\n"
        "    print('refused:', e)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:")
    assert "MKL_CBWR=COMPATIBLE" in done.stdout and "OFF" in done.stdout


@needs_mkl
def test_this_cpu_rebuilds_the_kept_level0_store_bit_for_bit(tmp_path: Path) -> None:
    """The whole chain (base plumes, then level 0) under config/scaling.yaml, against the kept part's checksum."""
    from equidyn.config import load_config
    from equidyn.store import open_store
    from equidyn.studies.levels import build_level, generate_base, level_data_settings

    levels = load_config([str(ROOT / "config/config.yaml"), str(ROOT / "config/scaling.yaml")])["levels"]
    with open(ROOT / "docs/findings/scaling/parts/sizes_level0.csv") as f:
        kept = {row["data_sha"] for row in csv.DictReader(f)}
    assert len(kept) == 1

    generate_base({"physics": levels["physics"], "base": levels["base"]}, tmp_path / "base.zarr")
    build_level(level_data_settings(levels), tmp_path / "base.zarr", 0, tmp_path / "level0.zarr")
    assert open_store(tmp_path / "level0.zarr").attrs["content_sha256"] == kept.pop()
