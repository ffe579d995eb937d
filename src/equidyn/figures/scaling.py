"""The scaling study's figures: test error against parameters, training data and compute, log-log, one panel per
level, one colour per arm; every seed is a point and each arm's fit L∞ + A·x^−α a line with its 95 % bootstrap band.

A fit that the data do not constrain (``constrained`` false in ``tables/scaling_fits.csv``) is drawn dotted and
marked "(fit not constrained)" in the legend: the eye should not read an exponent the numbers do not support.
"""

from __future__ import annotations

import os

import pandas as pd

from . import style

#: axis -> (sweep, x column, x label)
AXES = {
    "params": ("sizes", "params", "parameters N"),
    "data": ("data", "train_windows", "training windows D"),
    "compute": ("sizes", "compute_flops", "compute C = forward FLOPs × samples seen"),
}


def _arm(model: str, alpha: float) -> str:
    return f"{model} α={alpha:g}" if alpha else str(model)


def scaling_figure(
    scaling_csv: str | os.PathLike, curves_csv: str | os.PathLike, axis: str, out: str | os.PathLike
) -> None:
    """One axis's figure (``params``, ``data`` or ``compute``) from the runs table and the fitted curves."""
    if axis not in AXES:
        raise ValueError(f"unknown scaling axis {axis!r}; expected one of {sorted(AXES)}")
    sweep, x, xlabel = AXES[axis]
    runs = pd.read_csv(scaling_csv)
    runs = runs[runs.sweeps.str.split().apply(lambda s: sweep in s)]
    curves = pd.read_csv(curves_csv)
    curves = curves[curves.axis == axis] if not curves.empty else curves
    from matplotlib import ticker

    levels = sorted(runs.level.unique())
    fig, axes = style.figure(ncols=len(levels), width=4.2, height=3.2)
    for ax, level in zip(axes[0], levels, strict=True):
        at = runs[runs.level == level]
        for (model, alpha), arm in at.groupby(["model", "alpha"], sort=True):
            colour = style.color(str(model))
            curve = curves[(curves.level == level) & (curves.model == model) & (curves.alpha == alpha)]
            label = f"{_arm(model, alpha)} (n={arm.seed.nunique()} seeds)"
            if not curve.empty:
                constrained = bool(curve.constrained.iloc[0])
                ax.plot(curve.x, curve.fit, color=colour, linewidth=1.0, linestyle="-" if constrained else ":")
                ax.fill_between(curve.x, curve.band_low, curve.band_high, color=colour, alpha=0.15, linewidth=0)
                if not constrained:
                    label += " (fit not constrained)"
            ax.scatter(arm[x], arm.test_rmse, s=10, color=colour, edgecolor="k", linewidth=0.3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # 1–2 decades: label 1, 2 and 5 of each decade in engineering notation (2k, 10k; 500G, 1T), not every minor tick
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(labelsize=6)
        ax.set_xlabel(xlabel, fontsize=6)
        ax.set_ylabel("test RMSE (held-out plumes)", fontsize=6)
        ax.set_title(f"level {level}", fontsize=8)
        ax.legend(frameon=False, fontsize=5)
    fig.suptitle(f"Scaling with {xlabel.split(' ')[0]}:\nseeds as points, fits L∞ + A·x^−α with 95 % bands", fontsize=7)
    style.save(fig, out, style.lineage_footer(runs, "tables/scaling.csv"))
