"""Channel layouts: which group representation each block of channels of a feature tensor carries.

A feature tensor has shape ``(batch, channels, *grid)``. Its channels are consecutive *blocks*, each holding
``n`` fields of one *kind*; a field of kind ``vector`` occupies ``group.ndim`` consecutive channels (its components
in x, y[, z] order), a ``regular`` field ``group.order`` channels, ``scalar``, ``sign`` and ``pseudoscalar`` fields
one channel. A ``pseudoscalar`` (2-D vorticity ``∂x v − ∂y u``, 3-D helicity) moves with the grid like a scalar and
is multiplied by ``det ρ(g)``: unchanged by rotations, negated by reflections, because it is defined through an
orientation (the curl) that a reflection reverses.
Keeping this description explicit (rather than "the first 2k channels are vectors" conventions scattered over the
code) is what lets data generation, models and metrics share one group action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("scalar", "vector", "regular", "sign", "pseudoscalar")


@dataclass(frozen=True)
class FieldLayout:
    """An ordered tuple of ``(kind, multiplicity)`` blocks, e.g. ``FieldLayout.parse("10 vector")``."""

    blocks: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        for kind, n in self.blocks:
            if kind not in KINDS:
                raise ValueError(f"unknown field kind {kind!r}; expected one of {KINDS}")
            if n < 1:
                raise ValueError(f"field block {kind!r} needs a positive multiplicity, got {n}")

    @classmethod
    def of(cls, *blocks: tuple[str, int]) -> FieldLayout:
        return cls(tuple(blocks))

    @classmethod
    def parse(cls, spec: str) -> FieldLayout:
        """Parse ``"10 vector + 1 scalar"`` (multiplicity optional, default 1)."""
        blocks = []
        for part in spec.split("+"):
            m = re.fullmatch(r"\s*(?:(\d+)\s*[x*]?\s*)?([a-z]+)\s*", part)
            if not m:
                raise ValueError(f"cannot parse field layout {spec!r} at {part!r}")
            blocks.append((m.group(2), int(m.group(1) or 1)))
        return cls(tuple(blocks))

    def field_dim(self, kind: str, ndim: int, order: int) -> int:
        return {"scalar": 1, "sign": 1, "pseudoscalar": 1, "vector": ndim, "regular": order}[kind]

    def channels(self, ndim: int, order: int) -> int:
        """Number of tensor channels for a group acting on ``ndim``-D grids with ``order`` elements."""
        return sum(n * self.field_dim(kind, ndim, order) for kind, n in self.blocks)

    def __str__(self) -> str:
        return " + ".join(f"{n} {kind}" for kind, n in self.blocks)
