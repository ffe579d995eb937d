"""The exponax study's figure (issue 24): per flow, each arm's test RMSE against both trivial forecasts, and its
equivariance error under C4 and under the mirrors that no arm imposes, against the flow's data EE."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..runs import BEST_CHECKPOINT
from . import style

FLOW_TITLES = {"decaying": "decaying turbulence (D4 kept)", "kolmogorov": "Kolmogorov flow (C4 broken)"}


def _arms(df: pd.DataFrame) -> list[tuple[str, float]]:
    return sorted({(str(m), float(a)) for m, a in zip(df.model, df.alpha, strict=True)})


def _name(model: str, alpha: float) -> str:
    return f"{model} α={alpha:g}" if alpha else model


def exponax_figure(summary_csv: str | os.PathLike, exponax_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Top: test RMSE of the best checkpoints (mean and 95 % CI over seeds, one point per seed behind it), with
    persistence and the linear extrapolation on the same test windows. Bottom: relative EE under C4 and under D4's
    mirrors (log scale), with the flow's data EE after one frame interval (C4 and D4)."""
    summary = pd.read_csv(summary_csv)
    summary = summary[summary.checkpoint == BEST_CHECKPOINT]
    runs = pd.read_csv(exponax_csv)
    runs = runs[runs.checkpoint == BEST_CHECKPOINT]
    flows = [f for f in FLOW_TITLES if f in set(summary.flow)]
    arms = _arms(summary)
    fig, axes = style.figure(ncols=len(flows), nrows=2, width=3.6, height=2.7)
    x = np.arange(len(arms))
    for col, flow in enumerate(flows):
        top, bottom = axes[0][col], axes[1][col]
        s = summary[summary.flow == flow].set_index(["model", "alpha"])
        r = runs[runs.flow == flow]
        for i, (model, alpha) in enumerate(arms):
            if (model, alpha) not in s.index:
                continue
            row = s.loc[(model, alpha)]
            seeds = r[(r.model == model) & (r.alpha == alpha)].test_rmse
            top.scatter(np.full(len(seeds), i) + 0.15, seeds, s=4, color=style.color(model), alpha=0.4)
            err = [[row.test_rmse_mean - row.test_rmse_ci_low], [row.test_rmse_ci_high - row.test_rmse_mean]]
            top.errorbar(i, row.test_rmse_mean, yerr=err, fmt="o", color=style.color(model), capsize=2)
            for j, (metric, marker) in enumerate((("ee_rel", "o"), ("ee_mirror_rel", "s"))):
                mean = row[f"{metric}_mean"]
                if not np.isfinite(mean) or mean <= 0:
                    continue
                low = max(row[f"{metric}_ci_low"], mean * 1e-3)
                bottom.errorbar(
                    i + (j - 0.5) * 0.3,
                    mean,
                    yerr=[[mean - low], [row[f"{metric}_ci_high"] - mean]],
                    fmt=marker,
                    color=style.color(model),
                    mfc="white" if j else style.color(model),
                    capsize=2,
                    label=("C4 EE" if j == 0 else "mirror EE") if i == 0 else None,
                )
        first = summary[summary.flow == flow].iloc[0]
        for column, label, ls in (
            ("persistence_test_rmse", "persistence", ":"),
            ("linear_extrapolation_test_rmse", "linear extrapolation", "--"),
        ):
            if column in first and np.isfinite(first[column]):
                top.axhline(first[column], color="k", linestyle=ls, linewidth=0.8, label=label)
        for column, label, ls in (
            ("data_ee_c4_rel_first_frame", "data EE (C4, 1 frame)", "--"),
            ("data_ee_d4_rel_first_frame", "data EE (D4, 1 frame)", ":"),
        ):
            value = first.get(column, np.nan)
            if np.isfinite(value) and value > 0:
                bottom.axhline(value, color="k", linestyle=ls, linewidth=0.8, label=label)
        top.set_title(FLOW_TITLES[flow], fontsize=8)
        top.set_ylabel("test RMSE (1/T)")
        bottom.set_ylabel("relative EE")
        bottom.set_yscale("log")
        for ax in (top, bottom):
            ax.set_xticks(x, [_name(*arm) for arm in arms], rotation=30, ha="right", fontsize=6)
            ax.legend(frameon=False, fontsize=5)
    fig.suptitle(
        "exponax flows: forecast and equivariance error per arm\n(best checkpoints; 95 % CI over seeds)", fontsize=8
    )
    style.save(fig, out, style.lineage_footer(runs, "tables/exponax.csv, tables/exponax_summary.csv"))
