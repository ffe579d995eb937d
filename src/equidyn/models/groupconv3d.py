"""Exact group convolutions over O_h / O on 3-D grids, strict or relaxed, built from the symmetry spine.

A convolution with kernel ``K`` (PyTorch's cross-correlation, ``out(x) = Σ_y K(y) f(x + y)``) maps fields of
representation ``ρ_in`` to fields of ``ρ_out`` equivariantly iff ``K(M_g y) = ρ_out(g) K(y) ρ_in(g)⁻¹`` for
every ``g``. Every layer here satisfies this *by construction*, by transforming free base kernels with
:meth:`GridGroup.act` — the same exact ``permute``/``flip`` + signed-channel-permutation action that
transforms the data. No kernel is ever interpolated, so filters are exact and twice differentiable (the
published relaxed models rotated kernels with ``grid_sample``, [W22]).

* **Lift** (any field layout → ``n regular``): ``K[(o, g)] = act(g, B[o], in_layout)`` — one base kernel per
  output field, transformed by every group element. For vector inputs this is the vector→regular constraint,
  so velocity enters as a vector field, not as three scalars (the published GCNN's defect, [W24, BLOG]).
* **Group convolution** (``n regular`` → ``m regular``): ``Ψ(g, h)(y) = ψ(g⁻¹h)(g⁻¹y)``, i.e. the lift formula
  with ``in_layout = n regular``. *Separable* (default): ``ψ[o, i, k](y) = a[o, i, k] · s[o](y)``, computed as
  a pointwise group-mixing convolution followed by a depthwise spatial one — ``|G|·n·m + 27·m`` parameters
  instead of ``27·|G|·n·m``, and about ``27×`` fewer multiply-adds, which is what makes O_h (48 channels per
  field) fit the BLOG parameter budgets and a GPU's memory at 64³.
* **Projection** (``n regular`` → any layout): ``K[:, (i, h)] = act(h, B[i], out_layout)`` — the transpose of
  the lift; velocity leaves as a vector field.

**Relaxed** layers (W24 RGCNN, [W22, W24]) use ``L`` filter banks and per-bank weights over the group:
``Ψ(g, h) = Σ_l w_l(h) Ψ_l(g⁻¹h)`` with ``h`` the *input* group element (for the lift, which has no input
group axis, ``w_l(g)`` weights the output element). ``w`` starts constant over the group, so a relaxed layer
starts exactly equivariant; :meth:`relaxation_penalty` is ``Σ_l Σ_{g,h} |w_l(g) − w_l(h)|``, zero iff it is.
The banks of a separable relaxed convolution share the spatial factor ``s`` (the relaxation lives in the group
mixing), so it costs the same per forward as the strict one.

No layer caches its expanded filter: :meth:`expand_parameters` rebuilds it from the parameters on every call,
so in-place perturbations (sharpness) and functional substitutions (Hessians) always take effect.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..symmetry import FieldLayout, GridGroup


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Trilinear ×2 up-sampling with ``align_corners=False``: exactly O_h-equivariant.

    Fine voxel ``j`` reads coarse coordinate ``(j + 0.5)/2 − 0.5``, an affine map that sends the coarse grid's
    centre to the fine grid's and commutes with ``j ↦ n−1−j``; the 1-D rule is the same on every axis, and
    edge clamping is symmetric. So it commutes with every ``permute``/``flip`` (and acts per channel, so with
    every channel permutation). A stride-2 transposed convolution with padding 1 / output padding 1, as
    published, maps coarse voxel ``i`` to fine voxel ``2i`` — half a fine voxel off-centre, so rotations shift
    its output by one voxel ([W24, BLOG]; ``tests/test_superres_models.py`` shows both).
    """
    return F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)


