"""Figures of the rotation-equivariance tutorial: rotated truth vs prediction maps, and skill against rotation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import style

LABELS = {"cnn": "CNN", "escnn": "escnn C4", "cnn_aug": "CNN + C4 augmentation"}


def rotated(example_files: list[str], out: str | os.PathLike) -> None:
    """Rows: truth, then each model; columns: the test sample rotated by 0°, 90°, 180°, 270° (first channel)."""
    examples = []
    for path in example_files:
        parts = Path(path).parts  # …/runs/tutorial/<target>/<label>/seed<s>/rotated_example.npz
        with np.load(path) as z:
            examples.append((parts[-3], parts[-4], {k: z[k] for k in z.files}))
    rotations = examples[0][2]["rotation"]
    truth = examples[0][2]["truth"][:, 0]
    rows = [("truth", truth)] + [(LABELS.get(label, label), e["prediction"][:, 0]) for label, _, e in examples]
    vmax = float(np.abs(truth).max())
    fig, axes = style.figure(ncols=len(rotations), nrows=len(rows), width=1.35, height=1.35)
    for r, (label, maps) in enumerate(rows):
        for c, rot in enumerate(rotations):
            ax = axes[r][c]
            ax.imshow(maps[c], origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(f"rotated {int(rot)}°", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle(f"Tutorial: {examples[0][1]} target on a rotated test sample (trained on +x winds only)", fontsize=8)
    style.save(fig, out, "source: runs/tutorial/*/rotated_example.npz (best checkpoints, first seed)")


def skill(table_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Test RMSE and R² against the rotation of the test data, per model (mean ± sd over seeds)."""
    df = pd.read_csv(table_csv)
    targets = sorted(df.target.unique())
    fig, axes = style.figure(ncols=2, nrows=len(targets), width=3.2, height=2.5)
    for row, target in enumerate(targets):
        sub = df[df.target == target]
        for col, metric in enumerate(("rmse", "r2")):
            ax = axes[row][col]
            for model, g in sub.groupby("model"):
                stats = g.groupby("rotation")[metric].agg(["mean", "std"]).reset_index()
                ax.errorbar(
                    stats["rotation"],
                    stats["mean"],
                    yerr=stats["std"].fillna(0),
                    marker="o",
                    capsize=2,
                    color=style.color(model),
                    label=LABELS.get(model, model),
                )
            ax.set_xticks([0, 90, 180, 270])
            ax.set_xlabel("rotation of the test data (°)")
            ax.set_ylabel({"rmse": f"test RMSE ({target})", "r2": f"test R² ({target})"}[metric])
    axes[0][0].legend(frameon=False)
    fig.suptitle(f"Skill under rotation ({df.seed.nunique()} seeds): hard vs soft vs no constraint", fontsize=9)
    style.save(fig, out, style.lineage_footer(df, "tables/tutorial.csv"))
