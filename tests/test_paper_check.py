"""The paper-scale execution check (issue 14): its configuration keeps the paper's shapes and truncates only the
work, its report turns benchmark files into per-class memory requests, and (marker ``paper_check``, never in the
default or slow runs) the check itself passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from equidyn.config import load_config, validate_config
from equidyn.paper_check import (
    batch_scales,
    collect,
    estimate,
    markdown,
    model_requests,
    rule_class,
    suggested_requests,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def configs() -> tuple[dict, dict]:
    paper = load_config([ROOT / "config" / "config.yaml"])
    check = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "paper_check.yaml"])
    return paper, check


def test_the_check_config_is_valid_and_runs_its_own_results_folder(configs) -> None:
    _, check = configs
    validate_config(check)
    assert check["name"] == "paper_check"
    # each job in its own process: with the local job server, a benchmark file's memory would be the client's
    assert check["local_job_server"] is False


def test_the_check_keeps_every_paper_shape(configs) -> None:
    """Grids, models and their sizes, batch sizes, windows and rollouts, the Hessian subset: as in the paper."""
    paper, check = configs
    for study in ("levels", "rotation", "superres", "tutorial"):
        assert [m["name" if "name" in m else "label"] for m in check[study]["models"]] == [
            m["name" if "name" in m else "label"] for m in paper[study]["models"]
        ], study
        for a, b in zip(paper[study]["models"], check[study]["models"], strict=True):
            assert {k: v for k, v in a.items() if k != "alphas"} == {k: v for k, v in b.items() if k != "alphas"}
        if study != "superres":  # superres trains at batch 1 here; the report extrapolates (test below)
            assert check[study]["training"]["batch_size"] == paper[study]["training"]["batch_size"], study
        assert check[study]["training"]["max_batches"] > 0, study
    assert batch_scales(paper, check) == {"superres": 4.0}
    for study in ("levels", "rotation"):
        assert check[study]["physics"]["grid"] == paper[study]["physics"]["grid"] == 64
        assert check[study]["input_frames"] == paper[study]["input_frames"]
        assert check[study]["rollout"] == paper[study]["rollout"]
    # fewer plumes (how many windows a pass sees, not a shape), every other plume setting as in the paper
    assert {k: v for k, v in check["levels"]["base"].items() if k != "n_sims"} == {
        k: v for k, v in paper["levels"]["base"].items() if k != "n_sims"}  # fmt: skip
    assert {k: v for k, v in check["rotation"]["plumes"].items() if k != "n_sims"} == {
        k: v for k, v in paper["rotation"]["plumes"].items() if k != "n_sims"}  # fmt: skip
    assert all(plume < check["rotation"]["plumes"]["n_sims"] for plume, _ in check["rotation"]["held_out"])
    assert check["superres"]["data"]["offline"]["n"] == paper["superres"]["data"]["offline"]["n"] == 64
    assert check["superres"]["data"]["factor"] == paper["superres"]["data"]["factor"]
    assert check["tutorial"]["turbulence"]["n"] == paper["tutorial"]["turbulence"]["n"]
    assert check["dynamics"]["subset"]["seed"] == paper["dynamics"]["subset"]["seed"]
    assert check["dynamics"]["lie"] == paper["dynamics"]["lie"]
    # what fixes a measure job's memory: the per-study knobs, and one full chunk of samples and of vectors
    knobs = {e["study"]: {k: e[k] for k in ("subset", "hessian", "lie")} for e in paper["dynamics"]["runs"]}
    for entry in check["dynamics"]["runs"]:
        assert {k: entry[k] for k in ("subset", "hessian", "lie")} == knobs[entry["study"]], entry["study"]
    hessian = check["dynamics"]["hessian"]
    assert check["dynamics"]["subset"]["samples"] >= knobs["levels"]["subset"]["batch_size"]
    assert min(hessian["hutchinson"], hessian["slq_runs"]) >= knobs["levels"]["hessian"]["vector_chunk"]
    # every penalised model still trains with a penalty, so its regulariser runs at paper size
    for entry in check["levels"]["models"] + check["rotation"]["models"] + check["superres"]["models"]:
        if any(a > 0 for a in next(m for m in paper_models(paper) if m["name"] == entry["name"])["alphas"]):
            assert any(a > 0 for a in entry["alphas"]), entry["name"]


def paper_models(paper: dict) -> list[dict]:
    return paper["levels"]["models"] + paper["rotation"]["models"] + paper["superres"]["models"]


def test_the_check_measures_a_2d_and_a_3d_run(configs) -> None:
    _, check = configs
    assert {entry["study"] for entry in check["dynamics"]["runs"]} >= {"levels", "superres"}


def _tsv(path: Path, seconds: float, rss: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tmax_vms\n{seconds}\t0:00:01\t{rss}\t1\n")


def test_the_report_sizes_each_class_from_its_largest_peak(tmp_path) -> None:
    bench = tmp_path / "benchmarks"
    _tsv(bench / "runs/levels/e2cnn/alpha0/level9/seed0/train.tsv", 12.0, "2100.5")
    _tsv(bench / "runs/superres/gcnn3d/alpha0/seed0/train.tsv", 30.0, "9400.0")
    _tsv(bench / "runs/superres/gcnn3d/alpha0/seed0/hessian_best.tsv", 50.0, "12001.0")
    _tsv(bench / "levels/base.tsv", 100.0, "800")
    _tsv(bench / "levels/data_ee_level9.tsv", 3.0, "NA")
    _tsv(bench / "tables/levels.tsv", 1.0, "300")
    rows = collect(tmp_path)
    assert len(rows) == 6
    requests = suggested_requests(rows, margin=1.5)
    assert requests["train"]["peak_mb"] == 9400.0 and requests["train"]["mem_mb"] == 15000  # 14100 -> 15000
    assert requests["analysis"]["mem_mb"] == 19000  # 18001.5 -> 19000; the NA row is skipped
    assert requests["data"]["mem_mb"] == 2000 and requests["report"]["mem_mb"] == 1000
    text = markdown(rows, 1.5, wall=600)
    assert "10.0 min" in text and "| train | 9400 |" in text


def test_what_the_check_cannot_run_is_estimated_and_marked(tmp_path) -> None:
    """Training at the paper batch (linear in the batch) and the measures of unmeasured models (the study's
    measure/training ratio) are extrapolated, say so, and size the requests."""
    bench = tmp_path / "benchmarks"
    _tsv(bench / "runs/superres/cnn3d/alpha0/seed0/train.tsv", 10.0, "1000")
    _tsv(bench / "runs/superres/cnn3d/alpha0/seed0/hessian_best.tsv", 10.0, "2500")
    _tsv(bench / "runs/superres/gcnn3d/alpha0/seed0/train.tsv", 10.0, "14000")
    _tsv(bench / "runs/levels/e2cnn/alpha0/level9/seed0/train.tsv", 10.0, "3000")
    rows = estimate(collect(tmp_path), {"superres": 4.0})
    by_job = {r["job"]: r for r in rows}
    assert by_job["runs/superres/gcnn3d/alpha0/seed0/train"]["estimate_mb"] == 56000.0
    assert by_job["runs/levels/e2cnn/alpha0/level9/seed0/train"]["estimate_mb"] == 3000.0  # not scaled
    guess = by_job["runs/superres/gcnn3d/alpha0/seed0/hessian (not run)"]
    assert guess["estimate_mb"] == 35000.0 and "not run" in guess["job"] and "2.50" in guess["how"]
    assert "runs/levels/e2cnn/alpha0/level9/seed0/hessian (not run)" not in by_job  # no levels ratio measured
    requests = suggested_requests(rows, margin=1.5)
    assert requests["train"]["mem_mb"] == 84000 and requests["analysis"]["mem_mb"] == 53000
    # above 16 GB a model gets its own request, and the class keeps what the other jobs need
    own = model_requests(rows, margin=1.5)
    assert own == {"gcnn3d": {
        "train": {"peak_mb": 56000.0, "job": "runs/superres/gcnn3d/alpha0/seed0/train", "mem_mb": 84000},
        "analysis": {"peak_mb": 35000.0, "job": "runs/superres/gcnn3d/alpha0/seed0/hessian (not run)", "mem_mb": 53000},
    }}  # fmt: skip
    rest = suggested_requests(rows, margin=1.5, own=own)
    assert rest["train"]["mem_mb"] == 6000 and rest["analysis"]["mem_mb"] == 4000  # the CNN at batch 4, its Hessian
    assert "× 4 (paper batch)" in markdown(collect(tmp_path), 1.5, None, {"superres": 4.0})


def test_rule_classes_follow_the_benchmark_paths() -> None:
    assert rule_class(Path("runs/rotation/mlp/alpha0/seed0/train.tsv")) == "train"
    assert rule_class(Path("runs/levels/e2cnn/alpha0/level0/seed0/lie_epoch3.tsv")) == "analysis"
    assert rule_class(Path("figures/sharpness.tsv")) == "report"
    assert rule_class(Path("superres/data.tsv")) == "data"
    assert rule_class(Path("baselines/levels/level0.tsv")) == "analysis"  # rules/baselines.smk: analysis class
    assert rule_class(Path("convergence/levels.tsv")) == "report"


@pytest.mark.paper_check
def test_the_paper_scale_check_passes(tmp_path) -> None:
    """Before a release: every rule at paper shapes (≤ 60 min on 2 cores; scripts/paper_check.sh)."""
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "paper_check.sh"), str(tmp_path)], env=env, capture_output=True, text=True,
        timeout=3 * 3600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-5000:]
    table = (tmp_path / "results" / "paper_check" / "paper_check.md").read_text()
    assert "| train |" in table and "| analysis |" in table
