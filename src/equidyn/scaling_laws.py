"""Saturating power laws L(x) = L∞ + A·x^−α fitted to seed-level losses, with bootstrap intervals over seeds.

Why these choices (docs/decisions.md, "The scaling study"):

* **The form** is the one the scaling literature fits per axis (model size N, data size D; Ngo & Ravanbakhsh
  2025, Brehmer et al. 2024): an irreducible loss L∞ ≥ 0 plus a power-law excess. A pure power law (L∞ = 0, a
  straight line in log-log) is the special case at the bound, and it is also fitted, as the *local slope* over the
  measured range, which the data can always constrain.
* **Residuals on the log scale.** The losses span an order of magnitude and their seed spread is multiplicative
  (the claims compare test RMSEs as log ratios for the same reason), so the fit minimises
  Σ (log y − log L(x))² with ``scipy.optimize.least_squares`` under bounds L∞ ≥ 0, A ≥ 0, 0 ≤ α ≤ ``ALPHA_MAX``,
  from several starts. x is divided by its geometric mean so that A is the excess loss at the middle of the range
  and the problem is well conditioned.
* **Uncertainty over seeds.** The unit of replication is the training seed. ``scipy.stats.bootstrap`` resamples
  the seeds *within each x* independently (the runs at different sizes share nothing but their seed number) and
  refits; the percentile interval of each parameter is reported. With 3 seeds per point a bootstrap interval is
  somewhat too narrow (the resampled spread is (n−1)/n of the sample's); that is stated beside the table.
* **Fits the data cannot constrain are reported as such.** With 4 sizes the three-parameter form has one degree
  of freedom. A fit is *constrained* only if the point fit is inside the bounds and at most
  ``UNCONSTRAINED_SHARE`` of the bootstrap refits end at the bound of α (0 or ``ALPHA_MAX``: a curve that is flat,
  or that drops arbitrarily fast to its floor, is not a measured exponent). Otherwise the row says so and only the
  local slope is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: the largest exponent a fit may take: beyond it, a curve over ≥ 1.3 decades is a step, not a power law
ALPHA_MAX = 4.0
#: a fit whose bootstrap refits put α at a bound more often than this is "not constrained"
UNCONSTRAINED_SHARE = 0.10
LEVEL = 0.95
N_RESAMPLES = 999


def saturating_power_law(x: np.ndarray | float, l_inf: float, a: float, alpha: float, x_ref: float = 1.0):
    """L∞ + A·(x / x_ref)^−α."""
    return l_inf + a * (np.asarray(x, dtype=float) / x_ref) ** (-alpha)


@dataclass(frozen=True)
class PowerLawFit:
    """One fit: ``L(x) = l_inf + a·(x/x_ref)^−alpha`` and the pure power law ``b·(x/x_ref)^−slope``."""

    l_inf: float
    a: float
    alpha: float
    x_ref: float
    #: the pure power law's exponent (the local log-log slope over the measured range, negated)
    slope: float
    #: its prefactor at ``x_ref``
    b: float
    #: whether the saturating fit stopped inside its bounds on α
    interior: bool

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        return saturating_power_law(x, self.l_inf, self.a, self.alpha, self.x_ref)

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def _clean(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("a power-law fit needs positive x and y (sizes and losses)")
    if len(np.unique(xs)) < 3:
        raise ValueError(f"a saturating power law needs >= 3 distinct x values, got {len(np.unique(xs))}")
    return xs, ys


def fit_power_law(
    x: Sequence[float], y: Sequence[float], x_ref: float | None = None, start: PowerLawFit | None = None
) -> PowerLawFit:
    """Least-squares fit of log y by log(L∞ + A·(x/x_ref)^−α) (bounded, multi-start) and of the log-log line.

    ``start``: a previous fit to start from as well (a bootstrap refit starts from the point fit, plus two generic
    starts, instead of the twelve a first fit tries)."""
    from scipy.optimize import least_squares

    xs, ys = _clean(x, y)
    ref = float(np.exp(np.log(xs).mean())) if x_ref is None else float(x_ref)
    u, logy = xs / ref, np.log(ys)
    slope, intercept = np.polyfit(np.log(u), logy, 1)

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.log(p[0] + p[1] * u ** (-p[2]) + 1e-300) - logy

    y_min = float(ys.min())
    typical = float(np.exp(logy.mean()))

    def excess(floor: float) -> float:
        return max(typical - floor, 1e-12 * y_min)

    starts = [(f, excess(f), a) for a in (0.25, 0.5, 1.0, 2.0) for f in (0.0, 0.5 * y_min, 0.9 * y_min)]
    if start is not None:
        starts = [(start.l_inf, max(start.a, 1e-12 * y_min), start.alpha), (0.0, typical, 0.5)]
        starts.append((0.5 * y_min, excess(0.5 * y_min), 1.0))
    best = None
    for floor, a0, alpha0 in starts:
        fit = least_squares(
            residuals,
            x0=[floor, a0, alpha0],
            bounds=([0.0, 0.0, 0.0], [np.inf, np.inf, ALPHA_MAX]),
            method="trf",
            x_scale=[y_min, y_min, 1.0],
        )
        if best is None or fit.cost < best.cost - 1e-15:
            best = fit
    assert best is not None
    l_inf, a, alpha = (float(v) for v in best.x)
    interior = 1e-3 < alpha < ALPHA_MAX - 1e-3 and a > 0
    return PowerLawFit(l_inf, a, alpha, ref, float(-slope), float(np.exp(intercept)), bool(interior))


@dataclass(frozen=True)
class FitWithIntervals:
    """A fit and the bootstrap intervals of its parameters over seeds."""

    fit: PowerLawFit
    n_points: int
    n_x: int
    alpha_ci: tuple[float, float]
    l_inf_ci: tuple[float, float]
    slope_ci: tuple[float, float]
    #: share of bootstrap refits whose α ended at a bound (0 or ALPHA_MAX)
    at_bound_share: float
    constrained: bool
    why_not: str
    #: the bootstrap refits' parameters (rows: l_inf, a, alpha, slope, b), for bands and crossovers
    draws: np.ndarray

    def row(self) -> dict[str, float | int | bool | str]:
        f = self.fit
        return {
            "n_points": self.n_points,
            "n_x": self.n_x,
            "x_ref": f.x_ref,
            # "exponent", not "alpha": in every equidyn table ``alpha`` is a model's relaxation weight
            "exponent": f.alpha,
            "exponent_ci_low": self.alpha_ci[0],
            "exponent_ci_high": self.alpha_ci[1],
            "l_inf": f.l_inf,
            "l_inf_ci_low": self.l_inf_ci[0],
            "l_inf_ci_high": self.l_inf_ci[1],
            "a": f.a,
            "constrained": self.constrained,
            "why_not_constrained": self.why_not,
            "exponent_at_bound_share": self.at_bound_share,
            "slope": f.slope,
            "slope_ci_low": self.slope_ci[0],
            "slope_ci_high": self.slope_ci[1],
        }

    def band(self, x: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the saturating curve over the bootstrap refits."""
        curves = np.stack([saturating_power_law(x, d[0], d[1], d[2], self.fit.x_ref) for d in self.draws.T])
        tail = 100 * (1 - level) / 2
        return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)


