"""Batch normalisation of regular fields, one class for 2-D and 3-D grids.

Per-channel statistics would differ between the channels that a group element permutes into each other, breaking
equivariance. Pooled over a regular field's ``|G|`` channels (and, as usual, batch and space), the statistics — and
one affine pair per field — are invariant under the action, so the layer is equivariant in train and eval mode
alike (escnn's InnerBatchNorm). ``tests/test_rgroup.py`` and ``tests/test_superres_models.py`` check it through the
models that use it.
"""

from __future__ import annotations

import torch
from torch import nn


class RegularBatchNorm(nn.Module):
    """Batch norm of ``fields`` regular fields of ``order`` channels each, on a ``ndim``-dimensional grid."""

    def __init__(self, fields: int, order: int, ndim: int, momentum: float = 0.1) -> None:
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"regular batch norm is defined on 2-D and 3-D grids, not {ndim}-D")
        self.fields, self.order, self.ndim = fields, order, ndim
        self.norm = (nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d)(fields, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, first, *rest = x.shape
        if c != self.fields * self.order or len(rest) != self.ndim - 1:
            raise ValueError(
                f"expected (batch, {self.fields}×{self.order}, {self.ndim} grid dims), got {tuple(x.shape)}"
            )
        # fold each field's |G| channels into the first grid axis: BatchNorm then pools over them
        return self.norm(x.reshape(b, self.fields, self.order * first, *rest)).view(x.shape)


class RegularBatchNorm2d(RegularBatchNorm):
    """:class:`RegularBatchNorm` on a 2-D grid (C4 by default)."""

    def __init__(self, fields: int, order: int = 4, momentum: float = 0.1) -> None:
        super().__init__(fields, order, 2, momentum)


class RegularBatchNorm3d(RegularBatchNorm):
    """:class:`RegularBatchNorm` on a 3-D grid (O_h: order 48, O: 24)."""

    def __init__(self, fields: int, order: int, momentum: float = 0.1) -> None:
        super().__init__(fields, order, 3, momentum)
