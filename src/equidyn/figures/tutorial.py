"""Figures of the rotation tutorial: maps of a transformed test sample, and skill against the transformation.

Both read what the training jobs and the table wrote; confidence intervals are over seeds (Student t, 95 %,
:func:`equidyn.stats.mean_ci`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..stats import mean_ci
from . import style

LABELS = {
    "cnn": "CNN",
    "cnn_aug": "CNN + C4 augmentation",
    "cnn_penalty": "CNN + equivariance penalty",
    "escnn": "escnn C4",
    "escnn_d4": "escnn D4",
}
OUTPUT_LABELS = {"uv": "⟨u′v′⟩", "vector_flux": "(⟨u′w′⟩, ⟨v′w′⟩)", "tke": "TKE"}
COLORS = {"cnn_penalty": "#d62728", "escnn_d4": "#9467bd"}  # the models style.MODEL_COLORS does not know
ELEMENT_LABELS = ["0°", "90°", "180°", "270°", "m 0°", "m 90°", "m 180°", "m 270°"]


def rotated(example_files: list[str], out: str | os.PathLike) -> None:
    """Rows: truth, then each model (flow f0, first seed); columns: the test sample rotated by 0°…270°.

    The first output's first channel (⟨u′v′⟩ by default) on one colour scale shared by every panel, with a
    labelled colour bar, so a reader compares magnitudes across models and rotations directly.
    """
    examples = []
    for path in example_files:
        parts = Path(path).parts  # …/runs/tutorial/<flow>/<label>/seed<s>/rotated_example.npz
        with np.load(path) as z:
            examples.append((parts[-3], {k: z[k] for k in z.files}))
    first = examples[0][1]
    output = str(first["outputs"][0])
    channel = int(first["first_channel"][0])
    rotations = [g for g in first["element"] if g < 4]
    truth = first["truth"][:, channel]
    short = {k: v.replace(" + ", " +\n") for k, v in LABELS.items()}
    rows = [("truth", truth)] + [(short.get(label, label), e["prediction"][:, channel]) for label, e in examples]
    vmax = float(np.abs(truth).max())
    heights = [1.0] * len(rows) + [0.12]  # a last, thin row holds the shared colour bar
    fig, axes = style.figure(
        ncols=len(rotations), nrows=len(rows) + 1, width=1.3, height=1.25, gridspec_kw={"height_ratios": heights}
    )
    image = None
    for r, (label, maps) in enumerate(rows):
        for c, g in enumerate(rotations):
            ax = axes[r][c]
            image = ax.imshow(maps[g], origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(f"rotated {90 * int(g)}°", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    grid = axes[-1][0].get_gridspec()
    for ax in axes[-1]:
        ax.remove()
    bar = fig.colorbar(image, cax=fig.add_subplot(grid[-1, :]), orientation="horizontal")
    bar.set_label(
        f"{OUTPUT_LABELS.get(output, output)} (velocity², solver units; one scale for every panel)", fontsize=7
    )
    bar.ax.tick_params(labelsize=6)
    fig.suptitle(
        f"Tutorial: {OUTPUT_LABELS.get(output, output)} on a rotated test sample (trained on +x winds)", fontsize=8
    )
    style.save(fig, out, "source: runs/tutorial/f0/*/seed<first>/rotated_example.npz (best checkpoints)")


def skill(table_csv: str | os.PathLike, ceiling_csv: str | os.PathLike, out: str | os.PathLike) -> None:
    """Test R² against the D4 element applied to the test data, per model and output (rows) and flow (columns).

    Points: mean over seeds; bars: 95 % CI over seeds. Elements 0–3 rotate, 4–7 mirror (y ↦ −y) then rotate.
    The gradient model's a-priori R² (dashed) is the ceiling of a local closure of the same inputs (⟨u′v′⟩).
    """
    df = pd.read_csv(table_csv)
    ceiling = pd.read_csv(ceiling_csv).set_index("flow")
    outputs = list(dict.fromkeys(df.output))
    flows = sorted(df.flow.unique(), key=lambda f: float(f[1:]))
    fig, axes = style.figure(ncols=len(flows), nrows=len(outputs), width=4.0, height=2.6)
    for row, output in enumerate(outputs):
        for col, flow in enumerate(flows):
            ax = axes[row][col]
            sub = df[(df.output == output) & (df.flow == flow)]
            models = list(dict.fromkeys(sub.model))
            for i, model in enumerate(models):
                per = [(e, mean_ci(g.r2.values)) for e, g in sub[sub.model == model].groupby("element")]
                elements = [e for e, _ in per]
                means = np.array([ci.mean for _, ci in per])
                halves = np.array([ci.ci_high - ci.mean for _, ci in per])  # NaN with one seed: no bar
                ax.errorbar(
                    np.asarray(elements) + 0.08 * (i - len(models) / 2),
                    means,
                    yerr=np.nan_to_num(halves),
                    marker="o",
                    markersize=3,
                    capsize=2,
                    linewidth=1,
                    color=COLORS.get(model, style.color(model)),
                    label=LABELS.get(model, model),
                )
            if output == "uv" and flow in ceiling.index:
                ax.axhline(
                    float(ceiling.loc[flow, "gradient_model_r2_fitted"]),
                    color="0.4",
                    linestyle="--",
                    linewidth=0.8,
                    label="gradient model (a priori)",
                )
            ax.axvline(3.5, color="0.8", linewidth=0.8)
            ax.axhline(0.0, color="0.6", linewidth=0.5)
            ax.set_xticks(range(8))
            ax.set_xticklabels(ELEMENT_LABELS, fontsize=6, rotation=45)
            ax.set_xlabel("transform of the test data (m: mirror, then rotate)")
            ax.set_ylabel(f"test R², {OUTPUT_LABELS.get(output, output)}")
            low = np.nanmin(sub.r2.values) if len(sub) else 0.0
            if output == "uv" and flow in ceiling.index:  # keep the ceiling line in view
                low = min(low, float(ceiling.loc[flow, "gradient_model_r2_fitted"]))
            ax.set_ylim(max(low, -1.0) - 0.05, 1.0)
            ax.set_title(f"flow {flow} (Coriolis f = {flow[1:]})", fontsize=8)

    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][-1].legend(handles, labels, frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(
        f"Skill under rotation and reflection (mean, 95% CI over {df.seed.nunique()} seeds; trained on +x winds; "
        "R² below −1 clipped)",
        fontsize=9,
    )
    style.save(fig, out, style.lineage_footer(df, "tables/tutorial.csv"))
