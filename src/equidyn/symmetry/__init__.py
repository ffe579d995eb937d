"""The symmetry spine: the one place that says how each group acts on each kind of field.

Data generation (rotated simulations, level datasets), the models' equivariance tests and the equivariance
metrics all call :meth:`GridGroup.act`; nothing else in equidyn rotates a field.
"""

from __future__ import annotations

from .base import GridGroup
from .c4 import C4
from .layout import FieldLayout
from .octahedral import Octahedral


def group_by_name(name: str) -> GridGroup:
    """``"C4"``, ``"Oh"`` (48 elements, rotations and reflections) or ``"O"`` (24 rotations)."""
    if name == "C4":
        return C4()
    if name in ("Oh", "O"):
        return Octahedral(with_reflections=(name == "Oh"))
    raise ValueError(f"unknown group {name!r}; expected 'C4', 'Oh' or 'O'")


__all__ = ["C4", "FieldLayout", "GridGroup", "Octahedral", "group_by_name"]
