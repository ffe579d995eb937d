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
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..symmetry import C4
from ..symmetry.escnn_frame import escnn_field_type, from_escnn, to_escnn
from .base import FieldModel, ModelSpec
from .registry import register

if TYPE_CHECKING:
    from .relaxed_r2conv import RelaxedR2Conv


def __getattr__(name: str) -> Any:
    # RelaxedR2Conv lives in its own module so that importing this one (for a ConvNet) does not import escnn.
    if name == "RelaxedR2Conv":
        from .relaxed_r2conv import RelaxedR2Conv

        return RelaxedR2Conv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def regular_field_stack(gspace, in_type, out_type, spec: ModelSpec, conv) -> nn.Module:
    """``spec.layers`` escnn convolutions ``conv(t_in, t_out)`` through regular hidden fields (``spec.hidden`` copies),
    each hidden one followed by inner batch norm and ReLU: the topology every steerable 2-D model here shares, so
    the smoke-plume and tutorial models differ only in their group and their convolution."""
    from escnn import nn as enn

    hidden = enn.FieldType(gspace, [gspace.regular_repr] * spec.hidden)
    types = [in_type] + [hidden] * (spec.layers - 1)
    blocks: list[nn.Module] = []
    for t_in, t_out in itertools.pairwise(types):
        blocks += [conv(t_in, t_out), enn.InnerBatchNorm(t_out), enn.ReLU(t_out, inplace=False)]
    blocks.append(conv(types[-1], out_type))
    return enn.SequentialModule(*blocks)


class _SteerableNet(FieldModel):
    """escnn C4 network in equidyn's frame; ``relaxed`` swaps every R2Conv for a RelaxedR2Conv."""

    equivariant_to = "C4"
    relaxed = False

    def __init__(self, spec: ModelSpec) -> None:
        check_2d(spec)
        super().__init__(spec, C4())
        from escnn import gspaces

        self.gspace = gspaces.rot2dOnR2(4)
        k = spec.kernel_size
        self.in_type = escnn_field_type(self.gspace, spec.in_layout)
        self.out_type = escnn_field_type(self.gspace, spec.out_layout)
        self.net = regular_field_stack(self.gspace, self.in_type, self.out_type, spec, lambda a, b: self._conv(a, b, k))

    def _conv(self, t_in, t_out, k: int) -> nn.Module:
        if self.relaxed:
            from .relaxed_r2conv import RelaxedR2Conv

            return RelaxedR2Conv(t_in, t_out, k)
        from .escnn_init import he_initialised_r2conv

        return he_initialised_r2conv(t_in, t_out, k)

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

    def __init__(self, spec: ModelSpec) -> None:
        unknown = set(spec.options) - {"tied"}
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)} for 'rsteer'; known: ['tied']")
        super().__init__(spec)

    def relaxed_convs(self) -> list[RelaxedR2Conv]:
        from .relaxed_r2conv import RelaxedR2Conv

        return [m for m in self.modules() if isinstance(m, RelaxedR2Conv)]

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([conv.smoothness_penalty() for conv in self.relaxed_convs()]).sum()

    @property
    def tied(self) -> bool:
        """``options.tied``: the relaxed coefficients stay constant over taps for the whole of training."""
        return bool(self.spec.options.get("tied", False))

    def project_gradients(self) -> None:
        """For a *tied* RSteer (issue 20's control arm), project every relaxed coefficient's gradient onto the tied
        subspace before each optimiser step. The coefficients start constant over taps, so equal gradients, equal
        Adam moments and equal (coupled) weight decay keep them bit-for-bit constant: the network is the E2CNN's
        function class through RSteer's own parameters. If it is as flat as a free RSteer, the flatness comes from
        the parametrisation [Dinh17], not from relaxation. Done by the trainer (not a tensor hook), so the measures
        (Hessians, sharpness) see the full parameter space of RSteer, as for a free one."""
        if not self.tied:
            return
        for conv in self.relaxed_convs():
            if conv.weights.grad is not None:
                conv.weights.grad.copy_(conv.tied_projection(conv.weights.grad))
