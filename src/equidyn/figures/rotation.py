"""Figures of the rotation benchmark: a test-domain rollout per model, and RMSE against rollout step."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import style


def rollout(example_files: list[str], out: str | os.PathLike) -> None:
    """Speed |v| of the target and of each model's prediction at the saved steps of one test-domain window.

    ``example_files`` are ``rollout_example.npz`` of one seed per model (…/<model>/alpha<a>/seed<s>/…).
    """
    examples = []
    for path in example_files:
        parts = Path(path).parts
        model = parts[-4]
        with np.load(path) as z:
            examples.append((model, {k: z[k] for k in z.files}))
    steps = examples[0][1]["steps"]
    target = examples[0][1]["target"]
    rows = [("target", target)] + [(m, e["prediction"]) for m, e in examples]
    vmax = float(np.percentile(np.hypot(target[:, 0], target[:, 1]), 99.5))
    fig, axes = style.figure(ncols=len(steps), nrows=len(rows), width=1.3, height=1.3)
    for r, (label, fields) in enumerate(rows):
        for c, step in enumerate(steps):
            ax = axes[r][c]
            speed = np.hypot(fields[c, 0], fields[c, 1])
            ax.imshow(speed, origin="lower", cmap="viridis", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(f"step {int(step)}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    sim, start = int(examples[0][1]["sim"]), int(examples[0][1]["start"])
    fig.suptitle(
        f"Test-domain rollout, plume {sim} from frame {start}: speed |v| (shared scale 0–{vmax:.2f})", fontsize=8
    )
    style.save(fig, out, f"source: runs/rotation/*/rollout_example.npz ({len(examples)} models, best checkpoints)")


def rmse_by_step(by_step_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """RMSE against rollout step, mean ± sd over seeds, one panel per test split."""
    df = pd.read_csv(by_step_csv)
    splits = ["test_future", "test_domain"]
    fig, axes = style.figure(ncols=2, width=3.4, height=2.8)
    for ax, split in zip(axes[0], splits, strict=True):
        sub = df[df.split == split]
        for (model, alpha), g in sub.groupby(["model", "alpha"]):
            stats = g.groupby("step")["rmse"].agg(["mean", "std"]).reset_index()
            label = f"{model} α={alpha:g}" if alpha else model
            ax.plot(stats["step"], stats["mean"], color=style.color(model), label=label)
            ax.fill_between(
                stats["step"],
                stats["mean"] - stats["std"].fillna(0),
                stats["mean"] + stats["std"].fillna(0),
                color=style.color(model),
                alpha=0.15,
                linewidth=0,
            )
        ax.set_xlabel("rollout step")
        ax.set_ylabel("RMSE (velocity units)")
        ax.set_title(split.replace("_", "-"))
    axes[0][-1].legend(frameon=False, fontsize=6, ncol=2)
    fig.suptitle(f"Rotation benchmark: error growth over the rollout ({df.seed.nunique()} seeds)", fontsize=9)
    style.save(fig, out, style.lineage_footer(df, "tables/rotation_by_step.csv"))
