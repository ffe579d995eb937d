"""Seed-level statistics: t intervals against known values, paired effects, verdicts, seeds needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from equidyn.stats import _t_quantile, ci_columns, mean_ci, paired_effect, seeds_needed, verdict


def test_t_interval_matches_the_textbook_value():
    # n 4: half-width t_{0.975,3}·sd/√4 with t_{0.975,3} = 3.182446
    est = mean_ci([1.0, 2.0, 3.0, 2.0])
    x = np.array([1.0, 2.0, 3.0, 2.0])
    half = 3.182446305284263 * x.std(ddof=1) / 2
    assert est.mean == pytest.approx(2.0) and est.n == 4
    assert (est.ci_low, est.ci_high) == pytest.approx((2.0 - half, 2.0 + half), rel=1e-9)


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = sum((lambda e: e.ci_low < 1.0 < e.ci_high)(mean_ci(rng.normal(1.0, 2.0, size=3))) for _ in range(4000))
    assert 0.935 < hits / 4000 < 0.965


def test_one_seed_has_no_interval_and_no_verdict():
    est = mean_ci([0.3])
    assert est.n == 1 and math.isnan(est.ci_low) and math.isnan(est.sd)
    assert verdict(est, "negative") == "not resolved"
    assert math.isnan(seeds_needed(est))
    assert math.isnan(mean_ci([]).mean)


def test_paired_effect_removes_what_the_seeds_share():
    # a is b minus 0.1 on every seed, with seed effects much larger than 0.1: unpaired means could not tell
    seed_effect = {0: 5.0, 1: -3.0, 2: 11.0}
    b = {s: 10 + v for s, v in seed_effect.items()}
    a = {s: 10 + v - 0.1 + 0.01 * s for s, v in seed_effect.items()}
    est = paired_effect(a, b)
    assert est.mean == pytest.approx(-0.09) and est.n == 3
    assert verdict(est, "negative") == "supported"
    assert verdict(est, "positive") == "contradicted"
    # only seeds present on both sides are paired
    assert paired_effect({**a, 7: 0.0}, b).n == 3
    ratio = paired_effect({0: 2.0, 1: 4.0}, {0: 1.0, 1: 2.0}, kind="log_ratio")
    assert ratio.mean == pytest.approx(math.log(2)) and ratio.sd == pytest.approx(0.0)


def test_verdicts_read_the_interval():
    straddles = paired_effect({0: 1.0, 1: -1.0, 2: 0.2}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert verdict(straddles, "negative") == "not resolved"
    inside = mean_ci([0.01, -0.01, 0.0, 0.005])
    assert verdict(inside, "equivalent", margin=0.05) == "supported"
    outside = mean_ci([0.5, 0.52, 0.49])
    assert verdict(outside, "equivalent", margin=0.05) == "contradicted"
    with pytest.raises(ValueError, match="margin"):
        verdict(inside, "equivalent")
    with pytest.raises(ValueError, match="claim"):
        verdict(inside, "smaller")


def test_seeds_needed_resolves_the_effect_at_the_observed_mean_and_sd():
    est = mean_ci([-0.1, 0.02])  # mean -0.04, sd 0.085: far from resolved with 2 seeds
    n = int(seeds_needed(est))
    assert n > 2
    assert _t_quantile(n, 0.95) * est.sd / math.sqrt(n) < abs(est.mean)  # n seeds resolve it
    assert _t_quantile(n - 1, 0.95) * est.sd / math.sqrt(n - 1) >= abs(est.mean)  # n - 1 do not
    assert seeds_needed(mean_ci([0.0, 0.04]), margin=0.05) > 2  # equivalence: the interval must fit in ±0.05


def test_bootstrap_is_seeded_and_close_to_t_for_many_seeds():
    x = np.random.default_rng(1).normal(size=60)
    a, b = mean_ci(x, method="bootstrap"), mean_ci(x, method="bootstrap")
    t = mean_ci(x)
    assert a == b
    assert a.ci_low == pytest.approx(t.ci_low, abs=0.05) and a.ci_high == pytest.approx(t.ci_high, abs=0.05)
    with pytest.raises(ValueError, match="method"):
        mean_ci(x, method="jackknife")


def test_ci_columns_for_summary_tables():
    import pandas as pd

    df = pd.DataFrame({"model": ["a", "a", "a", "b"], "rmse": [1.0, 2.0, 3.0, 5.0]})
    out = ci_columns(df.groupby("model").rmse, "rmse")
    assert list(out.columns) == ["rmse_mean", "rmse_ci_low", "rmse_ci_high"]
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975,2}·sd/√3
    assert (out.loc["a", "rmse_ci_low"], out.loc["a", "rmse_ci_high"]) == pytest.approx((2 - half, 2 + half))
    assert out.loc["b", "rmse_mean"] == 5.0 and math.isnan(out.loc["b", "rmse_ci_low"])  # one seed: no interval
