"""The claims forest plot: one line per claim, its effect across seeds and the 95 % CI, coloured by verdict.

Every effect in ``claims.csv`` is dimensionless (log ratio, log ratio of means, correlation;
:mod:`equidyn.studies.claims`), so they share one axis; a bound a Fieller interval leaves open runs to the edge.
Primary claims (one Holm family) and software checks are tagged in the labels. The claimed side is shaded: an
interval wholly inside the shade is "supported", wholly outside "contradicted", across the boundary "not
resolved". An equivalence claim's shade is its ±margin band.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pandas as pd

from . import style

#: the symmetric-log axis is linear within ±LINTHRESH (the tutorial's ±5 % equivalence band stays linear)
LINTHRESH = 0.1
VERDICT_COLORS = {"supported": "#2ca02c", "contradicted": "#d62728", "not resolved": "#7f7f7f"}


def _margin(claimed: str) -> float | None:
    match = re.match(r"\|effect\| < ([0-9.eE+-]+)", claimed)
    return float(match.group(1)) if match else None


def forest(claims_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    df = pd.read_csv(claims_csv)
    n = len(df)
    fig, axes = style.figure(width=7.2, height=0.9 + 0.2 * n)
    ax = axes[0][0]
    finite = pd.concat([df.effect, df.ci_low, df.ci_high]).replace([np.inf, -np.inf], np.nan).dropna()
    span = float(finite.abs().max()) if len(finite) else 1.0
    span = max(span, 0.1) * 1.1
    for i, r in enumerate(df.itertuples()):
        y = n - 1 - i
        margin = _margin(r.claimed)
        if margin is not None:
            ax.fill_betweenx([y - 0.45, y + 0.45], -margin, margin, color="#2ca02c", alpha=0.12, linewidth=0)
        elif "<" in r.claimed:
            ax.fill_betweenx([y - 0.45, y + 0.45], -span, 0, color="#2ca02c", alpha=0.08, linewidth=0)
        else:
            ax.fill_betweenx([y - 0.45, y + 0.45], 0, span, color="#2ca02c", alpha=0.08, linewidth=0)
        colour = VERDICT_COLORS.get(r.verdict, "#333333")
        if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):  # an unbounded (Fieller) side runs to the edge
            ax.plot(np.clip([r.ci_low, r.ci_high], -span, span), [y, y], color=colour, linewidth=1.6)
        if math.isfinite(r.effect):
            ax.plot(r.effect, y, "o", color=colour, markersize=3.5)
    roles = df["role"] if "role" in df else pd.Series("", index=df.index)
    tags = {"primary": "[primary] ", "check": "[check] "}
    labels = [
        tags.get(role, "")
        + f"{r.source}: {r.quantity}, {r.comparison}"
        + (f" [{r.checkpoint}]" if r.checkpoint != "best" else "")
        for r, role in zip(df.itertuples(), roles, strict=True)
    ]
    ax.set_yticks(range(n - 1, -1, -1), labels, fontsize=5)
    ax.axvline(0, color="k", linewidth=0.6)
    # symmetric log: effects near 0 (a few %) stay readable next to intervals that span orders of magnitude
    ax.set_xscale("symlog", linthresh=LINTHRESH, linscale=1.5)
    ax.set_xlim(-span, span)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel(
        "effect across seeds (log ratio / log ratio of means / correlation), 95 % CI; symlog axis", fontsize=7
    )
    for verdict, colour in VERDICT_COLORS.items():
        count = int((df.verdict == verdict).sum())
        ax.plot([], [], "o-", color=colour, label=f"{verdict} ({count})")
    ax.legend(frameon=False, fontsize=6, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    seeds = f"{int(df.n_seeds.min())}-{int(df.n_seeds.max())}" if n else "0"
    fig.suptitle(f"Claims tested by this run ({seeds} seeds per effect; shade: the claimed side)", fontsize=8)
    style.save(fig, out, style.lineage_footer(df, "tables/claims.csv"))
