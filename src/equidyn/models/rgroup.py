"""RGroup: W22's relaxed C4 group convolution network, with exact kernel rotations and a real nonlinearity.

A *group convolution* maps ``I`` regular fields to ``O`` regular fields with the kernel
``K[(o, g), (i, h)](y) = ψ[o, i](g⁻¹h)(g⁻¹y)``: one base kernel ``ψ[o]`` (itself ``I`` regular fields on the
kernel stencil) per output field, transformed by every group element ``g``. That is exactly
``K[(o, g)] = C4().act(g, ψ[o], "I regular")`` — the spine's ``rot90`` plus the regular channel shift — so the
filter is exact in floating point and twice differentiable (Hessian-vector products by double backward are
tested). [W22] records that the published model rotated kernels by bilinear ``grid_sample`` (off by
round-off, as ``cos(π/2) ≠ 0`` in floating point, and in the way of Hessians) and had no nonlinearity, so the
whole "network" was linear.

The *relaxed* version (W22 §4) has ``L`` filter banks and learnable weights ``w_l(h)`` over the **input**
group element: ``Ψ(g, h) = Σ_l w_l(h) Ψ_l(g⁻¹h)``. With ``w_l`` constant over ``h`` it is a group convolution,
so the weights start equal (``w = 1``) and the network starts exactly equivariant; :meth:`RGroup.regularizer`
is ``Σ_layers Σ_l Σ_{g,h} |w_l(g) − w_l(h)|``, zero iff every layer is equivariant, and the trainer adds it
linearly times alpha.

Velocity enters as a regular field through the fixed intertwiner ``f(i) = c (a cos 2πi/4 + b sin 2πi/4)`` and
leaves through its transpose (:func:`regular_intertwiner`). Between layers: a per-field batch normalisation
(statistics shared by a field's 4 channels) and ReLU, both of which commute with channel permutations, and a
bias per regular field (a per-channel bias would break the symmetry).
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..symmetry import C4, FieldLayout, GridGroup
from .base import FieldModel, ModelSpec
from .registry import register
from .regular_norm import RegularBatchNorm2d
from .smoke2d import check_2d

__all__ = [
    "RGroup",
    "RegularBatchNorm2d",
    "RegularLift",
    "RegularProjection",
    "RelaxedGroupConv2d",
    "regular_intertwiner",
]


def regular_intertwiner(group: GridGroup, layout: FieldLayout) -> torch.Tensor:
    """The isometric lift of every field of ``layout`` into one regular field: ``M`` of shape ``(|G|·n, C)``.

    For a field of kind ``k`` with representation ``ρ`` (dimension ``d``), row ``i`` of its block is
    ``√(d/|G|) · (ρ(g_i) u)ᵀ`` with ``u`` the first basis vector, i.e. ``f(i) = √(d/|G|) ⟨ρ(g_i) u, v⟩``. For
    a C4 vector this is W22's ``f(i) = c (a cos 2πi/4 + b sin 2πi/4)`` with ``c = 1/√2``; for a scalar the
    constant ``s/2``, for the sign field ``(−1)ⁱ s/2``, for a regular field the identity. It intertwines,
    ``ρ_reg(g) M = M ρ(g)``, because ``⟨ρ(g_i)u, ρ(g)v⟩ = ⟨ρ(g⁻¹g_i)u, v⟩`` (ρ orthogonal), and ``c`` makes it
    an isometry, ``MᵀM = I`` (Schur), so ``Mᵀ`` is the equivariant projection back. W22 learned ``c`` per
    input frame; a scale per input field is absorbed by the next convolution's weights, so a fixed ``c`` loses
    nothing.
    """
    blocks = []
    for kind, n in layout.blocks:
        d = layout.field_dim(kind, group.ndim, group.order)
        u = np.eye(d)[:, 0]
        block = np.stack([group.fiber(kind, g) @ u for g in group.elements]) * math.sqrt(d / group.order)
        blocks += [block] * n
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    m = np.zeros((rows, cols))
    r = c = 0
    for b in blocks:
        m[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return torch.as_tensor(m, dtype=torch.float32)


class RegularLift(nn.Module):
    """Fields of ``layout`` (e.g. ``10 vector``) → as many regular fields; pointwise, no parameters."""

    def __init__(self, group: GridGroup, layout: FieldLayout) -> None:
        super().__init__()
        self.register_buffer("matrix", regular_intertwiner(group, layout), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.matrix.to(x.dtype)[:, :, None, None])


class RegularProjection(nn.Module):
    """Regular fields → fields of ``layout``: the transpose (and left inverse) of :class:`RegularLift`."""

    def __init__(self, group: GridGroup, layout: FieldLayout) -> None:
        super().__init__()
        self.register_buffer("matrix", regular_intertwiner(group, layout).T.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.matrix.to(x.dtype)[:, :, None, None])


class RelaxedGroupConv2d(nn.Module):
    """Relaxed C4 group convolution from ``in_fields`` to ``out_fields`` regular fields with ``banks`` banks.

    Parameters: base kernels ``ψ_l`` of shape ``(L, O, I·4, k, k)``, relaxed weights ``w`` of shape ``(L, 4)``
    (initialised to 1: exactly equivariant) and one bias per output field. The full ``(O·4, I·4, k, k)``
    filter is built once per call — the four spine-rotated copies of every bank stacked and bank-summed — and
    applied with a single ``conv2d``, so a step costs about what a plain convolution of that size does.
    Nothing is cached, so in-place perturbations (sharpness) and functional substitutions (Hessians) always
    take effect.
    """

    def __init__(
        self,
        in_fields: int,
        out_fields: int,
        kernel_size: int = 3,
        banks: int = 3,
        bias: bool = True,
        gain: float = 2.0,
    ) -> None:
        super().__init__()
        if banks < 1:
            raise ValueError(f"filter_banks must be >= 1, got {banks}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd so 'same' padding is symmetric, got {kernel_size}")
        self.group = C4()
        self.in_fields, self.out_fields = in_fields, out_fields
        self.banks, self.kernel_size = banks, kernel_size
        self.in_layout = FieldLayout.of(("regular", in_fields))
        n = self.group.order
        # He-style: the bank sum of L independent kernels (w = 1) has the variance of one of fan-in I·4·k².
        std = math.sqrt(gain / (in_fields * n * kernel_size**2 * banks))
        shape = (banks, out_fields, in_fields * n, kernel_size, kernel_size)
        self.base = nn.Parameter(torch.randn(shape) * std)
        self.relaxed_weights = nn.Parameter(torch.ones(banks, n))
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None

    def expand_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Filter ``K[(o, g), (i, h)] = Σ_l w_l(h) act(g, ψ_l[o])[(i, h)]``; the bias repeated per channel."""
        banks, n_out, n_in, k = self.banks, self.out_fields, self.in_fields, self.kernel_size
        n = self.group.order
        flat = self.base.reshape(banks * n_out, n_in * n, k, k)
        orbit = torch.stack([self.group.act(g, flat, self.in_layout) for g in self.group.elements], dim=1)
        orbit = orbit.view(banks, n_out, n, n_in, n, k, k)  # (l, o, g, i, h, ky, kx)
        filt = torch.einsum("loGihyx,lh->oGihyx", orbit, self.relaxed_weights)
        bias = None if self.bias is None else self.bias.repeat_interleave(n)
        return filt.reshape(n_out * n, n_in * n, k, k), bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        filt, bias = self.expand_parameters()
        return F.conv2d(x, filt, bias, padding=self.kernel_size // 2)

    def relaxation_penalty(self) -> torch.Tensor:
        """``Σ_l Σ_{g,h} |w_l(g) − w_l(h)|`` over ordered pairs: zero iff the layer is a group convolution."""
        w = self.relaxed_weights
        return (w[:, :, None] - w[:, None, :]).abs().sum()


def _regular_fields_for(layout: FieldLayout) -> int:
    """Number of regular fields that :class:`RegularLift` makes of ``layout`` (one per field)."""
    return sum(n for _, n in layout.blocks)


@register("rgroup")
class RGroup(FieldModel):
    """Relaxed C4 group CNN (W22 "RGroup"): lift → [group conv → norm → ReLU] × (layers−1) → conv → project.

    ``spec.hidden`` regular fields per hidden layer, ``spec.layers`` group convolutions in all;
    ``spec.options["filter_banks"]`` (default 3, W22's best). The last convolution has no bias: a bias is
    constant over a regular field, and the projection sends constant fields to zero for vector outputs.
    """

    has_regularizer = True
    equivariant_to = None  # relaxed: exactly C4-equivariant only while the bank weights are equal
    OPTIONS: ClassVar[dict[str, int]] = {"filter_banks": 3}

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        unknown = set(spec.options) - set(self.OPTIONS)
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)} for 'rgroup'; known: {sorted(self.OPTIONS)}")
        super().__init__(spec, C4())
        banks = int(spec.options.get("filter_banks", self.OPTIONS["filter_banks"]))
        k, h = spec.kernel_size, spec.hidden
        widths = [_regular_fields_for(spec.in_layout)] + [h] * (spec.layers - 1)
        blocks: list[nn.Module] = [RegularLift(self.group, spec.in_layout)]
        for f_in, f_out in itertools.pairwise(widths):
            blocks += [RelaxedGroupConv2d(f_in, f_out, k, banks), RegularBatchNorm2d(f_out), nn.ReLU()]
        n_out = _regular_fields_for(spec.out_layout)
        blocks.append(RelaxedGroupConv2d(h, n_out, k, banks, bias=False, gain=1.0))
        blocks.append(RegularProjection(self.group, spec.out_layout))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def group_convs(self) -> list[RelaxedGroupConv2d]:
        return [m for m in self.modules() if isinstance(m, RelaxedGroupConv2d)]

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([conv.relaxation_penalty() for conv in self.group_convs()]).sum()
