"""How sure are we: seed-level confidence intervals that respect the quantity, powered seed counts, Holm verdicts.

The unit of replication is the *training seed*: two runs of the same configuration differ by their seed, and a
claim about models ("RSteer's test RMSE is lower than E2CNN's") is about what a new seed would give. So

* a summary of one model is its mean over seeds with a 95 % confidence interval (Student's t on the seed values),
  never mean ± sd over two seeds;
* a comparison of two models is an effect with an interval chosen by **what the quantity is** (docs/decisions.md,
  "Intervals that respect the quantity"):

  - a *positive* quantity (RMSE, MAE, λ_max, EE) compares on the log scale: ``log(a/b)``, so no bound can imply
    a negative value. **Paired** (:func:`paired_effect`, ``ttest_1samp`` on the per-seed ``log(a_s/b_s)``) where
    the two arms share something pairing removes (the same architecture and seed: the same initialisation stream
    and data order; the same trained model at two inputs); **Welch** (:func:`welch_effect`, ``ttest_ind`` with
    ``equal_var=False`` on the logs) where they share only the seed number (two architectures draw different
    initial weights from the same seed; the measured correlation over seeds was −0.33 … +0.54, and the paired
    interval was the wider one);
  - a quantity estimated without bias but possibly ≤ 0 (a Hutchinson trace, the curvature sharpness) compares as
    a **ratio of means** with Fieller's interval (:func:`fieller_ratio`), reported as ``log`` of the ratio and
    of its bounds (a bound at or below 0 is reported as ``−inf``: the data do not bound the ratio from below);
  - a **correlation** (per seed, over levels) is averaged on Fisher's ``z = atanh r`` with a t interval there and
    transformed back (:func:`correlation_ci`), so its interval lies in [−1, 1];

* a claim's **verdict** reads the interval, not the means: *supported* when the whole interval lies on the claimed
  side, *contradicted* when it lies on the other side, *not resolved* otherwise (also with fewer than two
  seeds). A claim of *no* difference is an equivalence claim: supported when the interval lies inside
  ``±margin``. Over a family of claims tested together, :func:`holm` adjusts the two-sided p-values (the
  interval excludes 0 exactly when ``p < 0.05``) so that the chance of any false "supported" stays ≤ 5 %;
* ``seeds_needed`` (:func:`seeds_needed`) is the smallest ``n`` per arm at which a two-sided 5 % t test (the one
  the interval inverts) has **80 % power** if the true effect and spread are the observed ones, from the
  non-central t distribution; :func:`seeds_needed_range` repeats it at the ends of the spread's own 95 % interval
  (χ²), since with five seeds the spread is itself uncertain by a factor of about 2.

Every function here has a vectorised kernel (``_one_sample``, ``_welch``, ``_fieller``) that takes ``(..., n)``
arrays: tests/test_stats.py calibrates the very code the claims use on thousands of simulated experiments.
The bootstrap is offered for larger seed counts (``method="bootstrap"``); with fewer than ~10 seeds its
intervals are too narrow, so ``t`` is the default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Interval",
    "ci_columns",
    "correlation_ci",
    "fieller_ratio",
    "holm",
    "mean_ci",
    "paired_effect",
    "power",
    "seeds_needed",
    "seeds_needed_range",
    "verdict",
    "welch_effect",
]

LEVEL = 0.95
POWER = 0.80
MAX_SEEDS = 1000
VERDICTS = ("supported", "contradicted", "not resolved")
#: how the seed count is computed, as the claims table names it
SEEDS_NEEDED_METHOD = (
    "smallest n per arm with 80 % power of the two-sided 5 % t test at the observed effect and sd "
    "(non-central t; Welch df for unpaired arms)"
)
#: the interval methods, by the name the claims table gives them (docs/decisions.md explains each)
METHODS = {
    "t": "Student t interval on the per-seed values",
    "paired_t_log_ratio": "paired t interval on the per-seed log ratios log(a_s/b_s)",
    "welch_log_ratio": "Welch t interval on the difference of mean logs (geometric-mean ratio), unpaired",
    "fieller_ratio_of_means": "Fieller interval for the ratio of means, log-transformed",
    "fisher_z_t": "t interval on per-seed Fisher z = atanh r, back-transformed with tanh",
}


@dataclass(frozen=True)
class Interval:
    """A seed-level estimate: effect, its confidence interval, seeds (per arm) and the spread behind it.

    ``delta`` is the effect on the scale its test is on (Fisher z for a correlation, ``ā − b̄`` for Fieller) and
    ``sd``/``sd_b`` the spreads there (``sd_b`` and ``n_b`` only for unpaired arms): what :func:`seeds_needed`
    reads. ``p_value`` is the two-sided p of "no effect"; it is below ``1 − level`` exactly when the interval
    excludes the null.
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    sd: float
    method: str = "t"
    paired: bool = True
    p_value: float = float("nan")
    delta: float = float("nan")
    n_b: int = 0
    sd_b: float = float("nan")

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return asdict(self)


