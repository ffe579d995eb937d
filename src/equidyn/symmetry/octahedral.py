"""O_h and O: the symmetries of a cubic grid (the 3-D super-resolution study, [W24, BLOG]).

O_h is the group of the 48 signed permutation matrices of ``(x, y, z)``: every 90° rotation about a coordinate
axis, their compositions, and their compositions with the inversion ``p ↦ -p``. O is its chiral subgroup of
the 24 with determinant +1 (proper rotations only). Both act on a cubic grid *exactly*: the grid part is a
``permute`` of the trailing ``(z, y, x)`` axes followed by ``flip`` s, and the fibre part a signed permutation
of the vector components — no interpolation, so the action is exact in floating point and differentiable to
any order. (The published GCNN used O and treated velocity components as scalars, so it was not equivariant to
rotations of a velocity field, [W24, BLOG]; here vectors always rotate with the grid.)

Element order is deterministic: the 24 rotations come first, enumerated as (axis permutation in
``itertools.permutations`` order) × (sign pattern in ``itertools.product((1, -1))`` order), keeping
determinant +1; for O_h element ``24 + k`` is the inversion composed with rotation ``k``. So element 0 is the
identity, and element ``k < 24`` is the same matrix in O and O_h (O ⊂ O_h index by index).
"""

from __future__ import annotations

import itertools
from functools import cached_property

import numpy as np
import torch

from .base import GridGroup

_AXES = {"x": 0, "y": 1, "z": 2}


def _rotation_matrices() -> list[np.ndarray]:
    """The 24 proper signed permutation matrices of (x, y, z), identity first."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            for i in range(3):
                m[i, perm[i]] = signs[i]
            if round(np.linalg.det(m)) == 1:
                mats.append(m)
    return mats


class Octahedral(GridGroup):
    """The full octahedral group O_h (``with_reflections=True``, 48 elements) or its rotation subgroup O (24).

    ``matrix(g)`` is ``M`` with ``(M p)_i = s_i p_{π(i)}`` on physical coordinates ``p = (x, y, z)``;
    ``transform_grid`` realises ``out(p) = x(M⁻¹ p)`` about the grid centre on tensors whose trailing axes
    are ``(z, y, x)``.
    """

    ndim = 3

    def __init__(self, with_reflections: bool) -> None:
        self.with_reflections = bool(with_reflections)
        self.name = "Oh" if self.with_reflections else "O"
        rotations = _rotation_matrices()
        mats = rotations + [-m for m in rotations] if self.with_reflections else rotations
        self._mats = np.stack(mats)
        # Per element: π (which input coordinate feeds output coordinate i) and the signs s_i.
        self._perm = [tuple(int(np.flatnonzero(m[i])[0]) for i in range(3)) for m in mats]
        self._signs = [tuple(int(m[i, self._perm[k][i]]) for i in range(3)) for k, m in enumerate(mats)]

    @property
    def order(self) -> int:
        return len(self._mats)

    def matrix(self, g: int) -> np.ndarray:
        self._check(g)
        return self._mats[g].copy()

    def sign(self, g: int) -> float:
        """The determinant (±1): the parity of a pseudo-scalar such as helicity under O_h."""
        self._check(g)
        return float(round(np.linalg.det(self._mats[g])))

    def transform_grid(self, x: torch.Tensor, g: int) -> torch.Tensor:
        """``out(p) = x(M⁻¹ p)`` on the trailing ``(z, y, x)`` axes, about the centre of a cubic grid.

        Equivalently ``out(M p) = x(p)``: output coordinate ``i`` is ``s_i`` times input coordinate ``π(i)``.
        So output axis ``i`` is input axis ``π(i)`` (a ``permute``), reversed where ``s_i = -1`` (a ``flip``,
        which maps index ``j`` to ``n-1-j``, i.e. coordinate ``c`` to ``-c`` about the centre).
        """
        self._check(g)
        if x.ndim < 3 or not (x.shape[-1] == x.shape[-2] == x.shape[-3]):
            raise ValueError(f"{self.name} acts on cubic grids (..., n, n, n), got shape {tuple(x.shape)}")
        perm, signs = self._perm[g], self._signs[g]
        lead = x.ndim - 3
        # coordinate i (x=0, y=1, z=2) lives on tensor axis lead + 2 - i
        dims = list(range(lead)) + [lead + 2 - perm[2 - k] for k in range(3)]
        out = x.permute(dims) if dims != list(range(x.ndim)) else x
        flips = [lead + 2 - i for i in range(3) if signs[i] < 0]
        return torch.flip(out, flips) if flips else out

    def rotation(self, axis: str, quarter_turns: int) -> int:
        """The element rotating by ``quarter_turns · 90°`` counter-clockwise (right-handed) about ``+axis``.

        About ``"z"`` this is C4's element ``quarter_turns`` acting on every z-slice (x → y for one turn).
        """
        if axis not in _AXES:
            raise ValueError(f"axis must be one of 'x', 'y', 'z', got {axis!r}")
        a = _AXES[axis]
        b, c = (a + 1) % 3, (a + 2) % 3  # right-handed cycle: x→y about z, y→z about x, z→x about y
        cos, sin = [(1, 0), (0, 1), (-1, 0), (0, -1)][quarter_turns % 4]
        m = np.zeros((3, 3), dtype=np.int64)
        m[a, a] = 1
        m[b, b], m[b, c], m[c, b], m[c, c] = cos, -sin, sin, cos
        return self.element_of(m)

    @cached_property
    def _regular(self) -> np.ndarray:
        return np.stack([super(Octahedral, self).regular_matrix(g) for g in self.elements])

    def regular_matrix(self, g: int) -> np.ndarray:
        """As :meth:`GridGroup.regular_matrix`, computed once per element (from the Cayley table)."""
        self._check(g)
        return self._regular[g].copy()

    def _check(self, g: int) -> None:
        if not 0 <= g < len(self._mats):
            raise ValueError(f"{self.name} has elements 0..{len(self._mats) - 1}, got {g}")
