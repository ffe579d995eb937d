"""The scaling study's answers: fitted exponents with intervals, the gap between arms at each point, its trend
with scale, and where two arms' curves cross.

Reads ``tables/scaling.csv`` (:mod:`equidyn.studies.scaling`) and writes

* ``tables/scaling_fits.csv`` — per arm, level and axis (``params``: test RMSE against parameters over the size
  sweep; ``data``: against training windows over the data sweep; ``compute``: against forward FLOPs × samples seen
  over the size sweep), the fit L∞ + A·x^−α with bootstrap 95 % intervals over seeds, whether the data constrain
  it, and the local log-log slope (:mod:`equidyn.scaling_laws`);
* ``tables/scaling_gaps.csv`` — for every pair of arms at each level:

  - ``gap``: at each point of a sweep, the log ratio of their test RMSEs with a Welch interval (the arms share
    only the seed number, :func:`equidyn.stats.welch_effect`), and its verdict;
  - ``trend``: the slope of that log ratio per decade of the sweep's x, with a Welch–Satterthwaite t interval: the
    direct answer to "does the benefit shrink, stay or grow with scale" at this range;
  - ``crossover``: where the two fitted curves cross inside the measured range, with its interval
    (:func:`equidyn.scaling_laws.crossover`), or that they do not.

  - ``trend_difference``: a pair's trend at a broken level minus its trend at level 0 (exact symmetry), with a
    Welch–Satterthwaite interval: whether breaking the symmetry changes how the gap moves with scale.

  ``gap``, ``trend`` and ``trend_difference`` rows also carry ``p_holm`` and ``verdict_holm``: Holm-adjusted over
  the family of every pair of arms asked the same question (same level, axis and kind, and for a gap the same
  design point; six pairs for four arms). A reader scanning six pairs at each of several sizes would otherwise find
  a "resolved" gap by chance; the per-comparison interval stays beside it, so both readings are in the table.

Every row carries the lineage of the runs it uses (``;``-joined where they differ).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from ..atomic import write_csv
from ..lineage import LINEAGE_COLUMNS

#: axis -> (sweep whose runs it uses, x column, design-point column)
AXES = {
    "params": ("sizes", "params", "size"),
    "data": ("data", "train_windows", "fraction"),
    "compute": ("sizes", "compute_flops", "size"),
}
N_RESAMPLES = 999
GAP_COLUMNS = [
    "level",
    "arm",
    "reference",
    "axis",
    "kind",
    "x",
    "effect",
    "ci_low",
    "ci_high",
    "verdict",
    "p_holm",
    "verdict_holm",
    *LINEAGE_COLUMNS,
]
LEVEL = 0.95


def arm_name(model: str, alpha: float) -> str:
    return f"{model} α={alpha:g}" if alpha else str(model)


def _both(a, b):
    import pandas as pd

    return pd.concat([a, b])


def _lineage(df) -> dict[str, str]:
    return {k: ";".join(sorted(set(map(str, df[k])))) for k in LINEAGE_COLUMNS if k in df}


def _sweep(df, sweep: str):
    return df[df.sweeps.str.split().apply(lambda s: sweep in s)]


def fit_rows(df, n_resamples: int = N_RESAMPLES) -> tuple[list[dict[str, Any]], dict]:
    """The fits of every (level, arm, axis), and the fitted objects (for the crossovers and the figures)."""
    from ..scaling_laws import fit_with_bootstrap

    rows, fits = [], {}
    for (level, model, alpha), arm in df.groupby(["level", "model", "alpha"], sort=True):
        for axis, (sweep, x, design) in AXES.items():
            sub = _sweep(arm, sweep)
            base = {"level": level, "model": model, "alpha": alpha, "arm": arm_name(model, alpha), "axis": axis}
            if sub[design].nunique() < 3:
                reason = f"{sub[design].nunique()} point(s): fewer than 3"
                rows.append({**base, "constrained": False, "why_not_constrained": reason, **_lineage(arm)})
                continue
            fit = fit_with_bootstrap(sub[x], sub.test_rmse, groups=sub[design], n_resamples=n_resamples)
            fits[(level, model, alpha, axis)] = fit
            rows.append(
                {
                    **base,
                    "x_column": x,
                    "x_min": float(sub[x].min()),
                    "x_max": float(sub[x].max()),
                    "decades": float(np.log10(sub[x].max() / sub[x].min())),
                    "n_seeds_min": int(sub.groupby(design).seed.nunique().min()),
                    "n_not_flattened": int((~sub.flattened.astype(bool)).sum()),
                    **fit.row(),
                    **_lineage(sub),
                }
            )
    return rows, fits


#: kind of tested row -> (its verdict when the effect is below 0, when above 0); crossovers have their own verdicts
DIRECTIONS = {
    "gap": ("arm lower", "arm higher"),
    "trend": ("log ratio falls with scale", "log ratio rises with scale"),
    "trend_difference": ("trend lower at this level", "trend higher at this level"),
}


def _verdict(low: float, high: float, kind: str) -> str:
    lower, higher = DIRECTIONS[kind]
    if high < 0:
        return lower
    if low > 0:
        return higher
    return "not resolved"


def _t_interval(estimate: float, var: float, df: float) -> tuple[float, float, float]:
    """The 95 % t interval and two-sided p of an estimate with variance ``var`` on ``df`` degrees of freedom (NaN
    where either is not a positive finite number)."""
    from scipy import stats

    if not (np.isfinite(var) and var > 0 and np.isfinite(df)):
        return float("nan"), float("nan"), float("nan")
    se = np.sqrt(var)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, df) * se)
    return estimate - half, estimate + half, float(2 * stats.t.sf(abs(estimate) / se, df))


def gap_rows(df, fits: dict) -> list[dict[str, Any]]:
    """Per level and pair of arms: the gap at each point, its trend per decade and the crossover of the fits."""
    from ..scaling_laws import crossover
    from ..stats import welch_effect

    rows = []
    arms = sorted({(m, a) for m, a in zip(df.model, df.alpha, strict=True)})
    for level, at_level in df.groupby("level", sort=True):
        for (ma, aa), (mb, ab) in itertools.combinations(arms, 2):
            pair = {"level": level, "arm": arm_name(ma, aa), "reference": arm_name(mb, ab)}
            for axis, (sweep, x, design) in AXES.items():
                sub = _sweep(at_level, sweep)
                a = sub[(sub.model == ma) & (sub.alpha == aa)]
                b = sub[(sub.model == mb) & (sub.alpha == ab)]
                if a.empty or b.empty:
                    continue
                points = sorted(set(a[design]) & set(b[design]))
                if axis != "compute":  # the compute axis has no common design points: its gap is the params one
                    for p in points:
                        ya, yb = a[a[design] == p].test_rmse, b[b[design] == p].test_rmse
                        est = welch_effect(ya, yb, kind="log_ratio")
                        rows.append(
                            {
                                **pair,
                                "axis": axis,
                                "kind": "gap",
                                design: p,
                                "x": float(a[a[design] == p][x].mean()),
                                "effect": est.mean,
                                "ci_low": est.ci_low,
                                "ci_high": est.ci_high,
                                "ratio": float(np.exp(est.mean)),
                                "n": est.n,
                                "n_ref": est.n_b,
                                "ci_method": est.method,
                                "p_value": est.p_value,
                                "verdict": _verdict(est.ci_low, est.ci_high, "gap"),
                                **_lineage(sub[sub[design].isin([p])]),
                            }
                        )
                    if len(points) >= 3:
                        rows.append({**pair, **_trend(a, b, design, x, points, axis)})
                fa, fb = fits.get((level, ma, aa, axis)), fits.get((level, mb, ab, axis))
                if fa is not None and fb is not None and fa.draws.size and fb.draws.size:
                    low, high = max(a[x].min(), b[x].min()), min(a[x].max(), b[x].max())
                    if low < high:
                        c = crossover(fa, fb, low, high)
                        rows.append(
                            {
                                **pair,
                                "axis": axis,
                                "kind": "crossover",
                                "x": c.point,
                                "ci_low": c.ci_low,
                                "ci_high": c.ci_high,
                                "x_low": c.x_low,
                                "x_high": c.x_high,
                                "share_crossing": c.share_crossing,
                                "fits_constrained": bool(fa.constrained and fb.constrained),
                                "verdict": c.verdict,
                                **_lineage(_both(a, b)),
                            }
                        )
    return rows


def _trend(a, b, design: str, x: str, points: list, axis: str) -> dict[str, Any]:
    """Slope of the gap log(L_arm / L_ref) per decade of x over the sweep's points, with a t interval.

    The slope is a linear contrast of the per-point gaps, Σ w_i·d_i with w_i = (u_i − ū) / Σ(u − ū)² (u: log10 x),
    and each gap d_i = mean log a_i − mean log b_i is a Welch difference; so its variance is Σ w_i²·(s²_a,i/n_a,i +
    s²_b,i/n_b,i) and its degrees of freedom are Welch–Satterthwaite's. (A percentile bootstrap over 3 seeds per
    cell was measured too narrow: on a known constant gap it excluded 0.) Negative: the arm's error falls relative
    to the reference's as x grows."""
    u = np.log10([float(a[a[design] == p][x].mean()) for p in points])
    w = (u - u.mean()) / ((u - u.mean()) ** 2).sum()
    la = [np.log(a[a[design] == p].test_rmse.to_numpy()) for p in points]
    lb = [np.log(b[b[design] == p].test_rmse.to_numpy()) for p in points]
    gaps = np.array([x_a.mean() - x_b.mean() for x_a, x_b in zip(la, lb, strict=True)])
    slope = float((w * gaps).sum())
    parts = np.array(
        [[v.var(ddof=1) / len(v) if len(v) > 1 else np.nan for v in cell] for cell in zip(la, lb, strict=True)]
    )
    dfs = np.array([[len(v) - 1 for v in cell] for cell in zip(la, lb, strict=True)], dtype=float)
    var = float((w[:, None] ** 2 * parts).sum())
    df = var**2 / float(((w[:, None] ** 4) * parts**2 / np.where(dfs > 0, dfs, np.nan)).sum()) if var > 0 else np.nan
    low, high, p_value = _t_interval(slope, var, df)
    return {
        "axis": axis,
        "kind": "trend",
        "effect": slope,
        "ci_low": low,
        "ci_high": high,
        "se": float(np.sqrt(var)) if np.isfinite(var) else float("nan"),
        "dof": float(df),
        "mean_gap": float(gaps.mean()),
        "n": int(min(len(v) for v in la)),
        "n_ref": int(min(len(v) for v in lb)),
        "ci_method": "welch_satterthwaite_t_slope_per_decade",
        "p_value": p_value,
        "verdict": _verdict(low, high, "trend"),
        **_lineage(_both(a, b)),
    }