def _t_quantile(n: int, level: float) -> float:
    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


# ---------------------------------------------------------------- vectorised kernels: (..., n) arrays


def _one_sample(x: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, ...]:
    """Mean, t interval, sd and two-sided p (vs 0) along the last axis (scipy's ``ttest_1samp``)."""
    from scipy.stats import ttest_1samp

    x = np.asarray(x, dtype=float)
    res = ttest_1samp(x, 0.0, axis=-1)
    ci = res.confidence_interval(level)
    return x.mean(axis=-1), ci.low, ci.high, x.std(axis=-1, ddof=1), res.pvalue


def _welch(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, ...]:
    """``mean a − mean b``, Welch's interval and two-sided p along the last axis (``ttest_ind(equal_var=False)``)."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    res = ttest_ind(a, b, equal_var=False, axis=-1)
    ci = res.confidence_interval(level)
    return a.mean(axis=-1) - b.mean(axis=-1), ci.low, ci.high, res.pvalue


def _fieller(a: np.ndarray, b: np.ndarray, paired: bool, level: float = LEVEL) -> tuple[np.ndarray, ...]:
    """Ratio of means ``ā/b̄``, Fieller's interval and the two-sided p of ``ratio = 1``, along the last axis.

    The interval is the set of ``ρ`` with ``(ā − ρb̄)² ≤ t² Var(ā − ρb̄)``: a quadratic in ``ρ``. When ``b̄`` is not
    itself distinguishable from 0 (leading coefficient ≤ 0) the set is unbounded and both bounds are ``∓inf``.
    Paired arms use the covariance and ``n − 1`` df; unpaired ones Welch's df of ``a − ρ̂b`` at the estimate.
    """
    from scipy.stats import t as student

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = a.shape[-1], b.shape[-1]
    ma, mb = a.mean(axis=-1), b.mean(axis=-1)
    vaa, vbb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ma / mb
        if paired:
            if na != nb:
                raise ValueError(f"paired Fieller needs as many values on both sides, got {na} and {nb}")
            vab = ((a - ma[..., None]) * (b - mb[..., None])).sum(axis=-1) / (na - 1) / na
            df = np.full(np.shape(ma), na - 1.0)
        else:
            vab = np.zeros(np.shape(ma))
            rb = ratio**2 * vbb
            df = (vaa + rb) ** 2 / (vaa**2 / (na - 1) + rb**2 / (nb - 1))
        tq = student.ppf(0.5 + level / 2, df)
        qa = mb**2 - tq**2 * vbb
        qb = ma * mb - tq**2 * vab
        qc = ma**2 - tq**2 * vaa
        root = np.sqrt(np.maximum(qb**2 - qa * qc, 0.0))
        bounded = qa > 0
        lo = np.where(bounded, (qb - root) / qa, -np.inf)
        hi = np.where(bounded, (qb + root) / qa, np.inf)
        stat = (ma - mb) / np.sqrt(vaa - 2 * vab + vbb)
        p = 2 * student.sf(np.abs(stat), df)
    return ratio, lo, hi, p


def _log(x: np.ndarray | float) -> np.ndarray:
    """``log`` with values ≤ 0 mapped to ``−inf`` (a ratio bound at or below 0 leaves the log unbounded below)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)


# ---------------------------------------------------------------- per-claim estimates


