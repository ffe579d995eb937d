"""The Snakemake workflow: the cluster plan of the paper-scale study, and (slow) the whole demo end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

# No wall-clock bound on the demo (issue 12): machine speed varies by 2x or more, so the time is recorded as a
# benchmark, not asserted. The subprocess timeout is only a guard against a hung job, far above any slow machine:
# conftest.py's, which also sets pytest-timeout's guard for this test.
from conftest import HUNG_JOB_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[1]


def snakemake(*args: str, cwd: Path = ROOT, timeout: int = HUNG_JOB_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def job_stats(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


@pytest.fixture(scope="module")
def slurm_plan() -> str:
    out = snakemake("all", "-n", "--nolock", "--profile", "profiles/slurm")
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def scaling_cluster_plan() -> str:
    """The scaling study at cluster sizes (issue 23), planned as docs/reproduction.md says."""
    out = snakemake(
        "all",
        "-n",
        "--nolock",
        "--profile",
        "profiles/slurm",
        "--configfile",
        "config/slurm.yaml",
        "config/scaling_cluster.yaml",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def exponax_plan() -> str:
    """The exponax study (issue 24) planned as docs/reproduction.md says, on the local profile."""
    out = snakemake("all", "-n", "--nolock", "--profile", "profiles/local", "--configfile", "config/exponax.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def test_the_exponax_plan_has_every_run_its_baselines_and_measures(exponax_plan: str) -> None:
    """Data, symmetry check and trivial forecasts once per flow; one training job per (arm, flow, seed); the three
    measures of every selected run at its best checkpoint; the tables, figure, claims and convergence once."""
    import yaml

    from equidyn.studies import exponax_study

    config = yaml.safe_load((ROOT / "config" / "exponax.yaml").read_text())
    section, selection = config["exponax"], config["dynamics"]["runs"]
    runs = exponax_study.runs(section)
    measured = [r for r in runs if any(r["model"] in s.get("model", [r["model"]]) for s in selection)]
    stats = job_stats(exponax_plan)
    flows = len(section["flows"])
    assert stats["exponax_train"] == len(runs) == 100
    for rule in ("exponax_data", "exponax_symmetry", "baseline_exponax"):
        assert stats[rule] == flows, rule
    for measure in ("lie", "sharpness", "hessian"):
        assert stats[f"measure_{measure}_exponax"] == len(measured) == 60
    for rule in ("exponax_data_table", "exponax_table", "exponax_summary", "figure_exponax", "dynamics_table",
                 "claims_table", "figure_claims", "convergence_study", "convergence_table", "all"):  # fmt: skip
        assert stats[rule] == 1, rule
    assert "levels_train" not in stats and "levels_base" not in stats  # the study trains on its own data only
    assert "figure_ee_vs_alpha" not in stats and "figure_lambda_max_vs_skill" not in stats  # level figures
    assert stats["total"] == len(runs) + 3 * len(measured) + 3 * flows + 10


def test_the_cluster_scaling_plan_sizes_each_job_by_its_model_size(scaling_cluster_plan: str) -> None:
    import yaml

    from equidyn.studies import scaling

    section = yaml.safe_load((ROOT / "config" / "scaling_cluster.yaml").read_text())["scaling"]
    assert job_stats(scaling_cluster_plan)["scaling_train"] == len(scaling.runs(section)) == 280
    tiers = sorted(section["resources_by_size"], key=lambda t: t["max_size"])
    blocks = [b for b in scaling_cluster_plan.split("\n\n") if "rule scaling_train:" in b]
    for block in blocks:
        size = int(re.search(r"size=(\d+)", block).group(1))
        tier = next(t for t in tiers if size <= t["max_size"])
        assert re.search(rf"mem_mb={tier['mem_mb']}\b.*runtime={tier['runtime']}\b.*gpu=1\b", block), block
    assert max(int(s) for s in section["sizes"]) >= 600000  # up to the published configuration's size


def test_the_scaling_study_from_its_kept_parts_trains_nothing_and_plans_its_tables() -> None:
    """With all four parts kept, `all` gathers them: no training and no convergence job (which would find no run and
    fail, as it did on a fresh clone on 2026-12-07); the stores, table, fits and figures are planned."""
    out = snakemake(
        "all", "-n", "-F", "--nolock", "--profile", "profiles/local",
        "--configfile", "config/scaling.yaml", "config/scaling_kept.yaml",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = job_stats(out.stdout + out.stderr)
    assert "scaling_train" not in jobs and "convergence_study" not in jobs and "convergence_table" not in jobs
    assert jobs["scaling_table"] == 1 and jobs["scaling_fits"] == 1 and jobs["figure_scaling"] == 3


def test_cluster_plan_has_one_gpu_training_job_per_run(slurm_plan: str) -> None:
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["levels"]
    runs = sum(len(m.get("alphas", [0])) for m in config["models"]) * len(config["levels"]) * len(config["seeds"])
    stats = job_stats(slurm_plan)
    assert stats["levels_train"] == runs == 350
    blocks = [b for b in slurm_plan.split("\n\n") if "rule levels_train:" in b]
    assert len(blocks) == runs
    assert all(re.search(r"resources: .*\bgpu=1\b", b) for b in blocks)
    wildcards = {re.search(r"wildcards: (.*)", b).group(1) for b in blocks}
    assert len(wildcards) == runs  # one job per (model, alpha, level, seed)
    data_blocks = [b for b in slurm_plan.split("\n\n") if "rule levels_base:" in b]
    assert data_blocks and not re.search(r"\bgpu=1\b", data_blocks[0])  # data generation stays on CPU


#: rules that only gather results: tables, figures, the claims and the convergence report (each takes seconds)
GATHERING_RULE = re.compile(r"^(all|figure_\w+|\w+_tables?|\w+_summary|convergence_study|scaling_part|scaling_fits)$")


def declared_localrules() -> set[str]:
    """The rule names of every ``localrules:`` directive, the Snakefile's and those of the included rule files (a
    study whose rules exist only with its config section declares its local rules beside them)."""
    names: set[str] = set()
    for path in (ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))):
        for block in re.finditer(r"^([ \t]*)localrules:\n((?:\1[ \t]+\w+,?[ \t]*\n)+)", path.read_text(), re.M):
            names |= set(re.findall(r"\w+", block.group(2)))
    assert names, "the workflow declares no localrules"
    return names


def test_tables_figures_claims_and_reports_are_local_rules_and_nothing_else_is(
    slurm_plan: str, scaling_cluster_plan: str, exponax_plan: str
) -> None:
    """On a cluster each table or figure job would otherwise wait in the SLURM queue, about 30 of them in a serial
    chain at the end of the run: every gathering rule of the plans (the paper study's, the scaling study's and the
    exponax study's, including the dynamically named figure rules) is a local rule, and no data, training or measure
    rule is."""
    plans = (slurm_plan, scaling_cluster_plan, exponax_plan)
    planned = set().union(*(job_stats(plan) for plan in plans)) - {"total"}
    local = declared_localrules()
    assert local <= planned, f"localrules names rules the plan does not have: {sorted(local - planned)}"
    gathering = {r for r in planned if GATHERING_RULE.match(r)}
    assert gathering - local == set(), "gathering rules that would be submitted to SLURM"
    assert local - gathering == set(), "local rules that do real work"
    assert {"levels_train", "measure_lie_levels", "levels_base", "tutorial_train"} <= planned - local


#: every config a user runs, alone or (the cluster scaling plan) with the profile's config named again
LINTED_CONFIGS = [("demo.yaml",), ("laptop.yaml",), ("heldout.yaml",), ("scaling.yaml",), ("exponax.yaml",)]
LINTED_CONFIGS += [("paper_check.yaml",), ("slurm.yaml", "scaling_cluster.yaml"), ("scaling.yaml", "scaling_kept.yaml")]


@pytest.mark.parametrize("configs", LINTED_CONFIGS, ids=lambda c: "+".join(c))
def test_snakemake_lint_is_clean_for_every_config(configs: tuple[str, ...]) -> None:
    """``snakemake --lint`` (issue 22: "stays clean") for each study's config, since rules and localrules that exist
    only with a config section are linted only under it; it exits 1 on any lint."""
    out = snakemake("--lint", "--configfile", *(str(ROOT / "config" / c) for c in configs))
    assert out.returncode == 0 and "Lints for" not in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
    assert "not present in the Snakefile" not in out.stdout + out.stderr


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """The README's demo in a scratch directory: every table and figure, with the headline properties.

    Its wall time is printed and appended to ``benchmarks/out/demo_wall.tsv`` next to the machine's ``import torch``
    time (the yardstick, ``equidyn.yardstick``); it is not asserted, so a slow machine cannot turn CI red.
    """
    from equidyn.lineage import git_rev
    from equidyn.yardstick import append_records, demo_record, format_record, torch_import_seconds

    yardstick = torch_import_seconds()
    t0 = time.perf_counter()
    out = snakemake(
        "all", "--profile", str(ROOT / "profiles" / "local"), "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--configfile", str(ROOT / "config" / "demo.yaml"),
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    timing = demo_record(elapsed, yardstick, tmp_path / "results" / "demo" / "benchmarks", "test_demo_end_to_end",
                         git_rev(ROOT))  # fmt: skip
    append_records(ROOT / "benchmarks" / "out" / "demo_wall.tsv", [timing])
    print(f"\n{format_record(timing)}")
    assert out.returncode == 0, out.stderr[-5000:]
    res = tmp_path / "results" / "demo"
    tables = {p.stem: pd.read_csv(p) for p in (res / "tables").glob("*.csv")}
    expected_tables = {"data_equivariance", "levels", "rotation_benchmark", "rotation_summary", "superres",
                       "superres_summary", "tutorial", "dynamics"}  # fmt: skip
    assert expected_tables <= set(tables)
    for name in expected_tables:
        table = tables[name]
        assert len(table) > 0, name
        assert {"config_sha", "git_rev", "data_sha"} <= set(table.columns), name
        assert table[["config_sha", "git_rev", "data_sha"]].notna().all().all(), name

    # symmetry levels: data EE grows from exactly 0; E2CNN exact at every level; RSteer's EE grows with data EE
    data, levels = tables["data_equivariance"], tables["levels"]
    assert data.loc[data.level == 0, "data_ee"].item() == 0.0
    assert data.sort_values("level").data_ee.is_monotonic_increasing
    e2 = levels[levels.model == "e2cnn"]
    assert set(e2.level) == set(data.level) and (e2.ee_rel < 1e-5).all()
    rs = levels[(levels.model == "rsteer") & (levels.checkpoint == "best")].groupby(["alpha", "level"]).ee.mean()
    for alpha in rs.index.get_level_values("alpha").unique():
        by_level = rs.loc[alpha].sort_index()
        assert by_level.iloc[-1] > by_level.iloc[0], f"RSteer alpha={alpha}: EE does not grow with data EE"

    # rotation benchmark: all nine models, W22 numbers alongside
    summary = tables["rotation_summary"]
    assert set(summary.model) == {"mlp", "convnet", "e2cnn", "rpp", "combo", "clcnn", "lift", "rgroup", "rsteer"}
    assert summary.w22_rmse_future.notna().all() and (summary.rmse_domain_mean > 0).all()

    # super-resolution: three models; GCNN exactly O_h-equivariant
    sr = tables["superres"]
    assert set(sr.model) == {"cnn3d", "gcnn3d", "rgcnn3d"}
    assert (sr[sr.model == "gcnn3d"].ee_rel < 1e-5).all()

    # issue 13: tutorial on coarse-grained closure data, f0 flow, ⟨u′v′⟩ output: escnn identical under rotation (and
    # escnn D4 under mirrors too); CNN degrades; augmentation in between; every model beats the mean at 0°
    tutorial = tables["tutorial"]
    assert {"flow", "model", "output", "transform", "rotation", "seed", "rmse", "r2"} <= set(tutorial.columns)
    assert {"f0", "f2"} <= set(tutorial.flow) and {"uv", "vector_flux"} <= set(tutorial.output)
    f0 = tutorial[(tutorial.flow == "f0") & (tutorial.output == "uv")]
    rot = f0[f0["transform"] == "rotation"]
    tut = rot.groupby(["model", "rotation"]).rmse.mean().unstack()
    escnn = tut.loc["escnn"]
    assert escnn.max() - escnn.min() <= 1e-4 * escnn.mean()
    r2 = rot.groupby(["model", "rotation"]).r2.mean().unstack()
    assert (r2[0] > 0).all(), r2[0]
    assert r2.loc["escnn"].max() - r2.loc["escnn"].min() <= 1e-4 * abs(r2.loc["escnn"]).max()
    d4 = f0[f0.model == "escnn_d4"].groupby("element").rmse.mean()
    assert d4.max() - d4.min() <= 1e-4 * d4.mean()
    degradation = tut[[90, 180, 270]].mean(axis=1) / tut[0]  # rotated error relative to the training orientation
    assert degradation["cnn"] > 1.05, degradation
    assert degradation["cnn_aug"] < degradation["cnn"], degradation
    assert (tables["tutorial_ceiling"].gradient_model_r2_fitted > 0).all()

    # dynamics: every measure present for every measured checkpoint
    dyn = tables["dynamics"]
    measured = dyn[dyn.lie_derivative.notna()]
    assert len(measured) > 0
    for column in ("sharpness_blog", "sharpness_blog_rel", "sharpness_curvature", "sharpness_curvature_se",
                   "hessian_lambda_max", "hessian_trace", "hessian_trace_se", "hessian_negative_mass"):  # fmt: skip
        assert measured[column].notna().all(), column
    assert (measured.measure_git_rev == git_rev(ROOT)).all()  # the measures' own commit, not only the training's
    assert set(measured.checkpoint) == {"epoch3", "best"}
    assert set(measured.study) == {"levels", "superres"}

    # issue 9: the claims table answers with paired effects and 95 % CIs; summaries report CIs, not sds
    claims = tables["claims"]
    for column in ("claim", "source", "quantity", "effect", "ci_low", "ci_high", "n_seeds", "verdict", "ci_method",
                   "paired", "role", "verdict_holm", "seeds_needed_80pct_power", "seeds_needed_method",
                   "config_sha", "git_rev", "data_sha"):  # fmt: skip
        assert column in claims, column
    assert set(claims.verdict) <= {"supported", "contradicted", "not resolved"}
    assert {"BLOG", "W22"} <= set(claims.source)
    quantities = set(claims.quantity)
    assert {"test RMSE", "λ_max", "Hessian trace", "curvature sharpness", "test MAE", "RMSE test-domain"} <= quantities
    assert any(q.startswith("Pearson") for q in quantities)
    if {"escnn", "cnn"} & set(tables["tutorial"].model):  # the tutorial's claims need its escnn / cnn labels
        assert "TUT" in set(claims.source)
    resolved = claims[claims.verdict != "not resolved"]
    assert ((resolved.ci_high < 0) | (resolved.ci_low > 0) | resolved.claimed.str.startswith("|effect|")).all()
    # issue 21: correlation CIs in [−1, 1]; positive quantities only on log scales; method and pairing named
    corr = claims[claims.effect_kind == "correlation"]
    assert ((corr.ci_low >= -1) & (corr.ci_high <= 1) | corr.ci_low.isna()).all()
    # "difference": issue 20's check that every level arm beats its skip (a skill, not a positive quantity)
    assert set(claims.effect_kind) <= {"log_ratio", "log_ratio_of_means", "correlation", "difference"}
    assert claims.ci_method.notna().all() and claims.paired.isin([True, False]).all()
    for name, column in (("rotation_summary", "rmse_domain_ci_low"), ("superres_summary", "test_mae_ci_high"),
                         ("levels_summary", "test_rmse_ci_low")):  # fmt: skip
        assert column in tables[name] and not any(c.endswith("_sd") and "w2" not in c and "blog" not in c
                                                   for c in tables[name].columns), name  # fmt: skip
    for ext in ("pdf", "png"):
        assert (res / "figures" / f"claims.{ext}").stat().st_size > 10_000

    # issue 11: trivial baselines joined into the summaries; every run's convergence and learning curves
    for name, column in (("levels_summary", "test_rmse_skill"), ("rotation_summary", "rmse_domain_skill"),
                         ("superres_summary", "test_mae_skill")):  # fmt: skip
        assert column in tables[name] and tables[name][column].notna().all(), name
    conv = tables["convergence"]
    assert set(conv.study) == {"levels", "rotation", "superres", "tutorial"}
    assert conv.rel_change_last20.notna().all() and conv.flattened.isin([True, False]).all()
    for study in ("levels", "rotation", "superres", "tutorial"):
        assert (res / "figures" / f"curves_{study}.png").stat().st_size > 10_000, study
    import json

    lie = json.loads((res / "runs/levels/e2cnn/alpha0/level0/seed0/lie_best.json").read_text())
    assert lie["order"] == 4 and len({s[0] for s in lie["samples"]}) > 1  # samples from several simulations

    figures = ["ee_vs_data_ee", "rotation_rollout", "rotation_rmse_by_step", "superres_curves", "superres_slices",
               "tutorial_rotated", "tutorial_skill", "ee_vs_alpha", "lie_vs_alpha", "levels_curves",
               "test_rmse_bars", "hessian_density", "sharpness", "lambda_max_vs_skill"]  # fmt: skip
    for fig in figures:
        for ext in ("pdf", "png"):
            assert (res / "figures" / f"{fig}.{ext}").stat().st_size > 10_000, f"{fig}.{ext}"
    report = snakemake(
        "all", "--profile", str(ROOT / "profiles" / "local"), "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--configfile", str(ROOT / "config" / "demo.yaml"),
        "--report", str(res / "report.html"),
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    assert (res / "report.html").stat().st_size > 100_000
