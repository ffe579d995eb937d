"""The per-run and summary tables of the levels, rotation and super-resolution studies, byte for byte.

The three studies build their tables through one shared implementation (:mod:`equidyn.studies.common`) with their
own columns passed in. These tests feed each study's table functions the same synthetic evaluation records and
baseline files and compare the CSVs with the ones the three separate copies wrote before they were merged
(``tests/golden/study_tables/``), so the merge — and any later change to it — cannot move a column, a row or a
digit unnoticed.

If a deliberate change alters a table (say, a new column), regenerate the files with
``EQUIDYN_REGENERATE_GOLDEN=1 python -m pytest tests/test_study_tables.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from equidyn.studies import levels, rotation, superres

GOLDEN = Path(__file__).parent / "golden" / "study_tables"
REGENERATE = os.environ.get("EQUIDYN_REGENERATE_GOLDEN") == "1"
LINEAGE = {"config_sha": "c0ffee", "git_rev": "test", "data_sha": "d474"}


def _value(*keys: object) -> float:
    """A deterministic, irregular number per key combination (so means and CIs differ from row to row)."""
    h = 0
    for k in keys:
        for ch in str(k):
            h = (h * 131 + ord(ch)) % 1_000_003
    return round(0.05 + (h % 9973) / 9973.0, 6)


def _eval_record(study: str, run: dict, checkpoint: str, splits: tuple[str, ...]) -> dict:
    scores = {
        s: {
            "rmse": _value(study, *run.values(), checkpoint, s, "rmse"),
            "mae": _value(study, *run.values(), checkpoint, s, "mae"),
            "rmse_by_step": [_value(study, *run.values(), checkpoint, s, step) for step in range(3)],
        }
        for s in splits
    }
    return {
        **run,
        "study": study,
        "checkpoint_epoch": 3 if checkpoint == "epoch3" else 7 + int(run["seed"]),
        "params": 1000 + 10 * len(str(run["model"])),
        "hidden": 4,
        "scores": scores,
        "ee": _value(study, *run.values(), checkpoint, "ee"),
        "ee_rel": _value(study, *run.values(), checkpoint, "ee_rel"),
        "ee_max": 1.0,
        **LINEAGE,
    }


def _write_evals(tmp_path: Path, study: str, runs: list[dict], splits: tuple[str, ...], checkpoints) -> list[str]:
    files = []
    for run in runs:
        folder = tmp_path / study / "_".join(f"{k}{v}" for k, v in run.items())
        folder.mkdir(parents=True)
        for checkpoint in checkpoints:
            path = folder / f"eval_{checkpoint}.json"
            path.write_text(json.dumps(_eval_record(study, run, checkpoint, splits)))
            files.append(str(path))
    return files


def _baseline(tmp_path: Path, name: str, study: str, splits: tuple[str, ...], **extra) -> str:
    scores = {s: {"rmse": _value(name, s, "rmse") + 1, "mae": _value(name, s, "mae") + 1} for s in splits}
    linear = {s: {"rmse": _value(name, s, "lin") + 1} for s in splits}
    record = {"study": study, "baseline": "b", "scores": scores, "scores_linear_extrapolation": linear, **LINEAGE}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**record, **extra}))
    return str(path)


def _grid(models, alphas, seeds, levels_=None) -> list[dict]:
    runs = []
    for m in models:
        for a in alphas:
            for s in seeds:
                base = {"model": m, "alpha": a, "seed": s}
                runs += [base] if levels_ is None else [{**base, "level": lv} for lv in levels_]
    return runs


def _check(produced: Path, name: str) -> None:
    golden = GOLDEN / name
    if REGENERATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, golden)
    assert produced.read_bytes() == golden.read_bytes(), f"{name} differs from {golden}"


def test_levels_tables_are_unchanged(tmp_path):
    runs = _grid(["convnet", "e2cnn"], ["0", "0.01"], [0, 1, 2], levels_=[0, 2])
    evals = _write_evals(tmp_path, "levels", runs, ("test",), ("epoch3", "best"))
    data = tmp_path / "data_equivariance.csv"
    data.write_text("level,data_ee,config_sha,git_rev,data_sha\n0,0.0,x,y,z\n2,0.25,x,y,z\n")
    levels.levels_table(evals, data, tmp_path / "levels.csv")
    _check(tmp_path / "levels.csv", "levels.csv")
    bases = [_baseline(tmp_path, f"level{lv}", "levels", ("test",), level=lv) for lv in (0, 2)]
    levels.summary_table(tmp_path / "levels.csv", tmp_path / "levels_summary.csv", bases)
    _check(tmp_path / "levels_summary.csv", "levels_summary.csv")
    levels.summary_table(tmp_path / "levels.csv", tmp_path / "levels_summary_nobase.csv")
    _check(tmp_path / "levels_summary_nobase.csv", "levels_summary_nobase.csv")


def test_rotation_tables_are_unchanged(tmp_path):
    runs = _grid(["convnet", "e2cnn", "rsteer"], ["0", "1e-06"], [0, 1, 2])
    splits = ("test_future", "test_domain")
    evals = _write_evals(tmp_path, "rotation", runs, splits, ("best",))
    rotation.benchmark_table(evals, tmp_path / "rotation_benchmark.csv")
    _check(tmp_path / "rotation_benchmark.csv", "rotation_benchmark.csv")
    rotation.by_step_table(evals, tmp_path / "rotation_by_step.csv")
    _check(tmp_path / "rotation_by_step.csv", "rotation_by_step.csv")
    base = _baseline(tmp_path, "rotation", "rotation", splits)
    rotation.summary_table(tmp_path / "rotation_benchmark.csv", tmp_path / "rotation_summary.csv", [base])
    _check(tmp_path / "rotation_summary.csv", "rotation_summary.csv")


def test_superres_tables_are_unchanged(tmp_path):
    runs = _grid(["cnn3d", "gcnn3d", "rgcnn3d", "own3d"], ["0", "0.0001"], [0, 1])
    evals = _write_evals(tmp_path, "superres", runs, ("test",), ("best",))
    superres.table(evals, tmp_path / "superres.csv")
    _check(tmp_path / "superres.csv", "superres.csv")
    base = _baseline(tmp_path, "superres", "superres", ("test",))
    superres.summary_table(tmp_path / "superres.csv", tmp_path / "superres_summary.csv", [base])
    _check(tmp_path / "superres_summary.csv", "superres_summary.csv")


@pytest.mark.parametrize("name", ["levels.csv", "rotation_summary.csv", "superres_summary.csv"])
def test_golden_tables_have_rows(name):
    """The golden files hold real tables (a header and every run), not an empty file that any output matches."""
    lines = (GOLDEN / name).read_text().splitlines()
    assert len(lines) > 5 and "," in lines[0]
