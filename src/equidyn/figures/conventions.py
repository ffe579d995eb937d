"""The picture in docs/conventions.md: equidyn's frame, the C4 action on a vector field, and escnn's frame.

Drawn from the symmetry spine itself (not by hand), so the picture cannot drift from the code.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..symmetry import C4, FieldLayout
from ..symmetry.escnn_frame import to_escnn
from . import style


def _plume(n: int = 12) -> torch.Tensor:
    """A plume-like vector field: a jet rising from an inflow at (x, y) = (n/2, 1.5)."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    core = np.exp(-(((x - n / 2) / 1.8) ** 2)) * np.clip(1.2 - y / n, 0, None)
    u = 0.4 * (x - n / 2) / n * core
    v = core
    return torch.tensor(np.stack([u, v])[None], dtype=torch.float32)


def draw(out: str | os.PathLike) -> None:
    n = 12
    g = C4()
    layout = FieldLayout.parse("vector")
    field = _plume(n)
    panels = [
        ("f: equidyn frame (row = +y, up)", field[0], "lower", "inflow at (n/2, 1.5), buoyancy +y"),
        ("g·f, g = C4 element 1 (+90°)", g.act(1, field, layout)[0], "lower", "inflow now on the right, flow along −x"),
        ("f in escnn's frame (row = −y)", to_escnn(field, layout)[0], "upper", "same array, v ↦ −v, drawn y-down"),
    ]
    fig, axes = style.figure(ncols=3, width=2.6, height=2.8)
    yy, xx = np.mgrid[0:n, 0:n]
    for ax, (title, vec, origin, note) in zip(axes[0], panels, strict=True):
        u, v = vec[0].numpy(), vec[1].numpy()
        speed = np.hypot(u, v)
        ax.imshow(
            speed,
            origin=origin,
            cmap="Blues",
            extent=(-0.5, n - 0.5, -0.5, n - 0.5) if origin == "lower" else (-0.5, n - 0.5, n - 0.5, -0.5),
        )
        # quiver in display coordinates: with origin="upper" the row axis points down, so escnn's +y (−row) is up
        ax.quiver(xx, yy, u, v if origin == "lower" else -v, angles="xy", scale_units="xy", scale=0.8, width=0.008)
        ax.set_title(title, fontsize=7)
        ax.set_xlabel("column index j  (x →)", fontsize=6)
        ax.set_ylabel("row index i", fontsize=6)
        ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=5, color="#333", va="bottom")
        ax.grid(False)
    style.save(fig, out, "drawn by equidyn.figures.conventions from equidyn.symmetry")
