"""Issue 23: the scaling study — the power-law fits against known answers, the sweeps' grid and rules, the data
fractions, and a tiny configuration of the study end to end (train, part tables, fits, figures)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from equidyn.data.smoke import PlumePhysics
from equidyn.data.smoke_datasets import build_heldout_level, frames_dataset, heldout_split_sims
from equidyn.scaling_laws import crossover, fit_power_law, fit_with_bootstrap, saturating_power_law
from equidyn.store import write_store
from equidyn.studies import scaling, scaling_analysis

SIZES = np.array([1500, 4000, 12000, 36000])


def _noisy(rng, x, l_inf, a, alpha, noise=0.03, x_ref=5000.0):
    return saturating_power_law(x, l_inf, a, alpha, x_ref) * np.exp(rng.normal(0, noise, len(x)))


# -- the fits, against known answers ----------------------------------------------------------------------------------
def test_an_exact_saturating_power_law_is_recovered() -> None:
    x = np.repeat(SIZES, 3)
    fit = fit_power_law(x, saturating_power_law(x, 0.004, 0.02, 0.7, 5000.0))
    assert fit.alpha == pytest.approx(0.7, rel=1e-4)
    assert fit.l_inf == pytest.approx(0.004, rel=1e-4)
    assert fit.predict(5000.0) == pytest.approx(0.024, rel=1e-4)
    assert fit.interior


def test_a_pure_power_law_has_its_floor_at_zero_and_its_slope_is_the_exponent() -> None:
    x = np.repeat(SIZES, 2)
    fit = fit_power_law(x, 3.0 * x**-0.5)
    assert fit.l_inf == pytest.approx(0.0, abs=1e-6)
    assert fit.alpha == pytest.approx(0.5, rel=1e-4)
    assert fit.slope == pytest.approx(0.5, rel=1e-9)


def test_the_bootstrap_interval_covers_the_true_exponent(rng) -> None:
    x = np.repeat(SIZES, 3)
    hits = 0
    for trial in range(8):
        y = _noisy(np.random.default_rng(trial), x, 0.004, 0.02, 0.7)
        f = fit_with_bootstrap(x, y, n_resamples=199, seed=trial)
        assert f.constrained, f.why_not
        hits += f.alpha_ci[0] <= 0.7 <= f.alpha_ci[1]
    # a percentile bootstrap from 3 seeds per point is somewhat narrow (module docstring): most, not 95 %, cover
    assert hits >= 5


def test_a_flat_curve_is_reported_as_not_constrained(rng) -> None:
    x = np.repeat(SIZES, 3)
    f = fit_with_bootstrap(x, 0.01 * np.exp(rng.normal(0, 0.03, len(x))), n_resamples=199)
    assert not f.constrained
    assert "bound" in f.why_not
    # the local slope is still measured, and it says "flat"
    assert f.slope_ci[0] < 0.05 and f.slope_ci[1] > -0.05


def test_three_points_cannot_constrain_three_parameters() -> None:
    x = np.repeat(SIZES[:3], 3)
    f = fit_with_bootstrap(
        x, saturating_power_law(x, 0.004, 0.02, 0.7, 5000.0) * (1 + 0.01 * np.tile([-1, 0, 1], 3)), n_resamples=99
    )
    assert not f.constrained and "3 x values for 3 parameters" in f.why_not


def test_fits_reject_non_positive_losses() -> None:
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2, 3], [0.1, 0.0, 0.2])


def test_crossing_curves_cross_where_the_algebra_says(rng) -> None:
    x = np.repeat(SIZES, 3)
    # a: steep with a low floor; b: shallow with a higher floor — they cross once inside the range
    a = fit_with_bootstrap(x, _noisy(rng, x, 0.001, 0.02, 1.0, noise=0.01), n_resamples=199)
    b = fit_with_bootstrap(x, _noisy(rng, x, 0.006, 0.006, 0.3, noise=0.01), n_resamples=199)
    grid = np.geomspace(1500, 36000, 20000)
    truth = grid[
        np.argmin(
            np.abs(
                saturating_power_law(grid, 0.001, 0.02, 1.0, 5000) - saturating_power_law(grid, 0.006, 0.006, 0.3, 5000)
            )
        )
    ]
    c = crossover(a, b, 1500, 36000)
    assert c.verdict == "cross"
    assert c.ci_low <= truth <= c.ci_high
    assert c.point == pytest.approx(truth, rel=0.1)
    # parallel curves do not cross
    d = fit_with_bootstrap(x, _noisy(rng, x, 0.002, 0.01, 1.0, noise=0.01), n_resamples=199)
    assert crossover(a, d, 1500, 36000).verdict == "no crossover in range"


# -- the grid, the rules of the sweeps --------------------------------------------------------------------------------
SECTION = {
    "levels": [0, 9],
    "sizes": [1500, 4000, 12000, 36000],
    "fractions": [0.25, 0.5, 1],
    "input_frames": 2,
    "rollout": {"train": 1, "valid": 1, "test": 1},
    "seeds": [0, 1, 2],
    "models": [
        {"name": "convnet", "budget": 12000, "layers": 4, "alphas": [0]},
        {"name": "e2cnn", "budget": 12000, "layers": 4, "alphas": [0]},
    ],
    "training": {"epochs": 40, "batch_size": 16, "lr": 0.01, "lr_gamma": 0.85, "patience": 10},
    "evaluation": {"ee_samples": 8},
}


def test_the_grid_has_both_sweeps_and_trains_the_shared_run_once() -> None:
    runs = scaling.runs(SECTION)
    sizes = scaling.sweep_runs(SECTION, "sizes")
    data = scaling.sweep_runs(SECTION, "data")
    assert len(sizes) == 2 * 2 * 4 * 3 and len(data) == 2 * 2 * 3 * 3
    # the 12k full-data run is in both sweeps and trained once
    assert len(runs) == len(sizes) + len(data) - 2 * 2 * 3
    keys = [tuple(r.values()) for r in runs]
    assert len(set(keys)) == len(keys)
    assert {r["fraction"] for r in data} == {"0.25", "0.5", "1"}
    assert all(r["fraction"] == "1" for r in sizes)
    with pytest.raises(ValueError, match="unknown scaling sweep"):
        scaling.sweep_runs(SECTION, "width")


def test_kept_parts_and_the_runs_they_share_are_not_trained_again() -> None:
    """With a part kept from an earlier sitting (``saved_parts``) the sitting trains the other parts' runs only, and
    not the full-data run at the budget that a kept sizes part shares with the fresh data part (the data part takes
    its row from the kept one); with every part kept, nothing is, and the convergence job says what to run instead."""
    level = SECTION["levels"][0]
    kept = {**SECTION, "saved_parts": {f"sizes_level{level}": "kept.csv"}}
    kept_sizes = scaling.sweep_runs(SECTION, "sizes", level)
    fresh = [r for r in scaling.runs(SECTION) if r not in kept_sizes]
    as_set = lambda runs: {tuple(r.values()) for r in runs}  # noqa: E731
    assert as_set(scaling.runs(kept)) == as_set(fresh) and len(fresh) < len(scaling.runs(SECTION))
    shared = [r for r in scaling.sweep_runs(SECTION, "data", level) if r in kept_sizes]
    assert shared and not as_set(shared) & as_set(scaling.runs_to_train(kept, "data", level))
    every = {f"{sweep}_level{lv}": "k.csv" for sweep in scaling.SWEEPS for lv in SECTION["levels"]}
    assert scaling.runs({**SECTION, "saved_parts": every}) == []
    from equidyn.studies import convergence

    with pytest.raises(ValueError, match=r"trains no run .*scaling_all"):
        convergence.study_table("scaling", {**SECTION, "saved_parts": every}, "results/x", "x.csv")


def test_a_run_is_its_arm_at_its_size_and_fraction() -> None:
    run = {"model": "e2cnn", "alpha": "0", "level": 9, "size": 4000, "fraction": "1", "seed": 2}
    settings = scaling.run_settings(SECTION, run)
    assert settings["model"]["budget"] == 4000 and settings["model"]["name"] == "e2cnn"
    assert "alphas" not in settings["model"]
    assert settings["training"] == SECTION["training"]
    # adding a size or a seed changes no existing run's settings
    more = {**SECTION, "sizes": [*SECTION["sizes"], 100000], "seeds": [0, 1, 2, 3]}
    assert scaling.run_settings(more, run) == settings


def test_a_data_fraction_keeps_the_full_runs_optimiser_steps_and_learning_rates() -> None:
    full = SECTION["training"]
    quarter = scaling.fraction_training(full, 0.25)
    assert quarter["epochs"] == 160 and quarter["patience"] == 40
    # the learning rate after the same number of optimiser steps is the same: γ_f^(E/f) = γ^E
    steps_per_epoch_full, steps_per_epoch_quarter = 68, 17
    for step in (17 * 40, 17 * 100, 17 * 160):
        e_quarter = step // steps_per_epoch_quarter
        e_full = step / steps_per_epoch_full
        assert quarter["lr_gamma"] ** e_quarter == pytest.approx(full["lr_gamma"] ** e_full, rel=1e-12)
    assert scaling.fraction_training(full, 1) == full
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        scaling.fraction_training(full, 0)


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(1 / 8, [8]), (0.25, [4, 12]), (0.5, [2, 6, 10, 14]), (1, [0, 2, 4, 6, 8, 10, 12, 14])],
)
def test_chosen_groups_are_bin_centres_that_span_the_buoyancy_range(fraction, expected) -> None:
    assert scaling.chosen_groups([14, 0, 2, 4, 6, 8, 10, 12], fraction) == expected


# -- a tiny configuration end to end ---------------------------------------------------------------------------------
GROUPS = {"train": [0, 2, 4, 6], "valid": [3], "test": [1, 5]}


@pytest.fixture
def level_store(tmp_path, rng, smooth):
    n_sims, n_frames, n = 8, 7, 8
    physics = PlumePhysics(grid=n, n_steps=n_frames, keep_from=0)
    velocity = smooth(rng, (n_sims, n_frames, 2, n, n))
    coords = {"inflow_x": ("sim", np.zeros(n_sims)), "inflow_y": ("sim", np.zeros(n_sims))}
    write_store(frames_dataset(velocity, physics, coords), tmp_path / "base.zarr", {"physics": {}, "base": {}})
    root = tmp_path / "results"
    store = root / "data" / "levels" / "level0.zarr"
    store.parent.mkdir(parents=True)
    build_heldout_level(tmp_path / "base.zarr", 0, GROUPS, store)
    return root, store


def test_a_fraction_trains_on_whole_c4_orbits_of_the_chosen_groups(level_store) -> None:
    _, store = level_store
    settings = scaling.run_settings(
        SECTION, {"model": "convnet", "alpha": "0", "level": 0, "size": 1500, "fraction": "0.5", "seed": 0}
    )
    task, ds = scaling.make_task(settings, store)
    assert task.train_groups == [2, 6]
    sims = set(task.windows["train"][:, 0].tolist())
    assert {int(ds.group.values[s]) for s in sims} == {2, 6}
    assert sorted(int(ds.rotation.values[s]) for s in sims) == [0, 0, 1, 1, 2, 2, 3, 3]
    full, _ = scaling.make_task({**settings, "fraction": 1.0}, store)
    assert len(task.windows["train"]) * 2 == len(full.windows["train"])
    # valid and test are the held-out groups, whatever the fraction
    for split in ("valid", "test"):
        assert task.windows[split].tolist() == full.windows[split].tolist()
    assert set(full.windows["test"][:, 0].tolist()) == set(heldout_split_sims(ds)["test"])


def test_a_tiny_scaling_study_runs_end_to_end(level_store, tmp_path) -> None:
    root, store = level_store
    section = {
        **SECTION,
        "levels": [0],
        "sizes": [300, 600, 1200],
        "fractions": [0.5, 1],
        "seeds": [0, 1],
        "models": [{"name": "convnet", "residual": "linear", "budget": 600, "layers": 2, "alphas": [0]}],
        "training": {"epochs": 3, "batch_size": 8, "lr": 0.01, "lr_gamma": 0.9, "patience": 10, "device": "cpu"},
    }
    for run in scaling.runs(section):
        settings = scaling.run_settings(section, run)
        keys = {**run, "alpha": float(run["alpha"]), "fraction": float(run["fraction"])}
        scaling.train_run(settings, store, root / scaling.DESCRIPTION.run_path(run), **keys)
    parts = []
    for sweep in scaling.SWEEPS:
        out = tmp_path / f"{sweep}.csv"
        scaling.part_table(section, sweep, 0, root, out)
        parts.append(str(out))
    table = scaling.study_table(parts, tmp_path / "scaling.csv", settings=section)
    assert len(table) == 2 * (3 + 2 - 1)
    assert_kept_parts_are_held_to_the_config(section, parts, tmp_path)
    assert_a_fresh_part_takes_shared_runs_from_a_kept_one(section, parts, root, tmp_path)
    assert set(table.sweeps) == {"sizes", "data", "data sizes"}
    half = table[table.fraction == 0.5].iloc[0]
    full = table[(table.fraction == 1) & (table["size"] == 600)].iloc[0]
    assert half.train_windows * 2 == full.train_windows
    assert half.epochs_run == 6 and full.epochs_run == 3  # the same optimiser steps
    assert half.samples_seen == full.samples_seen
    assert (table.compute_flops == table.flops_per_sample * table.samples_seen).all()
    assert table.params.is_monotonic_increasing or table.groupby("size").params.first().is_monotonic_increasing
    assert table.config_sha.notna().all() and table.data_sha.nunique() == 1

    fits, gaps = scaling_analysis.analyse(
        tmp_path / "scaling.csv", tmp_path / "fits.csv", tmp_path / "gaps.csv", tmp_path / "curves.csv", n_resamples=49
    )
    assert set(fits.axis) == {"params", "data", "compute"}
    # three sizes cannot constrain three parameters; two fractions are not a curve
    assert not fits.constrained.any()
    assert "fewer than 3" in fits[fits.axis == "data"].why_not_constrained.iloc[0]
    assert gaps.empty  # one arm: no pair to compare

    from equidyn.figures.scaling import scaling_figure

    tables, figures = root / "tables", root / "figures"
    tables.mkdir()
    for name, src in (("scaling", "scaling.csv"), ("scaling_fits", "fits.csv"), ("scaling_gaps", "gaps.csv")):
        (tables / f"{name}.csv").write_text((tmp_path / src).read_text())
    for axis in ("params", "data", "compute"):
        scaling_figure(tables / "scaling.csv", tmp_path / "curves.csv", axis, figures / f"scaling_{axis}.pdf")
        assert (figures / f"scaling_{axis}.png").stat().st_size > 0

    from equidyn.findings_scaling import publish

    page = publish(root, tmp_path / "docs").read_text()
    for section in ("## What ran", "## Did every arm learn?", "## Fitted exponents", "## Crossovers", "## Figures"):
        assert section in page
    assert "3 x values for 3 parameters" in page and "No reading of these numbers" in page
    assert (tmp_path / "docs" / "img" / "findings" / "scaling" / "scaling_params.png").exists()
    assert (tmp_path / "docs" / "findings" / "scaling_fits.csv").exists()

    # a page made from the parts kept so far: a level with its data sweep only says so instead of failing
    (tables / "scaling.csv").write_text(table[table.sweeps == "data"].to_csv(index=False))
    page = publish(root, tmp_path / "docs").read_text()
    assert "- level 0: convnet; no size sweep in this table; training windows" in page


def assert_kept_parts_are_held_to_the_config(section: dict, parts: list[str], tmp_path) -> None:
    """A kept part (``saved_parts``, from an earlier sitting) is gathered only if it holds exactly its sweep's runs,
    each trained with the settings this config gives it; the error names the file and the run."""
    sizes = pd.read_csv(parts[0])
    changed = {**section, "training": {**section["training"], "lr": 0.02}}
    with pytest.raises(
        ValueError,
        match=r"sizes\.csv: run runs/scaling/convnet/alpha0/level0/size300/frac1/seed0 was trained with .*another",
    ):
        scaling.study_table(parts, tmp_path / "x.csv", settings=changed)
    short = tmp_path / "short.csv"
    sizes.iloc[1:].to_csv(short, index=False)
    with pytest.raises(ValueError, match=r"short\.csv: the sizes part of level 0 .*1 runs missing"):
        scaling.study_table([str(short), parts[1]], tmp_path / "x.csv", settings=section)
    more_seeds = {**section, "seeds": [0, 1, 2]}
    with pytest.raises(ValueError, match="runs missing"):
        scaling.study_table(parts, tmp_path / "x.csv", settings=more_seeds)
    mixed = tmp_path / "mixed.csv"
    sizes.assign(data_sha=sizes.data_sha.where(sizes.index > 0, "0" * 64)).to_csv(mixed, index=False)
    with pytest.raises(ValueError, match=r"level\(s\) \[0\] mix data stores"):
        scaling.study_table([str(mixed), parts[1]], tmp_path / "x.csv")
    # where each part comes from: the kept file named for it, else the part rule's output
    kept = {**section, "saved_parts": {"sizes_level0": "kept/sizes_level0.csv"}}
    fresh = lambda sweep, level: f"analysis/{sweep}_level{level}.csv"  # noqa: E731
    assert scaling.part_sources(kept, fresh) == ["kept/sizes_level0.csv", "analysis/data_level0.csv"]
    with pytest.raises(ValueError, match=r"saved_parts: \['sizes_level9'\] are not parts of this config"):
        scaling.part_sources({**section, "saved_parts": {"sizes_level9": "x.csv"}}, fresh)


def assert_a_fresh_part_takes_shared_runs_from_a_kept_one(section: dict, parts: list[str], root, tmp_path) -> None:
    """With the sizes part kept, the data part's full-data runs at the budget (shared with the sizes sweep) are not
    trained again: the sitting's grid leaves them out, and the data part's table takes their rows, lineage included,
    from the kept part, even when their run folders are gone."""
    import shutil

    kept = {**section, "saved_parts": {"sizes_level0": parts[0]}}
    shared = [r for r in scaling.sweep_runs(section, "data", 0) if r["fraction"] == "1"]
    assert shared and not [r for r in scaling.runs_to_train(kept, "data", 0) if r in shared]
    assert not [r for r in scaling.runs(kept) if r in shared]
    moved = tmp_path / "moved"
    for run in shared:
        shutil.move(root / scaling.DESCRIPTION.run_path(run), moved / scaling.DESCRIPTION.run_path(run))
    try:
        data = scaling.part_table(kept, "data", 0, root, tmp_path / "data_kept.csv")
    finally:
        for run in shared:
            shutil.move(moved / scaling.DESCRIPTION.run_path(run), root / scaling.DESCRIPTION.run_path(run))
    before = pd.read_csv(parts[1])
    after = pd.read_csv(tmp_path / "data_kept.csv")
    assert len(data) == len(before) and (after.sweep == "data").all()
    pd.testing.assert_frame_equal(after, before, check_like=True)
    table = scaling.study_table([parts[0], str(tmp_path / "data_kept.csv")], tmp_path / "x.csv", settings=kept)
    assert len(table) == len(scaling.sweep_runs(section, "sizes")) + len(before) - len(shared)


def _synthetic_table(rng, arms=(("convnet", 1.0), ("e2cnn", 0.7))) -> pd.DataFrame:
    """Arms whose true curves are known: by default b is a factor 0.7 of a at every size (a constant log gap)."""
    rows = []
    for model, factor in arms:
        for size, params in zip(SIZES, SIZES * 1.02, strict=True):
            for seed in range(3):
                y = factor * saturating_power_law(params, 0.002, 0.02, 0.6, 5000) * math.exp(rng.normal(0, 0.02))
                rows.append(
                    {
                        "model": model,
                        "alpha": 0.0,
                        "level": 0,
                        "size": size,
                        "fraction": 1.0,
                        "seed": seed,
                        "params": params,
                        "train_windows": 1088,
                        "compute_flops": params * 2e5 * (1 + seed / 100),
                        "test_rmse": y,
                        "flattened": True,
                        "sweeps": "sizes",
                        "config_sha": "c",
                        "git_rev": "g",
                        "data_sha": "d",
                    }
                )
    return pd.DataFrame(rows)


def test_the_gap_between_two_arms_and_its_trend_have_known_answers(rng, tmp_path) -> None:
    _synthetic_table(rng).to_csv(tmp_path / "scaling.csv", index=False)
    fits, gaps = scaling_analysis.analyse(
        tmp_path / "scaling.csv", tmp_path / "fits.csv", tmp_path / "gaps.csv", tmp_path / "curves.csv", n_resamples=199
    )
    params = fits[fits.axis == "params"].set_index("model")
    for model in ("convnet", "e2cnn"):
        assert params.loc[model, "exponent_ci_low"] <= 0.6 <= params.loc[model, "exponent_ci_high"] + 0.05
        assert params.loc[model, "alpha"] == 0.0  # the model's relaxation weight, not the fit's exponent
    gap = gaps[(gaps.kind == "gap") & (gaps.axis == "params")]
    assert len(gap) == 4
    # convnet vs e2cnn: log(1 / 0.7) at every size, resolved
    assert np.allclose(gap.effect, math.log(1 / 0.7), atol=0.05)
    assert (gap.verdict == "arm higher").all()
    trend = gaps[(gaps.kind == "trend") & (gaps.axis == "params")].iloc[0]
    # a constant gap: a slope near 0 per decade (its interval's coverage: the calibration test below)
    assert abs(trend.effect) < 0.06 and trend.ci_high - trend.ci_low < 0.2
    cross = gaps[(gaps.kind == "crossover") & (gaps.axis == "params")].iloc[0]
    assert cross.verdict == "no crossover in range"
    # lineage on every row
    assert (gaps.config_sha == "c").all() and (fits.git_rev == "g").all()
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert (curves.band_low <= curves.fit * (1 + 1e-9)).all() and (curves.fit <= curves.band_high * (1 + 1e-9)).all()


def test_holm_adjusts_each_question_over_the_pairs_of_arms_that_ask_it(rng, tmp_path) -> None:
    """Three arms, three pairs per question: p_holm is Holm's adjustment of exactly that family (checked by hand),
    never below the raw p; a real gap (factor 0.7) survives it, two equal arms do not differ."""
    arms = (("convnet", 1.0), ("e2cnn", 0.7), ("rsteer", 0.7))
    _synthetic_table(rng, arms).to_csv(tmp_path / "scaling.csv", index=False)
    _, gaps = scaling_analysis.analyse(
        tmp_path / "scaling.csv", tmp_path / "fits.csv", tmp_path / "gaps.csv", tmp_path / "curves.csv", n_resamples=99
    )
    tested = gaps[gaps.kind.isin(["gap", "trend"])]
    assert tested.p_holm.notna().all() and (tested.p_holm >= tested.p_value - 1e-12).all()
    for size in SIZES:
        family = gaps[(gaps.kind == "gap") & (gaps.axis == "params") & (gaps["size"] == size)]
        assert len(family) == 3
        p = family.p_value.to_numpy()
        order = np.argsort(p)
        by_hand = np.empty(3)
        by_hand[order] = np.minimum(1, np.maximum.accumulate(p[order] * np.array([3, 2, 1])))
        assert np.allclose(family.p_holm, by_hand)
        assert (family[family.arm == "convnet"].verdict_holm == "arm higher").all()
        equal = family[(family.arm == "e2cnn") & (family.reference == "rsteer")]
        assert len(equal) == 1 and equal.verdict_holm.item() == "not resolved"
    trend = gaps[(gaps.kind == "trend") & (gaps.axis == "params")]
    assert len(trend) == 3 and (trend.verdict_holm == "not resolved").all()  # constant gaps: no trend
    assert (gaps[gaps.kind == "crossover"].verdict_holm.fillna("") == "").all()

    from equidyn.findings_scaling import _resolved_gap_lines, _trend_lines

    table = pd.read_csv(tmp_path / "gaps.csv")  # what the page reads
    resolved = "\n".join(_resolved_gap_lines(table))
    assert "| 0 | convnet vs e2cnn | params | size 1500 |" in resolved and "arm higher" in resolved
    assert "Holm p" in _trend_lines(table)[0]


def test_the_difference_of_trends_between_levels_has_a_known_answer(rng, tmp_path) -> None:
    """Level 0: a constant gap. Level 9: the second arm gains 0.3 in log ratio per decade of parameters on the
    first. The level-9-minus-level-0 row recovers +0.3 within its interval and resolves it; with the same constant
    gap at both levels the interval covers 0."""
    base = _synthetic_table(rng)
    broken = _synthetic_table(rng).assign(level=9, data_sha="d9")
    gains = broken.model == "e2cnn"
    broken.loc[gains, "test_rmse"] *= np.exp(-0.3 * np.log10(broken.loc[gains, "params"] / 1500.0))
    pd.concat([base, broken]).to_csv(tmp_path / "scaling.csv", index=False)
    _, gaps = scaling_analysis.analyse(
        tmp_path / "scaling.csv", tmp_path / "fits.csv", tmp_path / "gaps.csv", tmp_path / "curves.csv", n_resamples=49
    )
    row = gaps[(gaps.kind == "trend_difference") & (gaps.axis == "params")]
    assert len(row) == 1
    row = row.iloc[0]
    assert row.level == 9 and row.reference_level == 0 and row.arm == "convnet" and row.reference == "e2cnn"
    assert row.ci_low <= 0.3 <= row.ci_high and abs(row.effect - 0.3) < 0.06
    assert row.verdict == row.verdict_holm == "trend higher at this level"
    assert set(row.data_sha.split(";")) == {"d", "d9"}

    same = pd.concat([base, _synthetic_table(rng).assign(level=9)])
    same.to_csv(tmp_path / "same.csv", index=False)
    _, gaps = scaling_analysis.analyse(
        tmp_path / "same.csv", tmp_path / "fits.csv", tmp_path / "gaps.csv", tmp_path / "curves.csv", n_resamples=49
    )
    row = gaps[(gaps.kind == "trend_difference") & (gaps.axis == "params")].iloc[0]
    assert row.ci_low <= 0 <= row.ci_high and row.verdict_holm == "not resolved"

    from equidyn.findings_scaling import _trend_difference_lines

    page_lines = _trend_difference_lines(pd.read_csv(tmp_path / "gaps.csv"))
    assert "| 9 − 0 | convnet vs e2cnn | params |" in "\n".join(page_lines)


def test_the_trend_interval_covers_a_constant_gap_at_its_nominal_rate() -> None:
    """Calibration: 400 synthetic studies with a constant gap (no trend), 3 seeds per cell, sizes as configured."""
    hits = 0
    trials = 400
    for trial in range(trials):
        r = np.random.default_rng(trial)
        rows = [
            {"model": m, "size": s, "params": float(s), "test_rmse": math.exp(shift + r.normal(0, 0.05))}
            for m, shift in (("a", 0.3), ("b", 0.0))
            for s in SIZES
            for _ in range(3)
        ]
        df = pd.DataFrame(rows)
        t = scaling_analysis._trend(df[df.model == "a"], df[df.model == "b"], "size", "params", list(SIZES), "params")
        hits += t["ci_low"] <= 0 <= t["ci_high"]
    assert 0.92 <= hits / trials <= 0.98


def test_the_scaling_config_is_valid_and_checked() -> None:
    from pathlib import Path

    from equidyn.config import check_runnable, load_config, validate_config

    root = Path(__file__).resolve().parents[1]
    config = validate_config(load_config([root / "config" / "config.yaml", root / "config" / "scaling.yaml"]))
    sc = config["scaling"]
    # the floors: >= 4 sizes over >= 1.3 decades, >= 3 fractions, >= 3 seeds, levels 0 and a broken one
    assert len(sc["sizes"]) >= 4 and math.log10(max(sc["sizes"]) / min(sc["sizes"])) >= 1.3
    assert len(sc["fractions"]) >= 3 and len(sc["seeds"]) >= 3 and 0 in sc["levels"] and max(sc["levels"]) >= 9
    bad = copy.deepcopy(config)
    bad["levels"]["protocol"] = "time"
    bad["levels"]["splits"] = {"train": [0, 20], "valid": [20, 28], "test": [28, 36]}
    bad["scaling"]["levels"] = [0, 5]
    bad["scaling"]["models"][0] = {k: v for k, v in bad["scaling"]["models"][0].items() if k != "budget"}
    bad["scaling"]["models"][0]["hidden"] = 8
    problems = "\n".join(check_runnable(bad))
    assert "needs levels.protocol: heldout" in problems
    assert "scaling.levels: level(s) [5]" in problems
    assert "scaling.models[0]: needs a budget" in problems


def test_the_probe_measures_every_arm_and_size_in_its_own_process(tmp_path) -> None:
    """The cluster requests' source (docs/reproduction.md): one row per (arm, size), parameters growing with size."""
    from pathlib import Path

    import yaml

    from equidyn.scaling_probe import probe

    root = Path(__file__).resolve().parents[1]
    override = {
        "scaling": {
            "sizes": [400, 1600],
            "models": [{"name": "convnet", "budget": 400, "layers": 2, "residual": "linear", "alphas": [0]}],
        }
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(override))
    configs = [str(root / "config" / f) for f in ("config.yaml", "scaling.yaml")] + [str(tmp_path / "tiny.yaml")]
    df = probe(configs, grid=8, out=tmp_path / "probe.csv", steps=1)
    assert list(df["size"]) == [400, 1600] and list(df.arm) == ["convnet", "convnet"]
    assert df.params.is_monotonic_increasing and (df.flops_per_sample > 0).all()
    # the step time is recorded, never asserted (wall time is a measurement, not a test)
    assert (df.max_rss_mb > 50).all() and df.seconds_per_step.notna().all()
