"""The three models of the symmetry-level study: ConvNet (no symmetry), E2CNN (strict C4) and RSteer (relaxed C4).

All three share one topology so that only the imposed symmetry differs: ``layers`` 3×3 convolutions, each but the
last followed by batch normalisation and ReLU ([W22]). E2CNN and RSteer are escnn networks on
``rot2dOnR2(4)`` with regular hidden fields; they receive and return tensors in equidyn's physical frame and map
to escnn's frame with :mod:`equidyn.symmetry.escnn_frame`.

RSteer is the E2CNN with each convolution replaced by :class:`RelaxedR2Conv`, whose basis coefficients may vary with
the kernel tap. Its coefficients start constant over taps (copied from an escnn R2Conv initialisation), and its
bias is escnn's equivariant bias, so at initialisation — and whenever the coefficients are constant — it *is* the
E2CNN (tested). The published version had a per-channel bias and a random per-tap initialisation, so it was never
equivariant, even at α → ∞ ([W22]).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ..symmetry import C4
from ..symmetry.escnn_frame import escnn_field_type, from_escnn, to_escnn
from .base import FieldModel, ModelSpec
from .registry import register


def check_2d(spec: ModelSpec) -> None:
    if spec.group != "C4":
        raise ValueError(f"model {spec.name!r} is a 2-D C4 model; spec.group is {spec.group!r}")
    if spec.layers < 2:
        raise ValueError(f"model {spec.name!r} needs at least 2 layers, got {spec.layers}")
    if spec.kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd so 'same' padding is symmetric, got {spec.kernel_size}")


@register("convnet")
class ConvNet(FieldModel):
    """Plain CNN: the no-symmetry baseline."""

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        super().__init__(spec, C4())
        k, h = spec.kernel_size, spec.hidden
        widths = [self.in_channels] + [h] * (spec.layers - 1)
        blocks: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            blocks += [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU()]
        blocks.append(nn.Conv2d(widths[-1], self.out_channels, k, padding=k // 2))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _equivariant_module_base() -> type:
    from escnn.nn import EquivariantModule

    return EquivariantModule


class RelaxedR2Conv(_equivariant_module_base()):  # type: ignore[misc]
    """A steerable convolution whose basis coefficients may differ at each kernel tap (relaxed steerable conv).

    The kernel at tap ``y`` is ``Σ_l w_l(y) Φ_l(y)`` with ``{Φ_l}`` escnn's C4-steerable basis. Constant ``w`` over
    taps gives escnn's ``R2Conv`` exactly. The bias is escnn's equivariant bias (only on trivial sub-representations),
    so it never breaks the symmetry. Filters are expanded on every call and never cached, so perturbing
    ``weights`` in place (sharpness) or substituting them functionally (Hessians) always takes effect.
    """

    def __init__(self, in_type, out_type, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        from escnn import nn as enn

        template = enn.R2Conv(in_type, out_type, kernel_size, padding=kernel_size // 2, bias=bias)
        self.in_type, self.out_type = in_type, out_type
        self.kernel_size = kernel_size
        self.expansion = template.basisexpansion  # buffers only: the sampled basis and index maps
        taps = kernel_size * kernel_size
        # Start exactly equivariant: the template's coefficients, repeated at every tap.
        self.weights = nn.Parameter(template.weights.detach().clone()[:, None].repeat(1, taps))
        if template.bias is not None:
            self.bias = nn.Parameter(template.bias.detach().clone())
            self.register_buffer("bias_expansion", template.bias_expansion.detach().clone())
        else:
            self.bias = None

    def expand_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Filter ``(out, in, k, k)`` with tap-dependent coefficients, and the expanded bias."""
        exp = self.expansion
        filt = None
        for pair in exp._representations_pairs:
            key = exp._escape_pair(pair)
            block = getattr(exp, f"block_expansion_{key}")
            lo, hi = exp._weights_ranges[pair]
            coeff = self.weights[lo:hi].view(-1, block.dimension(), exp.S)
            # (b, o, i, S) basis sampled at the taps; coefficients (k, b, S) chosen per tap
            expanded = torch.einsum("boip,kbp->koip", block.sampled_basis, coeff)
            n_out, n_in = exp._out_count[pair[1]], exp._in_count[pair[0]]
            o, i = expanded.shape[1], expanded.shape[2]
            expanded = expanded.view(n_out, n_in, o, i, exp.S).transpose(1, 2)
            in_idx = getattr(exp, f"in_indices_{key}")
            out_idx = getattr(exp, f"out_indices_{key}")
            if filt is None:
                filt = expanded.new_zeros(exp._output_size, exp._input_size, exp.S)
            if exp._contiguous[pair]:
                filt[out_idx[0] : out_idx[1], in_idx[0] : in_idx[1]] = expanded.reshape(out_idx[2], in_idx[2], exp.S)
            else:
                filt[out_idx, in_idx] = expanded.reshape(-1, exp.S)
        assert filt is not None
        filt = filt.view(filt.shape[0], filt.shape[1], self.kernel_size, self.kernel_size)
        bias = None if self.bias is None else self.bias_expansion @ self.bias
        return filt, bias

    def tap_weights(self) -> torch.Tensor:
        """Coefficients as ``(n_coefficients, k, k)``, the grid over which the regulariser differentiates."""
        return self.weights.view(-1, self.kernel_size, self.kernel_size)

    def smoothness_penalty(self) -> torch.Tensor:
        """‖∂w/∂m‖₁ + ‖∂w/∂n‖₁: first differences of the coefficients across neighbouring taps."""
        w = self.tap_weights()
        return (w[:, 1:, :] - w[:, :-1, :]).abs().sum() + (w[:, :, 1:] - w[:, :, :-1]).abs().sum()

    def evaluate_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.out_type.size, *input_shape[2:])

    def forward(self, x):  # GeometricTensor -> GeometricTensor
        from escnn.nn import GeometricTensor

        filt, bias = self.expand_parameters()
        y = torch.nn.functional.conv2d(x.tensor, filt, bias=bias, padding=self.kernel_size // 2)
        return GeometricTensor(y, self.out_type)


class _SteerableNet(FieldModel):
    """escnn C4 network in equidyn's frame; ``relaxed`` swaps every R2Conv for a RelaxedR2Conv."""

    equivariant_to = "C4"
    relaxed = False

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        super().__init__(spec, C4())
        from escnn import gspaces
        from escnn import nn as enn

        self.gspace = gspaces.rot2dOnR2(4)
        k = spec.kernel_size
        self.in_type = escnn_field_type(self.gspace, spec.in_layout)
        self.out_type = escnn_field_type(self.gspace, spec.out_layout)
        hidden = enn.FieldType(self.gspace, [self.gspace.regular_repr] * spec.hidden)
        types = [self.in_type] + [hidden] * (spec.layers - 1)
        blocks: list[nn.Module] = []
        for t_in, t_out in itertools.pairwise(types):
            blocks += [self._conv(t_in, t_out, k), enn.InnerBatchNorm(t_out), enn.ReLU(t_out, inplace=False)]
        blocks.append(self._conv(types[-1], self.out_type, k))
        self.net = enn.SequentialModule(*blocks)

    def _conv(self, t_in, t_out, k: int) -> nn.Module:
        from escnn import nn as enn

        if self.relaxed:
            return RelaxedR2Conv(t_in, t_out, k)
        return enn.R2Conv(t_in, t_out, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from escnn.nn import GeometricTensor

        y = self.net(GeometricTensor(to_escnn(x, self.in_layout), self.in_type))
        return from_escnn(y.tensor, self.out_layout)


@register("e2cnn")
class E2CNN(_SteerableNet):
    """Strictly C4-equivariant steerable CNN (escnn ``R2Conv``), the W22 "Equiv" model."""


@register("rsteer")
class RSteer(_SteerableNet):
    """Relaxed steerable CNN (W22 RSteer); ``regularizer`` is Σ_layers ‖∂w/∂m‖₁ + ‖∂w/∂n‖₁."""

    relaxed = True
    equivariant_to = None
    has_regularizer = True

    def relaxed_convs(self) -> list[RelaxedR2Conv]:
        return [m for m in self.modules() if isinstance(m, RelaxedR2Conv)]

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([conv.smoothness_penalty() for conv in self.relaxed_convs()]).sum()