def add_holm(gaps):
    """``p_holm`` and ``verdict_holm`` on the ``gap`` and ``trend`` rows, Holm over the pairs of arms that answer the
    same question (level, axis, kind and design point). A verdict names the direction only where the adjusted p is
    below 1 − LEVEL; the other rows (crossovers) have no p-value and keep NaN and an empty verdict."""
    import pandas as pd

    from ..stats import holm

    gaps = gaps.copy()
    gaps["p_holm"] = np.nan
    gaps["verdict_holm"] = ""
    if gaps.empty or "p_value" not in gaps:
        return gaps
    tested = gaps[gaps.kind.isin(list(DIRECTIONS))]
    keys = ["level", "axis", "kind"] + [c for c in ("size", "fraction") if c in gaps]
    for _, family in tested.groupby(keys, dropna=False):  # a trend row has no design point: NaN is its own key
        gaps.loc[family.index, "p_holm"] = holm(family.p_value.to_numpy(dtype=float))
    for i, row in gaps.loc[tested.index].iterrows():
        lower, higher = DIRECTIONS[row.kind]
        ok = pd.notna(row.p_holm) and row.p_holm < 1 - LEVEL
        gaps.at[i, "verdict_holm"] = (lower if row.effect < 0 else higher) if ok else "not resolved"
    return gaps


