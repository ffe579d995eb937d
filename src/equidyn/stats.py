"""How sure are we: seed-level confidence intervals, paired effects between models, verdicts on claims.

The unit of replication is the *training seed*: two runs of the same configuration differ by their seed, and a
claim about models ("RSteer's test RMSE is lower than E2CNN's") is about what a new seed would give. So

* a summary of one model is its mean over seeds with a 95 % confidence interval (Student's t on the seed values),
  never mean ± sd over two seeds;
* a comparison of two models is a **paired** effect: per seed ``s`` the difference ``a_s − b_s`` (or the log ratio
  ``log(a_s/b_s)``), matched on everything but the model (same seed, level, checkpoint, data), then the mean and
  its t interval over seeds. Pairing removes what the two runs share (the seed's data order, the level's
  difficulty), which is most of the spread;
* a claim's **verdict** reads the interval, not the means: *supported* when the whole interval lies on the claimed
  side, *contradicted* when it lies on the other side, *not resolved* otherwise (also with fewer than two
  seeds). A claim of *no* difference ("the same skill at every rotation") is an equivalence claim: supported when
  the interval lies inside ``±margin``, contradicted when it lies wholly outside;
* for a claim not resolved, ``seeds_needed`` is the smallest ``n`` with ``t_{0.975, n−1}·sd/√n < |mean|`` for
  the observed mean and sd: how many seeds this effect would need to be resolved, *if* it is as large as it
  looks (with two seeds the sd itself is very uncertain, so read it as an order of magnitude).

The bootstrap is offered for larger seed counts (``method="bootstrap"``, percentile interval of the seed mean);
with fewer than ~10 seeds its intervals are too narrow, so ``t`` is the default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["Interval", "ci_columns", "mean_ci", "paired_effect", "seeds_needed", "verdict"]

LEVEL = 0.95
MAX_SEEDS = 1000
VERDICTS = ("supported", "contradicted", "not resolved")


@dataclass(frozen=True)
class Interval:
    """A seed-level estimate: mean, its confidence interval, the number of seeds and the sd over seeds."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    sd: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _t_quantile(n: int, level: float) -> float:
    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def mean_ci(values: Sequence[float], level: float = LEVEL, method: str = "t", seed: int = 0) -> Interval:
    """Mean over seeds and its ``level`` confidence interval (``t`` or ``bootstrap``); NaN bounds below 2 seeds."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, float("nan"))
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, float("nan"))
    sd = float(x.std(ddof=1))
    if method == "t":
        half = _t_quantile(n, level) * sd / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, n, sd)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = rng.choice(x, size=(10_000, n), replace=True).mean(axis=1)
        lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
        return Interval(mean, float(lo), float(hi), n, sd)
    raise ValueError(f"unknown interval method {method!r}; expected 't' or 'bootstrap'")


def paired_effect(
    a: dict[object, float], b: dict[object, float], kind: str = "difference", level: float = LEVEL, method: str = "t"
) -> Interval:
    """Paired effect of ``a`` over ``b`` across the pairing keys (seeds) both have.

    ``kind="difference"``: ``a_s − b_s``; ``kind="log_ratio"``: ``log(a_s/b_s)`` (for positive quantities whose
    scale differs between studies; ``exp`` of the mean is the geometric-mean ratio).
    """
    keys = sorted(set(a) & set(b), key=str)
    if kind == "difference":
        diffs = [a[k] - b[k] for k in keys]
    elif kind == "log_ratio":
        diffs = [math.log(a[k] / b[k]) if a[k] > 0 and b[k] > 0 else float("nan") for k in keys]
    else:
        raise ValueError(f"unknown effect kind {kind!r}; expected 'difference' or 'log_ratio'")
    return mean_ci(diffs, level, method)


def verdict(estimate: Interval, claim: str, margin: float = 0.0) -> str:
    """``supported`` / ``contradicted`` / ``not resolved`` for a claim about the effect's sign or size.

    ``claim``: ``"negative"`` (effect < 0: a is lower than b), ``"positive"`` (effect > 0), or ``"equivalent"``
    (|effect| < ``margin``).
    """
    lo, hi = estimate.ci_low, estimate.ci_high
    if estimate.n < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
        return "not resolved"
    if claim == "negative":
        return "supported" if hi < 0 else "contradicted" if lo > 0 else "not resolved"
    if claim == "positive":
        return "supported" if lo > 0 else "contradicted" if hi < 0 else "not resolved"
    if claim == "equivalent":
        if not margin > 0:
            raise ValueError(f"an equivalence claim needs a positive margin, got {margin}")
        if -margin < lo and hi < margin:
            return "supported"
        return "contradicted" if lo > margin or hi < -margin else "not resolved"
    raise ValueError(f"unknown claim {claim!r}; expected 'negative', 'positive' or 'equivalent'")


def seeds_needed(estimate: Interval, level: float = LEVEL, margin: float = 0.0) -> float:
    """Seeds for the interval to exclude 0 (or, with ``margin``, to fit inside ±margin) at the observed mean and sd.

    NaN when the sd is unknown (fewer than 2 seeds) or the effect is exactly 0; ``MAX_SEEDS`` caps hopeless cases.
    """
    mean, sd = estimate.mean, estimate.sd
    if not (math.isfinite(mean) and math.isfinite(sd)):
        return float("nan")
    room = margin - abs(mean) if margin > 0 else abs(mean)
    if room <= 0:
        return float(MAX_SEEDS)
    if sd == 0:
        return 2.0
    for n in range(2, MAX_SEEDS + 1):
        if _t_quantile(n, level) * sd / math.sqrt(n) < room:
            return float(n)
    return float(MAX_SEEDS)


def ci_columns(grouped_values, name: str, level: float = LEVEL):
    """``{name}_mean``, ``{name}_ci_low``, ``{name}_ci_high`` per group of a pandas ``SeriesGroupBy`` of seed values:
    what summary tables report instead of mean ± sd."""
    import pandas as pd

    def row(values) -> pd.Series:
        est = mean_ci(list(values), level)
        return pd.Series({f"{name}_mean": est.mean, f"{name}_ci_low": est.ci_low, f"{name}_ci_high": est.ci_high})

    return grouped_values.apply(row).unstack()