def spine_orbit_index(
    group: GridGroup, layout: FieldLayout, kernel: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather map of the orbit ``{act(g, b, layout)}_g`` of one base kernel ``b`` of shape ``(C, *kernel)``.

    Returns ``index`` (long) and ``sign`` (±1), both of shape ``(|G|, C, *kernel)``, with ``act(g, b, layout)
    == b.flatten()[index[g]] * sign[g]``. They are computed by applying the spine's ``act`` to a tensor
    holding ``±(position + 1)`` in float64: the action is a signed permutation, so the result encodes,
    exactly, where each entry comes from and with which sign. One gather then expands a whole bank of kernels
    per forward, instead of ``|G|`` calls of ``act``.
    """
    channels = group.channels(layout)
    size = channels * math.prod(kernel)
    code = torch.arange(1, size + 1, dtype=torch.float64).view(1, channels, *kernel)
    orbit = torch.cat([group.act(g, code, layout) for g in group.elements])
    index = orbit.abs().round().long() - 1
    every_entry_once = torch.arange(size).expand(group.order, size)
    if not torch.equal(torch.sort(index.flatten(1), dim=1).values, every_entry_once):  # cannot happen
        raise AssertionError(f"{group.name} action on '{layout}' is not a signed permutation")
    return index, torch.sign(orbit)


class _DepthwiseConv3d(torch.autograd.Function):
    """Depthwise 'same' convolution with a fast input gradient; differentiable to any order.

    On CPU, PyTorch's backward of a grouped 3-D convolution costs 4–5× its forward. For stride 1 and 'same'
    zero padding the input gradient *is* a depthwise correlation with the flipped kernel, so it is computed by
    this same function (and is again differentiable); the weight gradient is ATen's own (differentiable)
    ``convolution_backward``. Forward + backward runs 1.2–1.7× faster than PyTorch's own (measured at the
    demo and paper sizes), and Hessian-vector products run through it (``gradgradcheck`` passes).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # Under autocast (training.amp) the convolution runs in the autocast dtype; the backward runs outside
        # autocast, so it must see the tensors in that dtype too, not the float32 originals (issue 14).
        device = x.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            x, weight = x.to(dtype), weight.to(dtype)
        ctx.save_for_backward(x, weight)
        return F.conv3d(x, weight, padding=weight.shape[-1] // 2, groups=weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _DepthwiseConv3d.apply(grad, weight.flip(2, 3, 4))
        if ctx.needs_input_grad[1]:
            pad = [weight.shape[-1] // 2] * 3
            grad_w = torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                None,
                [1, 1, 1],
                pad,
                [1, 1, 1],
                False,
                [0, 0, 0],
                weight.shape[0],
                [False, True, False],
            )[1]
        return grad_x, grad_w


def depthwise_conv3d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv3d(x, weight, padding=k // 2, groups=C)`` for ``weight`` ``(C, 1, k, k, k)``, ``k`` odd."""
    if weight.shape[1] != 1 or weight.shape[0] != x.shape[1] or weight.shape[-1] % 2 != 1:
        raise ValueError(f"depthwise kernel {tuple(weight.shape)} does not fit input {tuple(x.shape)}")
    return _DepthwiseConv3d.apply(x, weight)


def pointwise_conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1×1×1 convolution with ``weight`` ``(C_out, C_in)`` (oneDNN: faster on CPU than a matmul)."""
    return F.conv3d(x, weight[:, :, None, None, None], bias)


class _Orbit(nn.Module):
    """Expands base kernels ``(..., rows, C, *kernel)`` to their orbits ``(..., rows, |G|, C, *kernel)``."""

    def __init__(self, group: GridGroup, layout: FieldLayout, kernel: tuple[int, ...]) -> None:
        super().__init__()
        index, sign = spine_orbit_index(group, layout, kernel)
        self.register_buffer("index", index.flatten(), persistent=False)
        self.register_buffer("sign", sign.flatten(), persistent=False)
        self.shape = tuple(index.shape)

    def forward(self, base: torch.Tensor) -> torch.Tensor:
        lead = base.shape[: base.ndim - len(self.shape) + 1]
        flat = base.reshape(*lead, -1)
        out = flat.index_select(-1, self.index) * self.sign.to(base.dtype)
        return out.view(*lead, *self.shape)


class _Relaxation(nn.Module):
    """The relaxed weights ``w_l(g)`` of one layer, ``(banks, |G|)``, initialised constant (equivariant)."""

    def __init__(self, banks: int, order: int) -> None:
        super().__init__()
        if banks < 1:
            raise ValueError(f"filter_banks must be >= 1, got {banks}")
        self.weights = nn.Parameter(torch.ones(banks, order))

    def penalty(self) -> torch.Tensor:
        """``Σ_l Σ_{g,h} |w_l(g) − w_l(h)|`` over all ordered pairs (W24's regulariser, [W22])."""
        w = self.weights
        return (w[:, :, None] - w[:, None, :]).abs().sum()


class _GroupLayer(nn.Module):
    """Shared bookkeeping: the group, the banks (``None``: strict), and the relaxation penalty."""

    def __init__(self, group: GridGroup, kernel_size: int, banks: int | None) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (a centred stencil), got {kernel_size}")
        self.group = group
        self.order = group.order
        self.kernel_size = kernel_size
        self.n_banks = 1 if banks is None else int(banks)
        self.relaxation = None if banks is None else _Relaxation(self.n_banks, group.order)

    @property
    def relaxed(self) -> bool:
        return self.relaxation is not None

    def relaxation_penalty(self) -> torch.Tensor:
        if self.relaxation is None:
            raise RuntimeError("a strict group convolution has no relaxation penalty")
        return self.relaxation.penalty()

    def _bank_sum(self, orbits: torch.Tensor, axis: int) -> torch.Tensor:
        """``Σ_l w_l(·) orbits[l]`` with ``w`` broadcast along the group axis ``axis`` of ``orbits[l]``."""
        if self.relaxation is None:
            return orbits[0]
        w = self.relaxation.weights
        shape = [w.shape[0]] + [1] * (orbits.ndim - 1)
        shape[axis + 1] = w.shape[1]
        return (orbits * w.view(shape)).sum(0)

    def _kernel3(self) -> tuple[int, int, int]:
        return (self.kernel_size,) * 3


class LiftConv3d(_GroupLayer):
    """Fields of any layout (e.g. velocity as ``3 vector``) → ``out_fields`` regular fields.

    ``K[(o, g)] = Σ_l w_l(g) act(g, B_l[o], in_layout)``; one bias per regular field, shared by its ``|G|``
    channels (a per-channel bias would break the symmetry).
    """

    def __init__(
        self,
        group: GridGroup,
        in_layout: FieldLayout,
        out_fields: int,
        kernel_size: int = 3,
        banks: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(group, kernel_size, banks)
        self.in_layout = in_layout
        self.in_channels = group.channels(in_layout)
        self.out_fields = out_fields
        self.orbit = _Orbit(group, in_layout, self._kernel3())
        fan_in = self.in_channels * kernel_size**3
        std = math.sqrt(2.0 / fan_in / self.n_banks)
        shape = (self.n_banks, out_fields, self.in_channels, *self._kernel3())
        self.base = nn.Parameter(torch.randn(shape) * std)
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None

    def expand_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Filter ``(out_fields·|G|, C_in, k, k, k)`` and the expanded bias."""
        filt = self._bank_sum(self.orbit(self.base), axis=1)  # (o, g, C_in, k, k, k); relaxed over output g
        bias = None if self.bias is None else self.bias.repeat_interleave(self.order)
        return filt.flatten(0, 1), bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        filt, bias = self.expand_parameters()
        return F.conv3d(x, filt, bias, padding=self.kernel_size // 2)


class GroupConv3d(_GroupLayer):
    """``in_fields`` regular fields → ``out_fields`` regular fields, separable (default) or full.

    Separable: ``Ψ(g, h)(y) = Σ_l w_l(h) a_l[o, i, g⁻¹h] · s[o](g⁻¹y)``, applied as :meth:`pointwise` (group
    mixing, with the bias) then :meth:`spatial` (depthwise, one kernel per output field transformed by each
    ``g``). Both steps are equivariant, so their composition is. Full: ``Ψ_l(k)(y)`` is free per
    ``(o, i, k)`` (``27·|G|`` parameters per field pair).
    """

    def __init__(
        self,
        group: GridGroup,
        in_fields: int,
        out_fields: int,
        kernel_size: int = 3,
        separable: bool = True,
        banks: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(group, kernel_size, banks)
        self.in_fields, self.out_fields, self.separable = in_fields, out_fields, separable
        in_layout = FieldLayout.of(("regular", in_fields))
        n, k3 = group.order, kernel_size**3
        if separable:
            self.mix_orbit = _Orbit(group, in_layout, (1, 1, 1))
            self.space_orbit = _Orbit(group, FieldLayout.of(("scalar", 1)), self._kernel3())
            mix_std = math.sqrt(2.0 / (in_fields * n) / self.n_banks)
            self.mix = nn.Parameter(torch.randn(self.n_banks, out_fields, in_fields * n, 1, 1, 1) * mix_std)
            self.space = nn.Parameter(torch.randn(out_fields, 1, *self._kernel3()) / math.sqrt(k3))
        else:
            self.orbit = _Orbit(group, in_layout, self._kernel3())
            std = math.sqrt(2.0 / (in_fields * n * k3) / self.n_banks)
            shape = (self.n_banks, out_fields, in_fields * n, *self._kernel3())
            self.base = nn.Parameter(torch.randn(shape) * std)
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None

    def _input_weighted(self, orbits: torch.Tensor) -> torch.Tensor:
        """Bank sum with ``w_l(h)`` on the *input* group element ``h`` (orbits: ``(L, o, g, i·|G|, ...)``)."""
        if self.relaxation is None:
            return orbits[0]
        shape = orbits.shape
        split = orbits.view(*shape[:3], self.in_fields, self.order, *shape[4:])
        return self._bank_sum(split, axis=3).flatten(2, 3)  # (o, g, i, h, ...): h is axis 3

    def expand_parameters(self) -> dict[str, torch.Tensor | None]:
        """Separable: ``mix`` ``(o·|G|, i·|G|)`` and ``space`` ``(o·|G|, 1, k, k, k)``; full: ``filter``."""
        bias = None if self.bias is None else self.bias.repeat_interleave(self.order)
        if self.separable:
            mix = self._input_weighted(self.mix_orbit(self.mix)).flatten(0, 1).flatten(1)
            space = self.space_orbit(self.space).flatten(0, 1)  # (o, g, 1, k, k, k) -> (o·g, 1, k, k, k)
            return {"mix": mix, "space": space, "bias": bias}
        return {"filter": self._input_weighted(self.orbit(self.base)).flatten(0, 1), "bias": bias}

    def pointwise(self, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """The group-mixing step of a separable convolution (a 1×1×1 convolution, plus the bias)."""
        p = params or self.expand_parameters()
        return pointwise_conv3d(x, p["mix"], p["bias"])

    def spatial(self, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """The depthwise spatial step of a separable convolution."""
        p = params or self.expand_parameters()
        return depthwise_conv3d(x, p["space"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.expand_parameters()
        if self.separable:
            return self.spatial(self.pointwise(x, p), p)
        return F.conv3d(x, p["filter"], p["bias"], padding=self.kernel_size // 2)

    def forward_upsampled(self, x: torch.Tensor, x_up: torch.Tensor) -> torch.Tensor:
        """``self(upsample2(x))``, given ``x_up = upsample2(x)``.

        A separable convolution mixes at the coarse resolution and up-samples the result: the pointwise mixing
        and the per-channel trilinear up-sampling are linear maps on different axes, so they commute (and the
        up-sampling keeps the constant bias). Same function, 8× fewer multiply-adds in the mixing.
        """
        if not self.separable:
            return self(x_up)
        p = self.expand_parameters()
        return self.spatial(upsample2(self.pointwise(x, p)), p)


class ProjectConv3d(_GroupLayer):
    """``in_fields`` regular fields → fields of any layout (e.g. the velocity, ``1 vector``).

    ``K[:, (i, h)] = Σ_l w_l(h) act(h, B_l[i], out_layout)``: the transpose of the lift. No bias: the only
    O_h-invariant constant vector is zero.
    """

    def __init__(
        self,
        group: GridGroup,
        in_fields: int,
        out_layout: FieldLayout,
        kernel_size: int = 3,
        banks: int | None = None,
    ) -> None:
        super().__init__(group, kernel_size, banks)
        self.in_fields, self.out_layout = in_fields, out_layout
        self.out_channels = group.channels(out_layout)
        self.orbit = _Orbit(group, out_layout, self._kernel3())
        std = math.sqrt(1.0 / (in_fields * group.order * kernel_size**3) / self.n_banks)
        shape = (self.n_banks, in_fields, self.out_channels, *self._kernel3())
        self.base = nn.Parameter(torch.randn(shape) * std)

    def expand_parameters(self) -> torch.Tensor:
        """Filter ``(C_out, in_fields·|G|, k, k, k)``."""
        filt = self._bank_sum(self.orbit(self.base), axis=1)  # (i, h, C_out, k, k, k); relaxed over input h
        return filt.permute(2, 0, 1, 3, 4, 5).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(x, self.expand_parameters(), padding=self.kernel_size // 2)
