"""How equidyn's arrays map onto escnn's frame, and escnn field types built from a :class:`FieldLayout`.

escnn's 2-D frame has x along +column and y along −row, i.e. it is the mirror image (y ↦ −y) of equidyn's
physical frame (y along +row). A reflection conjugates rotations to their inverses, so:

* a vector ``(u, v)`` in our frame is ``(u, −v)`` in escnn's;
* our rotation by ``k·90°`` is escnn's rotation by ``−k·90°``;
* channel ``c`` of a regular C4 field is escnn's channel ``−c mod 4``;
* scalar, sign and pseudoscalar fields are unchanged. (A pseudoscalar such as the vorticity is, physically, negated
  by the change of frame, since the frame map is a reflection; a constant sign commutes with every group
  element, so the models' equivariance is the same either way and the values are passed as they are.)

Feeding ``(u, v)`` to escnn without this map gives a network that is equivariant to the physical rotation
composed with ``v ↦ −v`` at odd rotations — the defect of the published code ([W22]). The models wrap
their escnn core in :func:`to_escnn` / :func:`from_escnn`, and tests check the correspondence against escnn's own
``GeometricTensor.transform``.
"""

from __future__ import annotations

import torch

from .c4 import C4
from .layout import FieldLayout

_REGULAR_PERM = [0, 3, 2, 1]  # c -> -c mod 4 (an involution, so the same map works both ways)


def escnn_element(k: int) -> int:
    """escnn's C4 element (rotation by that many quarter turns in escnn's frame) for our element ``k``."""
    return (-k) % 4


def escnn_d4_element(g: int) -> tuple[int, int]:
    """escnn's D4 element ``(flip, quarter turns)`` for our D4 element ``g`` (gspace :func:`d4_gspace`).

    Our ``4 + k`` is ``R_k F`` with ``F`` the row mirror, which is also escnn's flip (axis 0) and the frame map
    itself, so conjugating by the frame map turns it into ``R_{−k} F``: escnn's ``(1, −k)``.
    """
    return (int(g >= 4), (-(g % 4)) % 4)


def d4_gspace():
    """``flipRot2dOnR2(4, axis=0)``: its flip is the mirror y ↦ −y, under which ``irrep(1, 1)`` is the vector rep.

    (escnn's default axis π/2 mirrors x on the base space while ``irrep(1, 1)`` still flips the second component,
    so a velocity field would not transform as a vector.)
    """
    from escnn import gspaces

    return gspaces.flipRot2dOnR2(4, axis=0.0)


def _convert(x: torch.Tensor, layout: FieldLayout) -> torch.Tensor:
    # The map is an involution (y ↦ -y), so one function serves both directions.
    group = C4()
    parts, start = [], 0
    for kind, n in layout.blocks:
        d = layout.field_dim(kind, group.ndim, group.order)
        block = x[:, start : start + n * d]
        start += n * d
        if kind == "vector":
            block = block.unflatten(1, (n, 2)) * torch.tensor([1.0, -1.0], dtype=x.dtype, device=x.device).view(
                1, 1, 2, *([1] * (x.dim() - 2))
            )
            block = block.flatten(1, 2)
        elif kind == "regular":
            block = block.unflatten(1, (n, 4))[:, :, _REGULAR_PERM].flatten(1, 2)
        parts.append(block)
    return torch.cat(parts, dim=1)


def to_escnn(x: torch.Tensor, layout: FieldLayout) -> torch.Tensor:
    """Express a tensor of our frame in escnn's frame (components only; the array is not moved)."""
    return _convert(x, layout)


def from_escnn(x: torch.Tensor, layout: FieldLayout) -> torch.Tensor:
    """Inverse of :func:`to_escnn`."""
    return _convert(x, layout)


def escnn_field_type(gspace, layout: FieldLayout):
    """The escnn ``FieldType`` whose representations match ``layout`` block by block (C4 or D4 gspaces).

    On D4 (:func:`d4_gspace`) a vector is ``irrep(1, 1)``, the sign field (the xy-quadrupole, −1 on quarter
    turns and on axis mirrors) ``irrep(1, 2)`` and a pseudoscalar (−1 on the mirrors) ``irrep(1, 0)``; on C4 a
    pseudoscalar is a scalar. ``regular`` fields of D4 are only used inside networks.
    """
    from escnn import nn as enn

    dihedral = gspace.fibergroup.order() == 8
    reps = {
        "scalar": gspace.trivial_repr,
        "vector": gspace.irrep(1, 1) if dihedral else gspace.irrep(1),
        "sign": gspace.irrep(1, 2) if dihedral else gspace.irrep(2),
        "regular": gspace.regular_repr,
        "pseudoscalar": gspace.irrep(1, 0) if dihedral else gspace.trivial_repr,
    }
    if dihedral and any(kind == "regular" for kind, _ in layout.blocks):
        raise ValueError("regular D4 fields at a model's input/output have no frame map; use scalar/vector/sign")
    return enn.FieldType(gspace, [reps[kind] for kind, n in layout.blocks for _ in range(n)])