def trend_difference_rows(gaps) -> list[dict[str, Any]]:
    """Does breaking the symmetry change how a gap moves with scale? For each pair of arms and axis, the trend at
    every other level minus the trend at the reference level (the lowest, level 0: exact symmetry).

    The two trends come from independent runs (different data stores), so the difference's variance is the sum of
    theirs, with Welch–Satterthwaite degrees of freedom. Positive: at the broken level the arm's error rises faster
    relative to the reference's than at exact symmetry. Without this row, "the gain is larger at level 9" would be an
    ordering of two intervals, not an effect with its own interval."""
    if gaps.empty or "kind" not in gaps:
        return []
    trend = gaps[gaps.kind == "trend"]
    if trend.empty:
        return []
    base_level = trend.level.min()
    base = trend[trend.level == base_level].set_index(["arm", "reference", "axis"])
    rows = []
    for _, r in trend[trend.level != base_level].iterrows():
        key = (r.arm, r.reference, r.axis)
        if key not in base.index:
            continue
        b = base.loc[key]
        diff = float(r.effect - b.effect)
        var = float(r.se**2 + b.se**2)
        dof = var**2 / (r.se**4 / r.dof + b.se**4 / b.dof) if var > 0 else float("nan")
        low, high, p_value = _t_interval(diff, var, dof)
        rows.append(
            {
                "level": r.level,
                "reference_level": base_level,
                "arm": r.arm,
                "reference": r.reference,
                "axis": r.axis,
                "kind": "trend_difference",
                "effect": diff,
                "ci_low": low,
                "ci_high": high,
                "se": float(np.sqrt(var)),
                "dof": dof,
                "n": int(min(r.n, b.n)),
                "n_ref": int(min(r.n_ref, b.n_ref)),
                "ci_method": "welch_satterthwaite_t_difference_of_trends",
                "p_value": p_value,
                "verdict": _verdict(low, high, "trend_difference"),
                **{c: ";".join(sorted({*str(r[c]).split(";"), *str(b[c]).split(";")})) for c in LINEAGE_COLUMNS},
            }
        )
    return rows