def mean_ci(values: Sequence[float], level: float = LEVEL, method: str = "t", seed: int = 0) -> Interval:
    """Mean over seeds and its ``level`` confidence interval (``t`` or ``bootstrap``); NaN bounds below 2 seeds."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, float("nan"), method=method)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, float("nan"), method=method, delta=mean)
    if method == "t":
        if np.ptp(x) <= 1e-12 * max(abs(mean), 1e-300):  # no spread (scipy would say NaN): the interval is the point
            return Interval(mean, mean, mean, n, 0.0, method="t", p_value=float(mean == 0), delta=mean)
        m, lo, hi, sd, p = (float(v) for v in _one_sample(x, level))
        return Interval(m, lo, hi, n, sd, method="t", p_value=p, delta=m)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = rng.choice(x, size=(10_000, n), replace=True).mean(axis=1)
        lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
        return Interval(mean, float(lo), float(hi), n, float(x.std(ddof=1)), method="bootstrap", delta=mean)
    raise ValueError(f"unknown interval method {method!r}; expected 't' or 'bootstrap'")


def _relabel(est: Interval, method: str, paired: bool) -> Interval:
    return Interval(**{**est.as_dict(), "method": method, "paired": paired})


def paired_effect(
    a: dict[object, float], b: dict[object, float], kind: str = "difference", level: float = LEVEL, method: str = "t"
) -> Interval:
    """Paired effect of ``a`` over ``b`` across the pairing keys (seeds) both have.

    ``kind="difference"``: ``a_s − b_s``; ``kind="log_ratio"``: ``log(a_s/b_s)`` (positive quantities; ``exp`` of
    the mean is the geometric-mean ratio). Pair only arms that share what the key stands for (docs/decisions.md).
    """
    keys = sorted(set(a) & set(b), key=str)
    if kind == "difference":
        diffs = [a[k] - b[k] for k in keys]
        name = "t"
    elif kind == "log_ratio":
        diffs = [math.log(a[k] / b[k]) if a[k] > 0 and b[k] > 0 else float("nan") for k in keys]
        name = "paired_t_log_ratio"
    else:
        raise ValueError(f"unknown effect kind {kind!r}; expected 'difference' or 'log_ratio'")
    est = mean_ci(diffs, level, method)
    return _relabel(est, name if method == "t" else method, paired=True)


def welch_effect(a: Sequence[float], b: Sequence[float], kind: str = "log_ratio", level: float = LEVEL) -> Interval:
    """Unpaired effect of arm ``a`` over arm ``b`` (Welch): ``mean log a − mean log b`` or ``mean a − mean b``.

    ``n`` is the smaller arm's seed count, ``n_b`` the other's. For ``log_ratio`` a non-positive value is an error
    (the quantity is not positive, so this is the wrong interval for it: use :func:`fieller_ratio`).
    """
    xa, xb = _finite(a), _finite(b)
    if kind == "log_ratio":
        if (xa <= 0).any() or (xb <= 0).any():
            raise ValueError("welch_effect(kind='log_ratio') needs positive values; use fieller_ratio for a mean ratio")
        xa, xb, name = np.log(xa), np.log(xb), "welch_log_ratio"
    elif kind == "difference":
        name = "welch_t"
    else:
        raise ValueError(f"unknown effect kind {kind!r}; expected 'difference' or 'log_ratio'")
    n, nb = len(xa), len(xb)
    nan = float("nan")
    sd_a = float(xa.std(ddof=1)) if n > 1 else nan
    sd_b = float(xb.std(ddof=1)) if nb > 1 else nan
    if n < 2 or nb < 2:
        d = float(xa.mean() - xb.mean()) if n and nb else nan
        return Interval(d, nan, nan, min(n, nb), sd_a, name, False, nan, d, max(n, nb), sd_b)
    d, lo, hi, p = (float(v) for v in _welch(xa, xb, level))
    if sd_a == 0 and sd_b == 0:
        lo = hi = d
        p = 0.0 if d != 0 else 1.0
    return Interval(d, lo, hi, n, sd_a, name, False, p, d, nb, sd_b)


def fieller_ratio(a, b, paired: bool, level: float = LEVEL) -> Interval:
    """``log(mean a / mean b)`` with the log of Fieller's interval for the ratio of means.

    ``paired``: ``a`` and ``b`` are dicts keyed by seed (only keys on both sides count); otherwise sequences.
    For a quantity whose per-seed estimates can be ≤ 0 although its expectation is positive (a Hutchinson trace):
    a per-seed log ratio would drop those seeds, the ratio of means keeps them.
    """
    if paired:
        keys = [k for k in sorted(set(a) & set(b), key=str) if math.isfinite(a[k]) and math.isfinite(b[k])]
        xa, xb = np.array([a[k] for k in keys], dtype=float), np.array([b[k] for k in keys], dtype=float)
    else:
        xa, xb = _finite(a), _finite(b)
    n, nb = len(xa), len(xb)
    nan = float("nan")
    name = "fieller_ratio_of_means"
    if n < 2 or nb < 2:
        r = float(xa.mean() / xb.mean()) if n and nb and xb.mean() != 0 else nan
        return Interval(float(_log(r)) if math.isfinite(r) else nan, nan, nan, min(n, nb), nan, name, paired)
    ratio, lo, hi, p = (float(v) for v in _fieller(xa, xb, paired, level))
    sd_a = float(xa.std(ddof=1))
    if paired:  # the power of the paired test of a − b: one sample of differences
        sd, sd_b, n_b = float((xa - xb).std(ddof=1)), nan, 0
    else:
        sd, sd_b, n_b = sd_a, float(xb.std(ddof=1)), nb
    mean = float(_log(ratio)) if ratio > 0 else nan
    return Interval(
        mean, float(_log(lo)), float(_log(hi)), min(n, nb), sd, name, paired, p, float(xa.mean() - xb.mean()), n_b, sd_b
    )


def correlation_ci(r_values: Sequence[float], level: float = LEVEL) -> Interval:
    """Per-seed correlations summarised on Fisher's z: ``tanh`` of the mean z and of its t interval (in [−1, 1])."""
    r = _finite(r_values)
    z = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    est = mean_ci(z, level)
    back = (float(np.tanh(v)) if math.isfinite(v) else float("nan") for v in (est.mean, est.ci_low, est.ci_high))
    mean, lo, hi = back
    return Interval(mean, lo, hi, est.n, est.sd, "fisher_z_t", True, est.p_value, est.mean)


