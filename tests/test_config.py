"""Configuration: both shipped configs validate; a bad key is rejected with its name and place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from equidyn.config import ConfigError, deep_merge, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


def paper() -> dict:
    return load_config([ROOT / "config" / "config.yaml"])


def test_shipped_configs_validate() -> None:
    paper()
    demo = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "demo.yaml"])
    assert demo["name"] == "demo"
    load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "slurm.yaml"])


def test_paper_config_is_the_published_study() -> None:
    lv = paper()["levels"]
    assert lv["levels"] == list(range(10))
    assert len(lv["seeds"]) == 5
    rsteer = next(m for m in lv["models"] if m["name"] == "rsteer")
    assert rsteer["alphas"] == [0, 1e-6, 1e-4, 1e-2, 1]
    assert {m["name"] for m in lv["models"]} >= {"convnet", "e2cnn", "rsteer"}
    assert all(m["budget"] == 600_000 for m in lv["models"])


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"levels": {"training": {"lr_gama": 0.9}}}, r"levels\.training: unknown key\(s\) \['lr_gama'\]"),
        ({"levels": {"seeds": [0, 0]}}, r"levels\.seeds: .*non-unique"),
        ({"levels": {"splits": {"train": [0]}}}, r"levels\.splits\.train"),
        ({"resources": {"train": {"gpu": 2}}}, r"resources\.train\.gpu"),
        ({"surprise": 1}, r"<top level>: unknown key\(s\) \['surprise'\]"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(patch: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(deep_merge(paper(), patch))


def test_snakefile_rejects_a_bad_config_at_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"levels": {"training": {"epochz": 3}}}))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "all",
            "-n",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "unknown key(s) ['epochz']" in out.stdout + out.stderr


def test_the_kept_scaling_parts_still_belong_to_the_scaling_config() -> None:
    """config/scaling_kept.yaml names finished parts of the scaling study committed with the findings
    (docs/findings/scaling/parts/); the next sitting gathers them instead of training them again. Each must still be
    exactly a part of config/scaling.yaml (its runs, each trained with the settings the config now gives it), or a
    change to the config has made it stale and it must be trained again."""
    import pandas as pd

    from equidyn.studies import scaling

    files = [ROOT / "config" / name for name in ("config.yaml", "scaling.yaml", "scaling_kept.yaml")]
    section = load_config(files)["scaling"]
    assert section["saved_parts"], "config/scaling_kept.yaml keeps no part"
    for name, path in section["saved_parts"].items():
        part = pd.read_csv(ROOT / path)
        scaling.check_part(part, section, path)
        assert name == scaling.part_name(part.sweep.iloc[0], part.level.iloc[0])
        assert part.config_sha.notna().all() and part.git_rev.notna().all() and part.data_sha.nunique() == 1
