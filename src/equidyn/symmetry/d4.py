"""D4: the eight symmetries of a square grid, the four C4 rotations and four reflections (the Coriolis question).

Elements ``0..3`` are C4's rotations by ``k·90°`` (same matrices, same grid action, so C4 ⊂ D4 index by index);
element ``4 + k`` is rotation ``k`` composed with the mirror ``F: (x, y) ↦ (x, −y)`` (F first). Rotations about
the vertical survive an f-plane Coriolis force; reflections do not (Ω = f/2 ẑ is a pseudo-vector), which is what
the tutorial's C4-vs-D4 experiment tests.

The one-dimensional ``sign`` representation is the character of the xy-quadrupole, ``χ(M) = M_xx M_yy + M_xy M_yx``:
how the momentum flux ⟨u′v′⟩ (a product of the x and y components) transforms. It is −1 on quarter turns (C4's
sign irrep, so the same number C4 gives) and on the axis mirrors, +1 on the diagonal mirrors (escnn's D4
``irrep(1, 2)``).
"""

from __future__ import annotations

import numpy as np
import torch

from .base import GridGroup
from .c4 import C4

_MIRROR = np.array([[1, 0], [0, -1]], dtype=np.int64)


class D4(GridGroup):
    """The dihedral group of order 8 acting on square 2-D grids."""

    name = "D4"
    ndim = 2
    #: element names for tables: ``flip_y`` is ``(x, y) ↦ (x, −y)``, ``swap_xy`` ``(x, y) ↦ (y, x)``,
    #: ``flip_x`` ``(x, y) ↦ (−x, y)``, ``swap_neg`` ``(x, y) ↦ (−y, −x)`` (tests/test_pseudoscalar.py checks them)
    ELEMENT_NAMES = ("identity", "rot90", "rot180", "rot270", "flip_y", "swap_xy", "flip_x", "swap_neg")

    def __init__(self) -> None:
        self._c4 = C4()

    @property
    def order(self) -> int:
        return 8

    @staticmethod
    def is_reflection(g: int) -> bool:
        return g >= 4

    def matrix(self, g: int) -> np.ndarray:
        self._check(g)
        rot = self._c4.matrix(g % 4)
        return rot @ _MIRROR if g >= 4 else rot

    def transform_grid(self, x: torch.Tensor, g: int) -> torch.Tensor:
        # g = R_k F: (g·x)(p) = x(F⁻¹ R_k⁻¹ p), i.e. mirror the rows first (y ↦ −y about the centre), then rotate.
        self._check(g)
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"D4 acts on square grids, got {tuple(x.shape[-2:])}")
        if g >= 4:
            x = torch.flip(x, dims=(-2,))
        return self._c4.transform_grid(x, g % 4)

    def sign(self, g: int) -> float:
        m = self.matrix(g)
        return float(m[0, 0] * m[1, 1] + m[0, 1] * m[1, 0])

    def _check(self, g: int) -> None:
        if not 0 <= g < 8:
            raise ValueError(f"D4 has elements 0..7, got {g}")
