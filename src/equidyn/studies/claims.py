"""The claims table: every published claim the run can test, as a paired effect across seeds with a 95 % CI.

This is the product's answer to "does relaxed equivariance train better on symmetric data, and is a flatter loss
landscape the reason?". Each row is one claim of one paper (BLOG, W22, TUT) about one quantity, read from the
tables the studies already wrote:

* **BLOG, smoke level 0** (exactly C4-symmetric data): RSteer's test RMSE (best checkpoint) is lower than
  E2CNN's; RSteer's λ_max, Hessian trace and curvature sharpness are lower than E2CNN's at the epoch-3 and best
  checkpoints (the "flatter minima" claim; the curvature sharpness, not the BLOG's first-order one).
* **BLOG, super-resolution**: RGCNN's test MAE < GCNN's < CNN's; RGCNN's λ_max, trace, curvature < GCNN's.
* **BLOG, levels**: the relaxed model's EE tracks the data EE (per seed, the correlation over levels is positive)
  and a larger α pulls it down (largest α vs α = 0).
* **W22, rotation benchmark**: RGroup and RSteer < E2CNN < ConvNet in RMSE, test-future and test-domain.
* **TUT**: the equivariant model's skill is the same at every rotation (its rotated RMSE within ±5 % of the
  unrotated one: an equivalence claim), while the CNN's degrades.

Every effect is dimensionless, so one forest plot holds them all: a **log ratio** ``log(a_s/b_s)`` for positive
quantities (RMSE, MAE, λ_max, EE), a **relative difference** ``(a_s − b_s)/|mean_s b_s|`` for the signed
curvature sharpness and the Hessian trace (indefinite Hessians can have a negative trace), a **correlation** for
"tracks", a **relative change** for the tutorial. Effects are paired on everything but the compared factor (seed,
and level/checkpoint where they apply) and summarised over seeds by :mod:`equidyn.stats`; a verdict is read from
the interval. A claim whose inputs the run does not have (a study not run, a model not in the grid, one seed) is
left out or reported as "not resolved", never guessed.

Each RSteer α of the grid is its own row (several rows test one claim, so read single "supported" rows with the
multiplicity in mind).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from ..atomic import write_csv
from ..lineage import LINEAGE_COLUMNS
from ..runs import BEST_CHECKPOINT, CHECKPOINTS

log = logging.getLogger(__name__)

COLUMNS = (
    "claim",
    "source",
    "quantity",
    "comparison",
    "checkpoint",
    "effect_kind",
    "claimed",
    "effect",
    "ci_low",
    "ci_high",
    "n_seeds",
    "verdict",
    "seeds_needed",
)
#: the tutorial's equivalence margin: a rotated RMSE within ±5 % of the unrotated one counts as "the same skill"
TUT_MARGIN = 0.05
DYNAMICS_QUANTITIES = {
    "hessian_lambda_max": ("λ_max", "log_ratio"),
    "hessian_trace": ("Hessian trace", "relative_difference"),  # a Hutchinson estimate can be negative
    "sharpness_curvature": ("curvature sharpness", "relative_difference"),
}


def _joined(values: Iterable[Any]) -> str:
    return ";".join(sorted({str(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))}))


def _per_seed_effects(a: dict, b: dict, kind: str) -> list[float]:
    """Per pairing key present on both sides: the dimensionless effect of ``a`` over ``b``."""
    keys = sorted(set(a) & set(b), key=str)
    if kind == "log_ratio":
        return [math.log(a[k] / b[k]) if a[k] > 0 and b[k] > 0 else float("nan") for k in keys]
    if kind == "relative_difference":
        scale = abs(sum(b[k] for k in keys) / len(keys)) if keys else float("nan")
        return [(a[k] - b[k]) / scale if scale > 0 else float("nan") for k in keys]
    if kind == "difference":
        return [a[k] - b[k] for k in keys]
    raise ValueError(f"unknown effect kind {kind!r}")


def _row(
    claim: str,
    source: str,
    quantity: str,
    comparison: str,
    checkpoint: str,
    kind: str,
    claimed: str,
    effects: list[float],
    lineage: dict[str, str],
    margin: float = 0.0,
) -> dict[str, Any]:
    from ..stats import mean_ci, seeds_needed, verdict

    est = mean_ci(effects)
    decided = verdict(est, claimed, margin)
    needed = seeds_needed(est, margin=margin) if decided == "not resolved" else float("nan")
    return {
        "claim": claim,
        "source": source,
        "quantity": quantity,
        "comparison": comparison,
        "checkpoint": checkpoint,
        "effect_kind": kind,
        "claimed": f"|effect| < {margin:g}"
        if claimed == "equivalent"
        else f"effect {'<' if claimed == 'negative' else '>'} 0",
        "effect": est.mean,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "n_seeds": est.n,
        "verdict": decided,
        "seeds_needed": needed,
        **lineage,
    }


def _lineage(*frames) -> dict[str, str]:
    import pandas as pd

    rows = pd.concat([f[[c for c in LINEAGE_COLUMNS if c in f]] for f in frames])
    return {c: _joined(rows[c]) if c in rows else "" for c in LINEAGE_COLUMNS}


def _by_seed(df, value: str) -> dict[int, float]:
    """``{seed: value}`` of rows that differ only by seed (several rows per seed are averaged)."""
    g = df.groupby("seed")[value].mean()
    return {int(s): float(v) for s, v in g.items() if math.isfinite(v)}


def _label(model: str, alpha: float) -> str:
    return f"{model} (α={alpha:g})" if alpha else model


def _compare(
    rows: list[dict],
    df,
    value: str,
    a: tuple[str, float | None],
    b: tuple[str, float | None],
    *,
    claim: str,
    source: str,
    quantity: str,
    checkpoint: str,
    kind: str,
    claimed: str = "negative",
) -> None:
    """Append the row "a < b in ``value``" if both models are in ``df`` (``alpha=None``: the model's only α)."""

    def pick(model: str, alpha: float | None):
        sub = df[df.model == model]
        if alpha is None:
            alphas = sorted(sub.alpha.unique())
            alpha = alphas[0] if alphas else 0.0
        return sub[sub.alpha == alpha], alpha

    sa, alpha_a = pick(*a)
    sb, alpha_b = pick(*b)
    if sa.empty or sb.empty or value not in df:
        return
    effects = _per_seed_effects(_by_seed(sa, value), _by_seed(sb, value), kind)
    comparison = f"{_label(a[0], alpha_a)} vs {_label(b[0], alpha_b)}"
    rows.append(_row(claim, source, quantity, comparison, checkpoint, kind, claimed, effects, _lineage(sa, sb)))


def _relaxed_alphas(df, model: str) -> list[float]:
    return sorted(df[df.model == model].alpha.unique())


def level0_claims(levels, dynamics) -> list[dict]:
    """BLOG on symmetric data (the lowest level, 0): RSteer vs E2CNN in test RMSE and in curvature."""
    rows: list[dict] = []
    if levels is not None and not levels.empty:
        lowest = levels.level.min()
        if lowest != 0:
            log.info("levels: no level 0 in the run; the symmetric-data claims use level %s", lowest)
        best = levels[(levels.level == lowest) & (levels.checkpoint == BEST_CHECKPOINT)]
        for alpha in _relaxed_alphas(best, "rsteer"):
            _compare(
                rows,
                best,
                "test_rmse",
                ("rsteer", alpha),
                ("e2cnn", None),
                claim=f"On symmetric data (level {lowest}) the relaxed model forecasts better than the strict one",
                source="BLOG",
                quantity="test RMSE",
                checkpoint=BEST_CHECKPOINT,
                kind="log_ratio",
            )
    if dynamics is not None and not dynamics.empty:
        lv = dynamics[dynamics.study == "levels"]
        if not lv.empty:
            lowest = lv.level.min()
            for ckpt in CHECKPOINTS:
                sub = lv[(lv.level == lowest) & (lv.checkpoint == ckpt)]
                for alpha in _relaxed_alphas(sub, "rsteer"):
                    for col, (name, kind) in DYNAMICS_QUANTITIES.items():
                        _compare(
                            rows,
                            sub,
                            col,
                            ("rsteer", alpha),
                            ("e2cnn", None),
                            claim=f"On symmetric data (level {int(lowest)}) the relaxed model is in a flatter minimum",
                            source="BLOG",
                            quantity=name,
                            checkpoint=ckpt,
                            kind=kind,
                        )
    return rows


def superres_claims(superres, dynamics) -> list[dict]:
    """BLOG/W24 super-resolution: RGCNN < GCNN < CNN in test MAE; RGCNN flatter than GCNN."""
    rows: list[dict] = []
    if superres is not None and not superres.empty:
        claim = "In 3-D super-resolution the relaxed model beats the equivariant one, which beats the CNN"
        for a, b in (("rgcnn3d", "gcnn3d"), ("gcnn3d", "cnn3d")):
            _compare(
                rows,
                superres,
                "test_mae",
                (a, None),
                (b, None),
                claim=claim,
                source="BLOG",
                quantity="test MAE",
                checkpoint=BEST_CHECKPOINT,
                kind="log_ratio",
            )
    if dynamics is not None and not dynamics.empty:
        sr = dynamics[dynamics.study == "superres"]
        for ckpt in CHECKPOINTS:
            sub = sr[sr.checkpoint == ckpt]
            for col, (name, kind) in DYNAMICS_QUANTITIES.items():
                _compare(
                    rows,
                    sub,
                    col,
                    ("rgcnn3d", None),
                    ("gcnn3d", None),
                    claim="In 3-D super-resolution the relaxed model sits in a flatter minimum",
                    source="BLOG",
                    quantity=name,
                    checkpoint=ckpt,
                    kind=kind,
                )
    return rows


def _pearson(x: list[float], y: list[float]) -> float:
    import numpy as np

    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def ee_claims(levels) -> list[dict]:
    """BLOG: the relaxed model's EE tracks the data EE over levels, and a larger α pulls it down."""
    rows: list[dict] = []
    if levels is None or levels.empty or levels.level.nunique() < 3:
        return rows
    best = levels[(levels.checkpoint == BEST_CHECKPOINT) & (levels.model == "rsteer")]
    alphas = sorted(best.alpha.unique())
    for alpha in alphas:
        sub = best[best.alpha == alpha]
        effects = []
        for _, g in sub.groupby("seed"):
            g = g.groupby("level")[["ee", "data_ee"]].mean()
            effects.append(_pearson(list(g.data_ee), list(g.ee)))
        rows.append(
            _row(
                "The relaxed model's equivariance error tracks the data's",
                "BLOG",
                "Pearson r(model EE, data EE) over levels",
                _label("rsteer", alpha),
                BEST_CHECKPOINT,
                "correlation",
                "positive",
                effects,
                _lineage(sub),
            )
        )
    if len(alphas) > 1:
        hi, lo = alphas[-1], alphas[0]
        per_seed = {}
        for seed, g in best.groupby("seed"):
            ratios = []
            for _, gl in g.groupby("level"):
                ea, eb = gl[gl.alpha == hi].ee.mean(), gl[gl.alpha == lo].ee.mean()
                if ea > 0 and eb > 0:
                    ratios.append(math.log(ea / eb))
            if ratios:
                per_seed[int(seed)] = sum(ratios) / len(ratios)
        rows.append(
            _row(
                "A larger α pulls the relaxed model's equivariance error down",
                "BLOG",
                "model EE, mean log ratio over levels",
                f"{_label('rsteer', hi)} vs {_label('rsteer', lo)}",
                BEST_CHECKPOINT,
                "log_ratio",
                "negative",
                list(per_seed.values()),
                _lineage(best),
            )
        )
    return rows


def rotation_claims(rotation) -> list[dict]:
    """W22 Table 1: RGroup and RSteer < E2CNN < ConvNet on the rotation benchmark, future and domain."""
    rows: list[dict] = []
    if rotation is None or rotation.empty:
        return rows
    claim = "On the rotation benchmark relaxed models beat the equivariant one, which beats the CNN"
    for column, name in (("rmse_future", "RMSE test-future"), ("rmse_domain", "RMSE test-domain")):
        for a, b in (("rgroup", "e2cnn"), ("rsteer", "e2cnn"), ("e2cnn", "convnet")):
            _compare(
                rows,
                rotation,
                column,
                (a, None),
                (b, None),
                claim=claim,
                source="W22",
                quantity=name,
                checkpoint=BEST_CHECKPOINT,
                kind="log_ratio",
            )
    return rows


def tutorial_claims(tutorial) -> list[dict]:
    """TUT: the escnn model's skill is the same at every rotation (±5 %), the CNN's degrades."""
    rows: list[dict] = []
    if tutorial is None or tutorial.empty:
        return rows
    df = tutorial
    if "transform" in df:
        df = df[df["transform"] == "rotation"]
    df = df[df["rotation"].notna()]
    # one flow (f0: no rotating frame) and one output (the velocity target uv, the tutorial's own exercise)
    for key, preferred in (("flow", "f0"), ("output", "uv"), ("target", "uv")):
        if key in df and df[key].nunique() > 1:
            values = sorted(df[key].unique())
            df = df[df[key] == (preferred if preferred in values else values[0])]
    per = df.groupby(["model", "seed", "rotation"]).rmse.mean()

    def relative_change(model: str) -> list[float]:
        out = []
        for seed in sorted({s for m, s, _ in per.index if m == model}):
            g = per.loc[(model, seed)]
            if 0 in g.index and len(g) > 1 and g.loc[0] > 0:
                out.append(float((g.drop(0) / g.loc[0] - 1).mean()))
        return out

    models = set(df.model)
    lineage = _lineage(df)
    quantity = "rotated / unrotated RMSE − 1 (mean of 90°, 180°, 270°)"
    if "escnn" in models:
        rows.append(
            _row(
                "The equivariant model's skill is the same at every rotation",
                "TUT",
                quantity,
                "escnn",
                BEST_CHECKPOINT,
                "relative_change",
                "equivalent",
                relative_change("escnn"),
                lineage,
                margin=TUT_MARGIN,
            )
        )
    if "cnn" in models:
        rows.append(
            _row(
                "The CNN's skill degrades on rotated inputs",
                "TUT",
                quantity,
                "cnn",
                BEST_CHECKPOINT,
                "relative_change",
                "positive",
                relative_change("cnn"),
                lineage,
            )
        )
    return rows


def _read(path: str | os.PathLike | None):
    import pandas as pd

    return None if path is None else pd.read_csv(path)


def claims_table(
    out: str | os.PathLike,
    levels_csv: str | None = None,
    dynamics_csv: str | None = None,
    superres_csv: str | None = None,
    rotation_csv: str | None = None,
    tutorial_csv: str | None = None,
):
    """``claims.csv`` from whichever study tables the run has (each argument optional)."""
    import pandas as pd

    levels, dynamics = _read(levels_csv), _read(dynamics_csv)
    builders: list[Callable[[], list[dict]]] = [
        lambda: level0_claims(levels, dynamics),
        lambda: ee_claims(levels),
        lambda: superres_claims(_read(superres_csv), dynamics),
        lambda: rotation_claims(_read(rotation_csv)),
        lambda: tutorial_claims(_read(tutorial_csv)),
    ]
    rows = [row for build in builders for row in build()]
    if not rows:
        raise ValueError("no claim can be tested: none of the study tables has the models the claims compare")
    df = pd.DataFrame(rows, columns=[*COLUMNS, *LINEAGE_COLUMNS])
    write_csv(df, out)
    counts = df.verdict.value_counts().to_dict()
    log.info("claims: %d rows, %s", len(df), counts)
    return df