# ---------------------------------------------------------------- verdicts and families


def verdict(estimate: Interval, claim: str, margin: float = 0.0) -> str:
    """``supported`` / ``contradicted`` / ``not resolved`` for a claim about the effect's sign or size.

    ``claim``: ``"negative"`` (effect < 0: a is lower than b), ``"positive"`` (effect > 0), or ``"equivalent"``
    (|effect| < ``margin``). An infinite bound (Fieller, unbounded ratio) is a bound like any other.
    """
    lo, hi = estimate.ci_low, estimate.ci_high
    if estimate.n < 2 or math.isnan(lo) or math.isnan(hi):
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


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values along the last axis (NaN stays NaN and does not count in the family).

    ``p_(i)`` sorted ascending is multiplied by ``m − i`` (``i`` from 0), made monotone by a running maximum and
    capped at 1; rejecting where the adjusted p is below α keeps the family-wise error rate ≤ α under any
    dependence. scipy has no Holm (only Benjamini–Hochberg), so it is here; tests/test_stats.py checks it by hand.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim == 0:
        raise ValueError("holm needs a family of p-values (an array with a last axis)")
    rows = p.reshape(-1, p.shape[-1])
    out = np.full(rows.shape, np.nan)
    for row, dest in zip(rows, out, strict=True):
        ok = np.flatnonzero(~np.isnan(row))
        order = ok[np.argsort(row[ok], kind="stable")]
        m = len(order)
        dest[order] = np.minimum(1.0, np.maximum.accumulate(row[order] * (m - np.arange(m))))
    return out.reshape(p.shape)


def holm_verdict(effect: float, p_adjusted: float, claim: str, alpha: float = 1 - LEVEL) -> str:
    """The verdict of one claim of a Holm family: its sign decides once its adjusted p is below ``alpha``."""
    if not math.isfinite(p_adjusted) or not math.isfinite(effect) or p_adjusted >= alpha:
        return "not resolved"
    if claim not in ("negative", "positive"):
        raise ValueError(f"a Holm verdict needs a directional claim, got {claim!r}")
    agrees = effect < 0 if claim == "negative" else effect > 0
    return "supported" if agrees else "contradicted"


