"""Figures of the training-dynamics analysis (the BLOG's figures, reproduced with the corrected measures)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..runs import BEST_CHECKPOINT, CHECKPOINTS, EARLY_EPOCH
from ..stats import mean_ci
from . import style


def _markers():
    """One marker per checkpoint, best last (``CHECKPOINTS`` ends with it): squares for the early one, circles."""
    return [*"s^Dv<>"[: len(CHECKPOINTS) - 1], "o"]


def _alpha_axis(ax, alphas: list[float]) -> None:
    """Symmetric-log x axis so that alpha = 0 sits next to 1e-6 … 1."""
    positive = [a for a in alphas if a > 0]
    ax.set_xscale("symlog", linthresh=min(positive) if positive else 1e-6)
    ax.set_xlabel("imposed alpha (relaxation penalty weight)")


def _ci_stats(grouped) -> pd.DataFrame:
    """Per group: ``mean`` over seeds and the error-bar lengths ``lo``/``hi`` of its 95 % t interval (0 below 2
    seeds, where there is no interval), so every error bar in these figures is a confidence interval, not an sd."""

    def row(values: pd.Series) -> pd.Series:
        est = mean_ci(list(values))
        if est.n < 2:
            return pd.Series({"mean": est.mean, "lo": 0.0, "hi": 0.0})
        return pd.Series({"mean": est.mean, "lo": est.mean - est.ci_low, "hi": est.ci_high - est.mean})

    return grouped.apply(row).unstack().reset_index()


def _yerr(stats: pd.DataFrame) -> np.ndarray:
    return np.vstack([stats["lo"].to_numpy(float), stats["hi"].to_numpy(float)])


def _relaxed(df: pd.DataFrame) -> set[str]:
    return {m for m, g in df.groupby("model") if g["alpha"].nunique() > 1 or (g["alpha"] > 0).any()}


def ee_vs_alpha(levels_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Model EE against alpha, one line per data level, for the relaxed models; strict/none models as references."""
    df = pd.read_csv(levels_csv)
    relaxed = _relaxed(df)
    checkpoints = [c for c in CHECKPOINTS if c in set(df.checkpoint)]
    fig, axes = style.figure(ncols=len(checkpoints), width=3.5, height=2.9)
    levels = sorted(df.level.unique())
    cmap = style.plt.get_cmap("viridis")
    for ax, ckpt in zip(axes[0], checkpoints, strict=True):
        sub = df[df.checkpoint == ckpt]
        for model in sorted(relaxed):
            for i, level in enumerate(levels):
                g = sub[(sub.model == model) & (sub.level == level)]
                stats = _ci_stats(g.groupby("alpha").ee)
                ax.errorbar(
                    stats.alpha,
                    stats["mean"],
                    yerr=_yerr(stats),
                    marker="o",
                    capsize=2,
                    color=cmap(i / max(len(levels) - 1, 1)),
                    label=f"{model}, level {level}",
                )
        for model in sorted(set(sub.model) - relaxed):
            value = sub[sub.model == model].ee.mean()
            ax.axhline(value, color=style.color(model), linestyle="--", linewidth=1, label=f"{model} (all levels)")
        _alpha_axis(ax, list(sub.alpha.unique()))
        ax.set_yscale("log")
        ax.set_ylabel("model equivariance error (test)")
        ax.set_title(f"checkpoint: {ckpt}")
    axes[0][-1].legend(frameon=False, fontsize=5)
    fig.suptitle("Equivariance error against imposed alpha, per data symmetry level", fontsize=9)
    style.save(fig, out, style.lineage_footer(df, "tables/levels.csv"))