def fit_with_bootstrap(
    x: Sequence[float],
    y: Sequence[float],
    *,
    groups: Sequence[float] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> FitWithIntervals:
    """:func:`fit_power_law` and percentile intervals from resampling the seeds within each design point.

    ``groups`` names each run's design point (default: its x). The compute axis needs it: runs of one size
    differ slightly in compute (an early-stopped seed saw fewer samples), so the seeds of a size are resampled
    together, each keeping its own (x, y). Uses ``scipy.stats.bootstrap`` (one sample per design point, resampled
    independently, ``paired=False``)."""
    from scipy.stats import bootstrap

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    gs = xs if groups is None else np.asarray(groups, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys, gs = xs[keep], ys[keep], gs[keep]
    point = fit_power_law(xs, ys)
    design = np.unique(gs)
    samples = tuple(np.nonzero(gs == g)[0].astype(float) for g in design)
    n_x, n_points = len(design), len(ys)
    if min(len(s) for s in samples) < 2:
        nan2 = (float("nan"), float("nan"))
        return FitWithIntervals(
            point,
            n_points,
            n_x,
            nan2,
            nan2,
            nan2,
            float("nan"),
            False,
            "fewer than 2 seeds at some x: no interval",
            np.empty((5, 0)),
        )

    def statistic(*resampled: np.ndarray) -> np.ndarray:
        idx = np.concatenate(resampled).astype(int)
        f = fit_power_law(xs[idx], ys[idx], x_ref=point.x_ref, start=point)
        return np.array([f.l_inf, f.a, f.alpha, f.slope, f.b])

    result = bootstrap(
        samples,
        statistic,
        n_resamples=n_resamples,
        vectorized=False,
        paired=False,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    draws = np.asarray(result.bootstrap_distribution)
    lo, hi = np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)
    alphas = draws[2]
    at_bound = float(np.mean((alphas <= 1e-3) | (alphas >= ALPHA_MAX - 1e-3)))
    reasons = []
    if not point.interior:
        reasons.append(f"the fit's alpha is at a bound ({point.alpha:.3g})")
    if at_bound > UNCONSTRAINED_SHARE:
        reasons.append(f"{at_bound:.0%} of bootstrap refits put alpha at a bound")
    if n_x < 4:
        reasons.append(f"{n_x} x values for 3 parameters")
    return FitWithIntervals(
        fit=point,
        n_points=n_points,
        n_x=n_x,
        alpha_ci=(float(lo[2]), float(hi[2])),
        l_inf_ci=(float(lo[0]), float(hi[0])),
        slope_ci=(float(lo[3]), float(hi[3])),
        at_bound_share=at_bound,
        constrained=not reasons,
        why_not="; ".join(reasons),
        draws=draws,
    )


def _crossings(curve_a: np.ndarray, curve_b: np.ndarray, grid: np.ndarray) -> float:
    """The first x in ``grid`` where the sign of ``a − b`` changes (log-interpolated), or NaN."""
    d = np.log(curve_a) - np.log(curve_b)
    change = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
    if not len(change):
        return float("nan")
    i = int(change[0])
    t = d[i] / (d[i] - d[i + 1])
    return float(np.exp(np.log(grid[i]) + t * (np.log(grid[i + 1]) - np.log(grid[i]))))


@dataclass(frozen=True)
class Crossover:
    """Where two arms' fitted curves cross inside the measured range, with its bootstrap interval."""

    x_low: float
    x_high: float
    point: float  # NaN: the point fits do not cross inside [x_low, x_high]
    share_crossing: float  # share of bootstrap pairs whose curves cross inside the range
    ci_low: float
    ci_high: float

    @property
    def verdict(self) -> str:
        if np.isfinite(self.point) and self.share_crossing >= LEVEL:
            return "cross"
        if not np.isfinite(self.point) and self.share_crossing <= 1 - LEVEL:
            return "no crossover in range"
        return "not resolved"

    def row(self) -> dict[str, float | str]:
        return {**asdict(self), "verdict": self.verdict}


def crossover(a: FitWithIntervals, b: FitWithIntervals, x_low: float, x_high: float, level: float = LEVEL) -> Crossover:
    """Crossing of two fitted curves on ``[x_low, x_high]`` (a log grid of 400 points); the interval is the
    percentile interval of the crossing among the bootstrap pairs that cross, and ``share_crossing`` says how
    many do. The two arms' refits are paired by draw index only (the arms are independent, so any pairing is a
    valid joint draw)."""
    grid = np.geomspace(x_low, x_high, 400)
    point = _crossings(a.fit.predict(grid), b.fit.predict(grid), grid)
    n = min(a.draws.shape[1], b.draws.shape[1])
    ref_a, ref_b = a.fit.x_ref, b.fit.x_ref
    found = np.array(
        [
            _crossings(
                saturating_power_law(grid, *a.draws[:3, i], x_ref=ref_a),
                saturating_power_law(grid, *b.draws[:3, i], x_ref=ref_b),
                grid,
            )
            for i in range(n)
        ]
    )
    crossing = found[np.isfinite(found)]
    share = float(len(crossing) / n) if n else float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(crossing, [tail, 100 - tail]) if len(crossing) else (np.nan, np.nan)
    return Crossover(float(x_low), float(x_high), point, share, float(lo), float(hi))
