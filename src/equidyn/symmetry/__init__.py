"""The symmetry spine: the one place that says how each group acts on each kind of field.

Data generation (rotated simulations, level datasets), the models' equivariance tests and the equivariance
metrics all call :meth:`GridGroup.act`; nothing else in equidyn rotates a field.
"""

from __future__ import annotations

from .base import GridGroup
from .c4 import C4
from .d4 import D4
from .layout import FieldLayout
from .octahedral import Octahedral


def group_by_name(name: str) -> GridGroup:
    """``"C4"``, ``"D4"`` (C4 and four mirrors), ``"Oh"`` (48 elements, rotations and reflections) or ``"O"`` (24)."""
    if name == "C4":
        return C4()
    if name == "D4":
        return D4()
    if name in ("Oh", "O"):
        return Octahedral(with_reflections=(name == "Oh"))
    raise ValueError(f"unknown group {name!r}; expected 'C4', 'D4', 'Oh' or 'O'")


__all__ = ["C4", "D4", "FieldLayout", "GridGroup", "Octahedral", "group_by_name"]
