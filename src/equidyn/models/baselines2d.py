"""The W22 baselines (§3.4–5) in equidyn's frame: MLP, Rpp, Combo, CLCNN and Lift.

Each is a :class:`FieldModel` built from a :class:`ModelSpec`: ``spec.hidden`` is the width (regular fields
for every escnn or group-structured part, channels for the MLP), ``spec.layers`` the number of weight layers,
and ``spec.options`` the model-specific settings (unknown keys are an error, so a typo cannot silently fall
back to a default). The escnn parts reuse :class:`~equidyn.models.smoke2d.E2CNN` (so they convert to and from
escnn's frame exactly as the E2CNN does) or escnn's own modules on escnn-frame tensors.

What is exact and what is not — each claim is a test in tests/test_zoo2d.py:

* **Rpp**: every layer is ``R2Conv(x) + Conv2d(x)``. With the free convolutions at zero it *is* an E2CNN.
* **Combo**: plain convolutions, then an E2CNN on their output read as regular fields; that tail is exact.
* **Lift**: a convolutional encoder's channels join the input as *scalar* fields of an E2CNN backbone, which
  is exact in (input fields, scalars) jointly; the encoder is not, so neither is the model.
* **CLCNN**: locally connected layers (no weight sharing over positions) with regular hidden fields, so that
  "equivariant" has a meaning layer by layer; :meth:`LocallyConnected2d.symmetrize_` projects a layer onto the
  equivariant ones, and the hinge penalty is exactly zero there.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..symmetry import C4, FieldLayout, GridGroup
from .base import FieldModel, ModelSpec
from .registry import register
from .smoke2d import E2CNN, check_2d

__all__ = ["CLCNN", "MLP", "Combo", "Lift", "LocallyConnected2d", "Rpp", "model_options"]


def model_options(spec: ModelSpec, defaults: dict[str, Any]) -> dict[str, Any]:
    """``spec.options`` over ``defaults``; an unknown key raises instead of being ignored."""
    unknown = set(spec.options) - set(defaults)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)} for {spec.name!r}; known: {sorted(defaults)}")
    return {**defaults, **spec.options}


def _check_grid(spec: ModelSpec, x: torch.Tensor) -> None:
    if tuple(x.shape[-2:]) != tuple(spec.grid):
        got = tuple(x.shape[-2:])
        raise ValueError(f"model {spec.name!r} was built for grid {tuple(spec.grid)}, got {got}")


def _rms(sum_sq: torch.Tensor, count: int) -> torch.Tensor:
    """Root mean square from a sum of squares, with a finite gradient at 0 (``sqrt``'s is infinite there)."""
    mean = sum_sq / count
    return mean.clamp_min(torch.finfo(mean.dtype).tiny).sqrt()


def _with_layout(layout: FieldLayout, *extra: tuple[str, int]) -> FieldLayout:
    return FieldLayout(layout.blocks + tuple(extra))


def _backbone_spec(spec: ModelSpec, in_layout: FieldLayout, layers: int) -> ModelSpec:
    """The spec of an E2CNN that forms the equivariant part of a composite model."""
    return replace(spec, name="e2cnn", in_layout=in_layout, layers=layers, options={})


def _conv_stack(widths: list[int], k: int, final_activation: bool) -> nn.Sequential:
    """Plain ``Conv2d → BatchNorm2d → ReLU`` blocks; the last block is a bare convolution unless asked."""
    blocks: list[nn.Module] = []
    pairs = list(itertools.pairwise(widths))
    for n, (c_in, c_out) in enumerate(pairs):
        blocks.append(nn.Conv2d(c_in, c_out, k, padding=k // 2))
        if final_activation or n < len(pairs) - 1:
            blocks += [nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*blocks)


# --------------------------------------------------------------------------------------------- MLP
@register("mlp")
class MLP(FieldModel):
    """Flatten → [Linear → BatchNorm1d → ReLU] × (layers − 1) → Linear → reshape (W22's MLP).

    Reads ``spec.grid``: the input and output sizes are ``C·H·W``. ``spec.hidden`` is the hidden width.
    """

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        model_options(spec, {})
        super().__init__(spec, C4())
        pixels = math.prod(spec.grid)
        widths = [self.in_channels * pixels] + [spec.hidden] * (spec.layers - 1)
        blocks: list[nn.Module] = []
        for d_in, d_out in itertools.pairwise(widths):
            blocks += [nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU()]
        blocks.append(nn.Linear(widths[-1], self.out_channels * pixels))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_grid(self.spec, x)
        return self.net(x.flatten(1)).view(x.shape[0], self.out_channels, *x.shape[-2:])


# --------------------------------------------------------------------------------------------- Rpp
class _RppLayer(nn.Module):
    """``R2Conv(x) + Conv2d(x)`` on an escnn-frame GeometricTensor (bias-free free conv, see :class:`Rpp`)."""

    def __init__(self, in_type, out_type, kernel_size: int) -> None:
        super().__init__()
        from escnn import nn as enn

        self.out_type = out_type
        self.equivariant = enn.R2Conv(in_type, out_type, kernel_size, padding=kernel_size // 2)
        self.free = nn.Conv2d(in_type.size, out_type.size, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):  # GeometricTensor -> GeometricTensor
        from escnn.nn import GeometricTensor

        return GeometricTensor(self.equivariant(x).tensor + self.free(x.tensor), self.out_type)


@register("rpp")
class Rpp(FieldModel):
    """Residual pathway prior (Finzi et al. 2021; W22 "Rpp"): each layer sums an equivariant and a free conv.

    The equivariant pathway is the E2CNN's (``R2Conv`` with escnn's equivariant bias, ``InnerBatchNorm``, ReLU
    on ``hidden`` regular fields). The free pathway is a bias-free ``Conv2d`` between the same channels,
    applied to the escnn-frame tensor (the frame change is a fixed signed permutation of channels, which an
    unconstrained conv absorbs). :meth:`regularizer` is the Gaussian prior on the free pathway, the squared L2
    norm ``Σ w²`` of its weights. Adam's ``weight_decay`` (a penalty ``wd/2 · ‖w‖²``) acts on both pathways,
    so the free one is held by ``(wd/2 + alpha) ‖w‖²`` and the equivariant one by ``wd/2 · ‖w‖²``: RPP's two
    prior variances. Without a bias on the free pathway, "free weights at zero" is exactly the E2CNN.
    """

    has_regularizer = True

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        model_options(spec, {})
        super().__init__(spec, C4())
        from escnn import gspaces
        from escnn import nn as enn

        from ..symmetry.escnn_frame import escnn_field_type

        self.gspace = gspaces.rot2dOnR2(4)
        self.in_type = escnn_field_type(self.gspace, spec.in_layout)
        self.out_type = escnn_field_type(self.gspace, spec.out_layout)
        hidden = enn.FieldType(self.gspace, [self.gspace.regular_repr] * spec.hidden)
        types = [self.in_type] + [hidden] * (spec.layers - 1)
        k = spec.kernel_size
        blocks: list[nn.Module] = []
        for t_in, t_out in itertools.pairwise(types):
            blocks += [_RppLayer(t_in, t_out, k), enn.InnerBatchNorm(t_out), enn.ReLU(t_out, inplace=False)]
        blocks.append(_RppLayer(types[-1], self.out_type, k))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from escnn.nn import GeometricTensor

        from ..symmetry.escnn_frame import from_escnn, to_escnn

        y = self.net(GeometricTensor(to_escnn(x, self.in_layout), self.in_type))
        return from_escnn(y.tensor, self.out_layout)

    def free_convs(self) -> list[nn.Conv2d]:
        return [m.free for m in self.modules() if isinstance(m, _RppLayer)]

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """``Σ_layers ‖W_free‖²₂``: the prior on the non-equivariant pathway, without alpha."""
        return torch.stack([conv.weight.pow(2).sum() for conv in self.free_convs()]).sum()


# ------------------------------------------------------------------------------------------- Combo
@register("combo")
class Combo(FieldModel):
    """Non-equivariant layers first, equivariant ones after (W22 "Combo", ConvNet + E2CNN).

    ``options["noneq_layers"]`` (default ``layers // 2``) plain ``Conv2d → BN → ReLU`` layers of ``4·hidden``
    channels; their output is read as ``hidden`` regular fields (equidyn's frame) and enters an E2CNN of the
    remaining ``layers − noneq_layers`` (≥ 2) convolutions. :attr:`tail` is that E2CNN, exactly equivariant.
    """

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        opts = model_options(spec, {"noneq_layers": spec.layers // 2})
        n_free = int(opts["noneq_layers"])
        if n_free < 1 or spec.layers - n_free < 2:
            raise ValueError(
                f"combo needs >= 1 non-equivariant and >= 2 equivariant layers; got layers={spec.layers}, "
                f"noneq_layers={n_free}"
            )
        super().__init__(spec, C4())
        self.tail_layout = FieldLayout.of(("regular", spec.hidden))
        width = self.group.channels(self.tail_layout)
        widths = [self.in_channels] + [width] * n_free
        self.head = _conv_stack(widths, spec.kernel_size, final_activation=True)
        self.tail = E2CNN(_backbone_spec(spec, self.tail_layout, spec.layers - n_free))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(x))


# -------------------------------------------------------------------------------------------- Lift
@register("lift")
class Lift(FieldModel):
    """W22 "Lift": a non-equivariant encoder adds *invariant* input fields to an equivariant backbone.

    The encoder is a plain CNN (``options["encoder_layers"]`` convolutions, default 2, of
    ``options["encoder_width"]`` channels, default ``hidden``) that outputs ``options["lift_channels"]``
    (default 8) channels per pixel. These enter :attr:`backbone`, an E2CNN of ``spec.layers`` convolutions, as
    *scalar* fields next to the input fields. Being convolutional, the model works on any grid size (W22's
    encoder was an MLP over a fixed grid). The backbone is exactly equivariant in (input fields, scalar
    fields) jointly, so the model breaks the symmetry only through what the encoder tells the backbone.
    """

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        opts = model_options(spec, {"lift_channels": 8, "encoder_layers": 2, "encoder_width": None})
        super().__init__(spec, C4())
        n_lift, n_enc = int(opts["lift_channels"]), int(opts["encoder_layers"])
        width = int(opts["encoder_width"] or spec.hidden)
        if n_lift < 1 or n_enc < 1:
            raise ValueError(f"lift needs lift_channels >= 1 and encoder_layers >= 1, got {n_lift}, {n_enc}")
        self.encoder = _conv_stack(
            [self.in_channels] + [width] * (n_enc - 1) + [n_lift], spec.kernel_size, final_activation=False
        )
        self.backbone_layout = _with_layout(spec.in_layout, ("scalar", n_lift))
        self.backbone = E2CNN(_backbone_spec(spec, self.backbone_layout, spec.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(torch.cat([x, self.encoder(x)], dim=1))


# ------------------------------------------------------------------------------------------- CLCNN
class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: every output position has its own ``(C_out, C_in, k, k)`` kernel.

    ``out[o](p) = Σ_{c, y} W[p, o, c, y] x[c](p + y) + b[o](p)``, computed as one ``unfold`` and one batched
    matrix product over positions. The layer carries the layouts of its input and output so that the group can
    act on its *weights*: ``(g·W)(p, y) = ρ_out(g) W(g⁻¹p, g⁻¹y) ρ_in(g)⁻¹`` and ``(g·b)(p) = ρ_out(g)
    b(g⁻¹p)``, which is the layer conjugated by ``g`` (``g·L = ρ_out(g) ∘ L ∘ ρ_in(g)⁻¹``). The layer is
    equivariant iff ``g·(W, b) = (W, b)`` for all ``g``; :meth:`transformed` computes ``g·(W, b)`` with the
    spine's ``act`` (output channels and positions, then input channels and kernel offsets), so it is exact.
    """

    def __init__(
        self,
        group: GridGroup,
        in_layout: FieldLayout,
        out_layout: FieldLayout,
        grid: tuple[int, int],
        kernel_size: int = 3,
        gain: float = 2.0,
    ) -> None:
        super().__init__()
        self.group, self.in_layout, self.out_layout = group, in_layout, out_layout
        self.grid, self.kernel_size = tuple(grid), kernel_size
        self.in_channels, self.out_channels = group.channels(in_layout), group.channels(out_layout)
        fan_in = self.in_channels * kernel_size**2
        positions = math.prod(self.grid)
        std = math.sqrt(gain / fan_in)
        self.weight = nn.Parameter(torch.randn(positions, self.out_channels, fan_in) * std)
        self.bias = nn.Parameter(torch.zeros(self.out_channels, *self.grid))
        self._maps: dict[int, list[tuple[torch.Tensor, torch.Tensor | None]]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.grid:
            raise ValueError(f"locally connected layer built for grid {self.grid}, got {tuple(x.shape[-2:])}")
        cols = F.unfold(x, self.kernel_size, padding=self.kernel_size // 2)  # (B, C_in·k², P)
        out = torch.einsum("bkp,pok->bop", cols, self.weight)
        return out.view(x.shape[0], self.out_channels, *self.grid) + self.bias

    def act_on_parameters(self, g: int, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        """``g·(W, b)`` for tensors shaped like this layer's, by two calls of the spine's ``act``."""
        (h, w), o, c, k = self.grid, self.out_channels, self.in_channels, self.kernel_size
        weight = weight.view(h, w, o, c, k, k)
        # output channels and output positions: (C_in·k·k, C_out, H, W) laid out as out_layout
        a = weight.permute(3, 4, 5, 2, 0, 1).reshape(c * k * k, o, h, w)
        a = self.group.act(g, a, self.out_layout).view(c, k, k, o, h, w)
        # input channels and kernel offsets: (C_out·H·W, C_in, k, k) laid out as in_layout
        b = a.permute(3, 4, 5, 0, 1, 2).reshape(o * h * w, c, k, k)
        b = self.group.act(g, b, self.in_layout).view(o, h, w, c, k, k)
        new_weight = b.permute(1, 2, 0, 3, 4, 5).reshape(h * w, o, c * k * k)
        new_bias = self.group.act(g, bias[None], self.out_layout)[0]
        return new_weight, new_bias

    def _gather_maps(self, g: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Where each entry of ``g·W`` and ``g·b`` comes from, and its sign (None: all +1); built once per g.

        :meth:`act_on_parameters` applied to ``±(position + 1)`` codes in float64 (exact up to 2⁵³) tells,
        for a signed permutation, the source and sign of every entry. One ``index_select`` then replaces the
        permute/einsum/rot90 copies of ``act`` — a weight penalty per step instead of a second forward pass.
        """
        if g not in self._maps:
            n_w, n_b = self.weight.numel(), self.bias.numel()
            codes = torch.arange(1, n_w + n_b + 1, dtype=torch.float64)
            w_code, b_code = codes[:n_w].view(self.weight.shape), codes[n_w:].view(self.bias.shape)
            moved = self.act_on_parameters(g, w_code, b_code)
            maps = []
            for part, offset in zip(moved, (0, n_w), strict=True):
                flat = part.reshape(-1)
                index = (flat.abs().round().long() - 1 - offset).to(torch.int32)
                negative = flat < 0
                maps.append((index, negative.to(torch.int8).mul(-2).add(1) if bool(negative.any()) else None))
            self._maps[g] = maps
        device = self.weight.device
        if self._maps[g][0][0].device != device:  # follow the layer to its device once, not on every call
            self._maps[g] = [(i.to(device), None if s is None else s.to(device)) for i, s in self._maps[g]]
        return self._maps[g]

    def transformed(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``g·(W, b)``: an exact signed permutation of the entries, differentiable."""
        out = []
        for param, (index, sign) in zip((self.weight, self.bias), self._gather_maps(g), strict=True):
            moved = param.reshape(-1).index_select(0, index)
            out.append((moved if sign is None else moved * sign.to(param.dtype)).view(param.shape))
        return out[0], out[1]

    def asymmetry(self, g: int) -> torch.Tensor:
        """RMS of ``g·(W, b) − (W, b)`` over all entries: zero iff the layer commutes with ``g``."""
        new_weight, new_bias = self.transformed(g)
        sq = (new_weight - self.weight).pow(2).sum() + (new_bias - self.bias).pow(2).sum()
        return _rms(sq, self.weight.numel() + self.bias.numel())

    @torch.no_grad()
    def symmetrize_(self) -> None:
        """Replace ``(W, b)`` by its group average ``(1/|G|) Σ_g g·(W, b)``, the nearest equivariant layer."""
        parts = [self.transformed(g) for g in self.group.elements]
        self.weight.copy_(torch.stack([p[0] for p in parts]).mean(0))
        self.bias.copy_(torch.stack([p[1] for p in parts]).mean(0))


@register("clcnn")
class CLCNN(FieldModel):
    """Locally connected CNN with a hinge equivariance penalty (W22 "CLCNN").

    ``spec.layers`` locally connected layers (ReLU between, no normalisation: a per-position layer has no
    natural shared statistic) with ``hidden`` regular fields (``4·hidden`` channels) in between. Reads
    ``spec.grid``. The parameter count is about ``H·W·k²`` times a ConvNet's, so on a 64×64 grid with 10 input
    frames even ``hidden = 1`` exceeds a 600k budget (docs/models2d.md).

    The penalty is ``Σ_h max(0, d_h − margin)`` over the non-identity ``h``, where ``d_h`` is the RMS of the
    equivariance defect. ``options["penalty"]`` chooses what the defect is:

    * ``"weights"`` (default): the kernel constraint ``ρ_out(h) Φ(x) ρ_in(h⁻¹) − Φ(hx)`` of W22, with ``Φ(x)``
      the kernel at position ``x``, i.e. ``‖h·(W, b) − (W, b)‖_rms`` per layer, summed over layers. Zero iff
      every layer is equivariant; needs no data, costs no forward pass.
    * ``"outputs"``: the network-level defect ``‖h·Φ(x) − Φ(h·x)‖_rms`` on the batch passed to
      :meth:`regularizer` (three extra forward passes per step).

    ``options["hinge_margin"]`` (default 1e-5, in units of the weights resp. the normalised outputs) is a
    round-off allowance: the float32 defect of an exactly equivariant net is ~1e-8–1e-7, any symmetry breaking
    that matters is ≥ 1e-3. With it, an exactly equivariant net pays exactly 0 and gets a zero gradient from
    the penalty (a bare norm is not differentiable at 0, which would also upset Hessians there).
    """

    has_regularizer = True
    PENALTIES = ("weights", "outputs")

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        opts = model_options(spec, {"penalty": "weights", "hinge_margin": 1e-5})
        if opts["penalty"] not in self.PENALTIES:
            raise ValueError(f"clcnn penalty must be one of {self.PENALTIES}, got {opts['penalty']!r}")
        if len(spec.grid) != 2:
            raise ValueError(f"clcnn needs a 2-D grid, got {spec.grid}")
        super().__init__(spec, C4())
        self.penalty, self.margin = str(opts["penalty"]), float(opts["hinge_margin"])
        hidden = FieldLayout.of(("regular", spec.hidden))
        layouts = [spec.in_layout] + [hidden] * (spec.layers - 1) + [spec.out_layout]
        pairs = list(itertools.pairwise(layouts))
        gains = [2.0] * (len(pairs) - 1) + [1.0]  # He init before a ReLU, unit gain for the linear output
        self.lc_layers = nn.ModuleList(
            LocallyConnected2d(self.group, a, b, spec.grid, spec.kernel_size, gain=gain)
            for (a, b), gain in zip(pairs, gains, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.lc_layers
        for layer in hidden:
            x = F.relu(layer(x))
        return last(x)

    @torch.no_grad()
    def symmetrize_(self) -> None:
        """Project every layer onto the equivariant ones: the result is an exactly C4-equivariant network."""
        for layer in self.lc_layers:
            layer.symmetrize_()

    def _hinge(self, defect: torch.Tensor) -> torch.Tensor:
        return F.relu(defect - self.margin)

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        elements = [g for g in self.group.elements if g != 0]
        if self.penalty == "weights":
            terms = [self._hinge(layer.asymmetry(g)) for layer in self.lc_layers for g in elements]
            return torch.stack(terms).sum()
        if inputs is None:
            raise ValueError("clcnn's 'outputs' penalty is computed on a batch: pass regularizer(inputs)")
        fx = self(inputs)
        terms = []
        for g in elements:
            diff = self.group.act(g, fx, self.out_layout) - self(self.group.act(g, inputs, self.in_layout))
            terms.append(self._hinge(_rms(diff.pow(2).sum(), diff.numel())))
        return torch.stack(terms).sum()
