"""Figures of the symmetry-level study."""

from __future__ import annotations

import os

import pandas as pd

from ..runs import CHECKPOINTS
from ..stats import mean_ci
from . import style


def _series_label(model: str, alpha: float, relaxed: bool) -> str:
    return f"{model} α={alpha:g}" if relaxed else model


def ee_vs_data_ee(levels_csv: str | os.PathLike, data_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Model EE against data EE, one panel per checkpoint; a line per (model, alpha); mean and 95 % CI over seeds.

    The dashed diagonal is "the model is exactly as equivariant as its data"; a strictly equivariant model sits at
    the floor of round-off whatever the data, a relaxed one should follow the data.
    """
    df = pd.read_csv(levels_csv)
    data = pd.read_csv(data_csv)
    relaxed_models = {m for m, g in df.groupby("model") if g["alpha"].nunique() > 1 or (g["alpha"] > 0).any()}
    checkpoints = [c for c in CHECKPOINTS if c in set(df["checkpoint"])]
    fig, axes = style.figure(ncols=len(checkpoints), width=3.6, height=3.0)
    floor = 1e-9
    for ax, ckpt in zip(axes[0], checkpoints, strict=True):
        sub = df[df["checkpoint"] == ckpt]
        series = sub.groupby(["model", "alpha"])
        alphas = sorted(sub["alpha"].unique())
        for (model, alpha), g in series:
            stats = pd.DataFrame(
                [{"data_ee": x, **mean_ci(e["ee"]).as_dict()} for x, e in g.groupby("data_ee")]
            ).sort_values("data_ee")
            relaxed = model in relaxed_models
            # distinguish alphas of a relaxed model by line style / shade
            shade = 0.35 + 0.65 * (alphas.index(alpha) + 1) / len(alphas) if relaxed else 1.0
            mean = stats["mean"].clip(lower=floor)
            low = (mean - stats["ci_low"].clip(lower=floor)).clip(lower=0).fillna(0)  # log axis: no bar below floor
            high = (stats["ci_high"] - mean).clip(lower=0).fillna(0)
            ax.errorbar(
                stats["data_ee"],
                mean,
                yerr=[low, high],
                label=_series_label(model, alpha, relaxed),
                color=style.color(model),
                alpha=shade,
                marker="o",
                capsize=2,
                linestyle=["-", "--", "-.", ":"][alphas.index(alpha) % 4] if relaxed else "-",
            )
        lim = [
            max(floor, data["data_ee"][data["data_ee"] > 0].min() / 3) if (data["data_ee"] > 0).any() else floor,
            max(data["data_ee"].max(), sub["ee"].max()) * 2,
        ]
        ax.plot(lim, lim, color="k", linestyle=":", linewidth=0.8, label="model EE = data EE")
        ax.set_yscale("log")
        ax.set_xlabel("data equivariance error (L1, velocity units)")
        ax.set_ylabel("model equivariance error (test inputs)")
        ax.set_title(f"checkpoint: {ckpt}")
        for lvl, x in zip(data["level"], data["data_ee"], strict=True):
            ax.annotate(f"L{lvl}", (x, floor * 1.5), fontsize=5, color="#777", ha="center")
        ax.set_ylim(bottom=floor)
    axes[0][-1].legend(loc="best", frameon=False)
    n_seeds = df["seed"].nunique()
    fig.suptitle(f"Model vs data equivariance error (mean, 95 % CI over {n_seeds} seeds)", fontsize=9)
    style.save(fig, out, style.lineage_footer(df, "tables/levels.csv"))
