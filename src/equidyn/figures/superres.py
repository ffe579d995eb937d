"""Figures of the 3-D super-resolution study: learning curves with a band over seeds, and mid-plane slices."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import style


def learning_curves(history_files: list[str], out: str | os.PathLike, metric: str = "mae") -> None:
    """Train and validation ``metric`` against epoch per model (mean ± sd over seeds)."""
    frames = []
    for path in history_files:
        parts = Path(path).parts  # …/runs/superres/<model>/alpha<a>/seed<s>/history.csv
        h = pd.read_csv(path)
        h["model"], h["alpha"], h["seed"] = parts[-4], parts[-3].removeprefix("alpha"), parts[-2].removeprefix("seed")
        frames.append(h)
    df = pd.concat(frames)
    fig, axes = style.figure(ncols=2, width=3.3, height=2.7)
    for ax, split in zip(axes[0], ("train", "val"), strict=True):
        col = f"{split}_{metric}"
        for (model, alpha), g in df.groupby(["model", "alpha"]):
            stats = g.groupby("epoch")[col].agg(["mean", "std"]).reset_index()
            label = f"{model} α={alpha}" if float(alpha) else model
            ax.plot(stats.epoch, stats["mean"], color=style.color(model), label=label)
            lo, hi = stats["mean"] - stats["std"].fillna(0), stats["mean"] + stats["std"].fillna(0)
            ax.fill_between(stats.epoch, lo, hi, color=style.color(model), alpha=0.18, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{'train' if split == 'train' else 'validation'} {metric.upper()}")
        ax.set_yscale("log")
    axes[0][0].legend(frameon=False)
    fig.suptitle(f"Super-resolution learning curves (band: ± sd over {df.seed.nunique()} seeds)", fontsize=9)
    style.save(fig, out, f"source: runs/superres/*/history.csv ({len(history_files)} runs)")


def slices(example_files: list[str], out: str | os.PathLike) -> None:
    """Speed on the mid-plane: coarse input, target, and each model's prediction and error."""
    examples = []
    for path in example_files:
        with np.load(path) as z:
            examples.append((Path(path).parts[-4], {k: z[k] for k in z.files}))
    first = examples[0][1]
    speed = lambda v: np.sqrt((v**2).sum(axis=0))  # noqa: E731
    vmax = float(speed(first["target"]).max())
    panels = [
        ("input (coarse, t2)", speed(first["input"]), "viridis", vmax),
        ("target", speed(first["target"]), "viridis", vmax),
    ]
    for model, e in examples:
        panels.append((f"{model}", speed(e["prediction"]), "viridis", vmax))
        panels.append((f"{model} |error|", speed(e["prediction"] - e["target"]), "magma", vmax / 2))
    ncols = 1 + len(examples)  # column 0: input over target; then per model: prediction over error
    fig, axes = style.figure(ncols=ncols, nrows=2, width=1.5, height=1.6)
    layout = [(r, c) for c in range(ncols) for r in (0, 1)]
    for (title, img, cmap, vm), (r, c) in zip(panels, layout, strict=True):
        ax = axes[r][c]
        ax.imshow(img, origin="lower", cmap=cmap, vmin=0, vmax=vm)
        ax.set_title(title, fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.suptitle("Super-resolution, mid-plane z-slice of the first test sample: speed |v|", fontsize=8)
    style.save(fig, out, f"source: runs/superres/*/slice_example.npz ({len(examples)} models, best checkpoints)")