def _lineage_last(df):
    return df[[c for c in df.columns if c not in LINEAGE_COLUMNS] + [c for c in LINEAGE_COLUMNS if c in df]]


def curve_rows(df, fits: dict, points: int = 60) -> list[dict[str, Any]]:
    """Each fit's curve and pointwise 95 % band on a log grid over its measured range (what the figures draw)."""
    rows = []
    for (level, model, alpha, axis), fit in fits.items():
        sweep, x, _ = AXES[axis]
        sub = _sweep(df[(df.level == level) & (df.model == model) & (df.alpha == alpha)], sweep)
        grid = np.geomspace(sub[x].min(), sub[x].max(), points)
        low, high = fit.band(grid) if fit.draws.size else (grid * np.nan, grid * np.nan)
        for g, y, lo, hi in zip(grid, fit.fit.predict(grid), low, high, strict=True):
            rows.append(
                {
                    "level": level,
                    "model": model,
                    "alpha": alpha,
                    "axis": axis,
                    "x": g,
                    "fit": y,
                    "band_low": lo,
                    "band_high": hi,
                    "constrained": fit.constrained,
                }
            )
    return rows


def analyse(
    scaling_csv: str | os.PathLike,
    fits_out: str | os.PathLike,
    gaps_out: str | os.PathLike,
    curves_out: str | os.PathLike,
    n_resamples: int = N_RESAMPLES,
):
    """``tables/scaling_fits.csv``, ``tables/scaling_gaps.csv`` and the figures' curves
    (``analysis/scaling/curves.csv``) from ``tables/scaling.csv``."""
    import pandas as pd

    df = pd.read_csv(scaling_csv)
    rows, fits = fit_rows(df, n_resamples)
    fit_table = _lineage_last(pd.DataFrame(rows))
    write_csv(fit_table, fits_out)
    # a run with one arm has no pair: the table keeps its header, so a reader (and the page) sees "no rows"
    gaps = pd.DataFrame(gap_rows(df, fits), columns=None if df.model.nunique() > 1 else GAP_COLUMNS)
    differences = trend_difference_rows(gaps)
    if differences:
        gaps = pd.concat([gaps, pd.DataFrame(differences)], ignore_index=True)
    gaps = _lineage_last(add_holm(gaps))
    write_csv(gaps, gaps_out)
    write_csv(pd.DataFrame(curve_rows(df, fits)), curves_out)
    return fit_table, gaps
