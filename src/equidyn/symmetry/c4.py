"""C4: rotations of a square 2-D grid by multiples of 90 degrees (the symmetry of the smoke-plume studies).

Element ``k`` is the *counter-clockwise* rotation by ``k·90°`` in the physical frame (x along columns, y along
rows, both increasing with the index), about the grid centre. Under it the inflow at ``(x, y) = (32, 5)`` of a
64×64 plume moves to ``(59, 32)`` and the upward buoyancy ``(0, +1)`` becomes ``(-1, 0)``, exactly the second
inflow/force pair of the W22 rotation dataset.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import GridGroup


class C4(GridGroup):
    """The cyclic group of 90° rotations of 2-D grids."""

    name = "C4"
    ndim = 2

    @property
    def order(self) -> int:
        return 4

    def matrix(self, g: int) -> np.ndarray:
        c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][g % 4]
        return np.array([[c, -s], [s, c]], dtype=np.int64)

    def transform_grid(self, x: torch.Tensor, g: int) -> torch.Tensor:
        # out[i, j] = x[N-1-j, i] for g = 1: rot90 from the x axis (-1) towards the y axis (-2).
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"C4 acts on square grids, got {tuple(x.shape[-2:])}")
        return torch.rot90(x, g % 4, dims=(-1, -2))

    def sign(self, g: int) -> float:
        """ψ₂, the 'sign' irrep of C4 (escnn's ``irrep(2)``): the momentum flux ⟨u′v′⟩ transforms like this."""
        return float((-1) ** (g % 4))