# ---------------------------------------------------------------- power and seed counts


def power(n: np.ndarray | int, delta: float, sd: float, sd_b: float | None = None, level: float = LEVEL) -> np.ndarray:
    """Power of the two-sided ``1 − level`` t test at true effect ``delta`` with ``n`` seeds (per arm).

    One sample (paired) when ``sd_b`` is None: ``nc = δ√n/sd``, ``n − 1`` df. Two arms of ``n`` seeds each
    (Welch): ``nc = δ/√((sd² + sd_b²)/n)`` and the Welch–Satterthwaite df. From scipy's non-central t.
    """
    from scipy.special import ndtr
    from scipy.stats import nct
    from scipy.stats import t as student

    n = np.asarray(n, dtype=float)
    if sd_b is None:
        nc, df = abs(delta) * np.sqrt(n) / sd, n - 1
    else:
        s2 = sd**2 + sd_b**2
        nc = abs(delta) / np.sqrt(s2 / n)
        df = s2**2 * (n - 1) / (sd**4 + sd_b**4) if s2 > 0 else n - 1
    tc = student.ppf(0.5 + level / 2, df)
    with np.errstate(all="ignore"):
        exact = nct.sf(tc, df, nc) + nct.cdf(-tc, df, nc)
    # scipy's nct returns NaN far in the tail (large nc, few df): there the normal approximation of the
    # non-central t, P(T' > c) ≈ Φ((nc − c)/√(1 + c²/2df)), is accurate to well below the 80 % that matters
    approx = ndtr((nc - tc) / np.sqrt(1 + tc**2 / (2 * df)))
    return np.where(np.isfinite(exact), exact, approx)


def _needed(delta: float, sd: float, sd_b: float | None, level: float, target: float) -> float:
    if not (math.isfinite(delta) and math.isfinite(sd)) or (sd_b is not None and not math.isfinite(sd_b)):
        return float("nan")
    if delta == 0:
        return float(MAX_SEEDS)
    if sd == 0 and not sd_b:
        return 2.0
    n = np.arange(2, MAX_SEEDS + 1)
    ok = np.flatnonzero(power(n, delta, sd, sd_b, level) >= target)
    return float(n[ok[0]]) if len(ok) else float(MAX_SEEDS)


def seeds_needed(estimate: Interval, level: float = LEVEL, target: float = POWER) -> float:
    """Seeds (per arm) for ``target`` power (80 %) of the two-sided test at the observed effect and spread.

    Paired and one-sample estimates use the one-sample non-central t, unpaired ones Welch's with equal arms. NaN
    when the spread is unknown (fewer than 2 seeds); ``MAX_SEEDS`` stands for "1000 or more" (also a zero effect).
    """
    sd_b = None if estimate.paired else estimate.sd_b
    return _needed(estimate.delta, estimate.sd, sd_b, level, target)


def seeds_needed_range(estimate: Interval, level: float = LEVEL, target: float = POWER) -> tuple[float, float]:
    """:func:`seeds_needed` at the ends of the spread's 95 % interval (χ² with the seeds' df): the n is only as sure
    as the sd behind it. Both spreads of an unpaired estimate are scaled together."""
    from scipy.stats import chi2

    df = estimate.n - 1 + (max(estimate.n_b - 1, 0) if not estimate.paired else 0)
    if df < 1:
        return float("nan"), float("nan")
    factors = (math.sqrt(df / chi2.ppf(0.975, df)), math.sqrt(df / chi2.ppf(0.025, df)))
    sd_b = None if estimate.paired else estimate.sd_b
    return tuple(
        _needed(estimate.delta, estimate.sd * f, None if sd_b is None else sd_b * f, level, target) for f in factors
    )


def ci_columns(grouped_values, name: str, level: float = LEVEL):
    """``{name}_mean``, ``{name}_ci_low``, ``{name}_ci_high`` per group of a pandas ``SeriesGroupBy`` of seed values:
    what summary tables report instead of mean ± sd."""
    import pandas as pd

    def row(values) -> pd.Series:
        est = mean_ci(list(values), level)
        return pd.Series({f"{name}_mean": est.mean, f"{name}_ci_low": est.ci_low, f"{name}_ci_high": est.ci_high})

    return grouped_values.apply(row).unstack()