def lie_vs_alpha(dynamics_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Relative Lie derivative against alpha (smoke levels) and per model (super-resolution), per checkpoint."""
    df = pd.read_csv(dynamics_csv)
    df = df[df.lie_derivative.notna()]
    studies = [s for s in ("levels", "superres", "rotation") if s in set(df.study)]
    fig, axes = style.figure(ncols=len(studies), width=3.4, height=2.8)
    for ax, study in zip(axes[0], studies, strict=True):
        sub = df[df.study == study]
        relaxed = _relaxed(sub)
        groups = sorted(sub.level.dropna().unique()) if study == "levels" else [None]
        for ckpt, marker in zip(CHECKPOINTS, _markers(), strict=False):
            c = sub[sub.checkpoint == ckpt]
            for level in groups:
                g = c if level is None else c[c.level == level]
                for model, gm in g.groupby("model"):
                    stats = _ci_stats(gm.groupby("alpha").lie_derivative)
                    label = f"{model} {ckpt}" + ("" if level is None else f" L{int(level)}")
                    style_ = "-" if model in relaxed else ":"
                    ax.errorbar(
                        stats.alpha,
                        stats["mean"],
                        yerr=_yerr(stats),
                        marker=marker,
                        linestyle=style_,
                        color=style.color(model),
                        capsize=2,
                        label=label,
                        alpha=1.0 if ckpt == BEST_CHECKPOINT else 0.5,
                    )
        _alpha_axis(ax, list(sub.alpha.unique()))
        ax.set_yscale("log")
        ax.set_ylabel("Lie derivative ‖L f‖ / ‖f‖ (rotation generator)")
        ax.set_title({"levels": "smoke levels", "superres": "3-D super-resolution", "rotation": "rotation"}[study])
        ax.legend(frameon=False, fontsize=4, ncol=2)
    fig.suptitle(
        f"Continuous-rotation equivariance of trained models (squares: epoch {EARLY_EPOCH}, circles: best)", fontsize=8
    )
    style.save(fig, out, style.lineage_footer(df, "tables/dynamics.csv"))


def levels_curves(history_files: list[str], out: str | os.PathLike) -> None:
    """Train and validation RMSE against epoch at one level (mean and 95 % CI over seeds), per (model, alpha)."""
    frames = []
    for path in history_files:
        parts = Path(path).parts  # …/runs/levels/<model>/alpha<a>/level<l>/seed<s>/history.csv
        h = pd.read_csv(path)
        h["model"], h["alpha"] = parts[-5], float(parts[-4].removeprefix("alpha"))
        h["level"], h["seed"] = parts[-3].removeprefix("level"), parts[-2].removeprefix("seed")
        frames.append(h)
    df = pd.concat(frames)
    fig, axes = style.figure(ncols=2, width=3.3, height=2.7)
    for ax, col, title in zip(axes[0], ("train_rmse", "val_rmse"), ("train", "validation"), strict=True):
        for (model, alpha), g in df.groupby(["model", "alpha"]):
            stats = _ci_stats(g.groupby("epoch")[col])
            label = f"{model} α={alpha:g}" if model in _relaxed(df) else model
            ax.plot(
                stats.epoch, stats["mean"], color=style.color(model), label=label, linestyle="--" if alpha > 0 else "-"
            )
            lo, hi = stats["mean"] - stats["lo"], stats["mean"] + stats["hi"]
            ax.fill_between(stats.epoch, lo, hi, color=style.color(model), alpha=0.15, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{title} RMSE (velocity units)")
        ax.set_yscale("log")
    axes[0][0].legend(frameon=False, fontsize=6)
    level = ",".join(sorted(df.level.unique()))
    fig.suptitle(f"Smoke level {level}: learning curves (band: 95 % CI over {df.seed.nunique()} seeds)", fontsize=9)
    style.save(fig, out, f"source: runs/levels/*/level{level}/*/history.csv ({len(history_files)} runs)")


def test_rmse_bars(levels_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Test RMSE of the best checkpoints per (model, alpha), grouped by data level, mean and 95 % CI over seeds."""
    df = pd.read_csv(levels_csv)
    df = df[df.checkpoint == "best"]
    series = sorted({(m, a) for m, a in zip(df.model, df.alpha, strict=True)})
    levels = sorted(df.level.unique())
    fig, axes = style.figure(width=max(3.4, 0.9 * len(levels) + 1.5), height=2.8)
    ax = axes[0][0]
    width = 0.8 / len(series)
    relaxed = _relaxed(df)
    for i, (model, alpha) in enumerate(series):
        g = _ci_stats(df[(df.model == model) & (df.alpha == alpha)].groupby("level").test_rmse)
        g = g.set_index("level").reindex(levels)
        x = np.arange(len(levels)) + (i - (len(series) - 1) / 2) * width
        label = f"{model} α={alpha:g}" if model in relaxed else model
        ax.bar(
            x,
            g["mean"],
            width,
            yerr=_yerr(g.fillna(0)),
            color=style.color(model),
            capsize=2,
            label=label,
            alpha=0.55 + 0.45 * (i % 2),
            edgecolor="k",
            linewidth=0.3,
        )
    ax.set_xticks(np.arange(len(levels)), [f"level {lvl}" for lvl in levels])
    ax.set_ylabel("test RMSE (velocity units)")
    ax.legend(frameon=False, fontsize=6, ncol=2)
    fig.suptitle(f"Test RMSE per model (best checkpoint, mean and 95 % CI over {df.seed.nunique()} seeds)", fontsize=9)
    style.save(fig, out, style.lineage_footer(df, "tables/levels.csv"))


def hessian_density(hessian_files: list[str], out: str | os.PathLike) -> None:
    """SLQ spectral densities at epoch 3 and at the best epoch, one panel per (study, checkpoint)."""
    records = [json.loads(Path(p).read_text()) for p in hessian_files]
    studies = [s for s in ("levels", "superres", "rotation") if any(r["study"] == s for r in records)]
    measured = [c for c in CHECKPOINTS if any(r["checkpoint"] == c for r in records)]  # dynamics.runs may skip one
    fig, axes = style.figure(ncols=len(measured), nrows=len(studies), width=3.3, height=2.5)
    for row, study in enumerate(studies):
        for col, ckpt in enumerate(measured):
            ax = axes[row][col]
            for r in (r for r in records if r["study"] == study and r["checkpoint"] == ckpt):
                grid, values = np.asarray(r["density"]["grid"]), np.asarray(r["density"]["values"])
                label = f"{r['model']} α={r['alpha']:g}" if r["alpha"] else r["model"]
                ax.plot(
                    grid,
                    np.clip(values, 1e-8, None),
                    color=style.color(r["model"]),
                    label=label,
                    linestyle="--" if r["alpha"] else "-",
                )
                ax.axvline(r["lambda_max"], color=style.color(r["model"]), linewidth=0.6, alpha=0.6)
            ax.set_yscale("log")
            ax.set_xlabel("Hessian eigenvalue")
            ax.set_ylabel("spectral density (SLQ)")
            name = {"levels": "smoke levels", "superres": "3-D super-resolution", "rotation": "rotation"}[study]
            ax.set_title(f"{name}, {ckpt}", fontsize=8)
        axes[row][-1].legend(frameon=False, fontsize=5)
    seeds = sorted({r["seed"] for r in records})
    levels = sorted({r.get("level") for r in records if r.get("level") is not None})
    fig.suptitle(f"Hessian spectra (vertical lines: λ_max; levels {levels}, seed {seeds})", fontsize=8)
    df = pd.DataFrame([{k: r.get(k) for k in ("seed", "config_sha", "git_rev", "data_sha")} for r in records])
    style.save(fig, out, style.lineage_footer(df, "runs/*/hessian_*.json"))


def sharpness(dynamics_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """The two sharpness measures at epoch 3 and at the best epoch, per model, per study (mean, 95 % CI over seeds).

    Left: the BLOG's sharpness mean |L(w+td) − L(w)|, first *and* second order (comparable with the published
    numbers, not a curvature). Right: the curvature sharpness mean [(L(w+td) + L(w−td))/2 − L(w)], signed.
    """
    df = pd.read_csv(dynamics_csv)
    df = df[df.sharpness_blog.notna()]
    studies = [s for s in ("levels", "superres", "rotation") if s in set(df.study)]
    fig, axes = style.figure(ncols=2, nrows=len(studies), width=3.3, height=2.5)
    labels = {
        "sharpness_blog": "BLOG sharpness mean|ΔL| (1st+2nd order)",
        "sharpness_curvature": "curvature sharpness mean[(L₊+L₋)/2 − L]",
    }
    for row, study in enumerate(studies):
        sub = df[df.study == study]
        series = sorted({(m, a) for m, a in zip(sub.model, sub.alpha, strict=True)})
        for col, metric in enumerate(labels):
            ax = axes[row][col]
            for i, (model, alpha) in enumerate(series):
                width = 0.8 / len(CHECKPOINTS)
                for j, ckpt in enumerate(CHECKPOINTS):
                    v = sub[(sub.model == model) & (sub.alpha == alpha) & (sub.checkpoint == ckpt)][metric]
                    if v.empty:  # a checkpoint that dynamics.runs does not measure
                        continue
                    est = mean_ci(list(v))
                    err = [[est.mean - est.ci_low], [est.ci_high - est.mean]] if est.n > 1 else None
                    ax.bar(
                        i + (j - (len(CHECKPOINTS) - 1) / 2) * width,
                        est.mean,
                        width,
                        yerr=err,
                        capsize=2,
                        color=style.color(model),
                        alpha=1.0 if ckpt == BEST_CHECKPOINT else 0.45,
                        edgecolor="k",
                        linewidth=0.3,
                        label=ckpt if i == 0 else None,
                    )
            ax.set_xticks(range(len(series)), [f"{m}\nα={a:g}" if a else m for m, a in series], fontsize=5)
            ax.set_ylabel(labels[metric], fontsize=6)
            if metric == "sharpness_blog":
                ax.set_yscale("log")
            else:  # signed: negative where the loss curves down
                ax.set_yscale("symlog", linthresh=max(float(sub[metric].abs().min()), 1e-12))
                ax.axhline(0, color="k", linewidth=0.4)
            ax.set_title(f"{study}: {'BLOG (not a curvature)' if col == 0 else 'curvature'}", fontsize=8)
        axes[row][0].legend(frameon=False, fontsize=6, title=f"pale: {', '.join(CHECKPOINTS[:-1])}", title_fontsize=5)
    fig.suptitle(
        "Sharpness of the training loss: BLOG definition vs curvature (eval mode, seeded unit directions; "
        "bars: mean, 95 % CI over seeds)",
        fontsize=7,
    )
    style.save(fig, out, style.lineage_footer(df, "tables/dynamics.csv"))


def lambda_max_vs_skill(
    dynamics_csv: str | os.PathLike, out: str | os.PathLike, levels_summary_csv: str | os.PathLike | None = None
) -> None:
    """λ_max of each measured level run's best checkpoint against its test skill over its own skip (one point per
    run, one colour per arm), with the Spearman correlation per arm in the legend.

    Why (issue 20): a run whose learned correction collapsed onto its skip is trivially "flat"; if λ_max rises
    with skill within an arm, a flatness difference between arms means something only where they learned
    comparable corrections. The x axis says which runs those are.
    """
    from scipy.stats import spearmanr

    df = pd.read_csv(dynamics_csv)
    if "skill_vs_skip" not in df and levels_summary_csv is not None:
        # a dynamics table from before the diagnostic: the skill over linear extrapolation from the level's
        # linear-extrapolation RMSE (levels_summary.csv), exact for one-step test windows
        linear = pd.read_csv(levels_summary_csv).groupby("level").linear_extrapolation_test_rmse.first()
        df["skill_vs_skip"] = 1 - df.test_rmse / df.level.map(linear)
    need = {"skill_vs_skip", "hessian_lambda_max"}
    if not need <= set(df.columns):
        raise ValueError(f"{dynamics_csv} lacks {sorted(need - set(df.columns))}: no run to plot")
    df = df[(df.study == "levels") & (df.checkpoint == BEST_CHECKPOINT)].dropna(subset=sorted(need))
    if df.empty:
        raise ValueError(f"{dynamics_csv} has no measured best checkpoint of the level study with a skill")
    levels_present = sorted(set(df.level))
    fig, axes = style.figure(ncols=len(levels_present), width=3.6, height=3.0)
    for ax, level in zip(axes[0], levels_present, strict=True):
        sub = df[df.level == level]
        for (model, alpha), arm in sub.groupby(["model", "alpha"]):
            rho = spearmanr(arm.skill_vs_skip, arm.hessian_lambda_max).statistic if len(arm) > 2 else float("nan")
            name = f"{model} α={alpha:g}" if alpha else str(model)
            ax.scatter(
                arm.skill_vs_skip,
                arm.hessian_lambda_max,
                s=12,
                color=style.color(str(model)),
                marker="o" if not alpha else ("^" if alpha < 0.1 else "s"),
                edgecolor="k",
                linewidth=0.3,
                label=f"{name} (n={len(arm)}, ρ={rho:+.2f})",
            )
        ax.set_yscale("log")
        ax.axvline(0, color="k", linewidth=0.4)
        ax.set_xlabel("test skill over the model's own skip (1 − RMSE/RMSE_skip)", fontsize=6)
        ax.set_ylabel("Hessian λ_max (best checkpoint)", fontsize=6)
        ax.set_title(f"level {level}", fontsize=8)
        ax.legend(frameon=False, fontsize=5)
    fig.suptitle("Flatness against how much each run learned\n(one point per run; ρ: Spearman per arm)", fontsize=7)
    style.save(fig, out, style.lineage_footer(df, "tables/dynamics.csv"))
