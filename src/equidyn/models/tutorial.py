"""Models of the rotation tutorial beyond the smoke-study trio: a D4 steerable CNN and the penalised CNN.

* ``d4cnn`` — the escnn network of :mod:`equidyn.models.smoke2d` on ``flipRot2dOnR2(4)``: exactly equivariant to
  rotations *and* mirrors (the hard constraint for a flow without Coriolis). Against the C4 ``e2cnn`` it asks the
  tutorial's question "does Coriolis break this symmetry?": on f-plane data the mirror symmetry is false, so a D4
  model imposes a wrong constraint.
* ``convnet_penalty`` — the plain CNN whose :meth:`regularizer` is the equivariance mismatch
  ``‖f(g·x) − g·f(x)‖²`` (mean over elements) at one random non-identity C4 element per sample: the *soft*
  constraint (a physics-informed loss term after Beucler et al.), weighted by the run's alpha. The trainer adds
  ``alpha · regularizer`` linearly, so no new training code is needed.

Both take any output layout, so one network can predict several fluxes at once (e.g. ``1 sign + 1 vector``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ..symmetry import D4, group_by_name
from ..symmetry.escnn_frame import d4_gspace, escnn_field_type, from_escnn, to_escnn
from .base import FieldModel, ModelSpec
from .registry import register
from .smoke2d import ConvNet


@register("d4cnn")
class D4CNN(FieldModel):
    """Strictly D4-equivariant steerable CNN: ``layers`` escnn convolutions with regular D4 hidden fields."""

    equivariant_to = "D4"

    def __init__(self, spec: ModelSpec) -> None:
        if spec.group != "D4":
            raise ValueError(f"model 'd4cnn' is a D4 model; spec.group is {spec.group!r}")
        if spec.layers < 2 or spec.kernel_size % 2 != 1:
            raise ValueError("d4cnn needs >= 2 layers and an odd kernel size")
        super().__init__(spec, D4())
        from escnn import nn as enn

        self.gspace = d4_gspace()
        k = spec.kernel_size
        self.in_type = escnn_field_type(self.gspace, spec.in_layout)
        self.out_type = escnn_field_type(self.gspace, spec.out_layout)
        hidden = enn.FieldType(self.gspace, [self.gspace.regular_repr] * spec.hidden)
        types = [self.in_type] + [hidden] * (spec.layers - 1)
        blocks: list[nn.Module] = []
        for t_in, t_out in itertools.pairwise(types):
            blocks += [
                enn.R2Conv(t_in, t_out, k, padding=k // 2),
                enn.InnerBatchNorm(t_out),
                enn.ReLU(t_out, inplace=False),
            ]
        blocks.append(enn.R2Conv(types[-1], self.out_type, k, padding=k // 2))
        self.net = enn.SequentialModule(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from escnn.nn import GeometricTensor

        y = self.net(GeometricTensor(to_escnn(x, self.in_layout), self.in_type))
        return from_escnn(y.tensor, self.out_layout)


@register("convnet_penalty")
class PenalisedConvNet(ConvNet):
    """The plain CNN with an equivariance penalty as its regulariser (soft constraint).

    ``options.penalty_group`` (default C4) names the group whose non-identity elements are drawn. Elements are
    drawn from torch's global generator, which the trainer seeds, one per sample.
    """

    has_regularizer = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.penalty_group = group_by_name(str(spec.options.get("penalty_group", "C4")))
        if self.penalty_group.ndim != 2:
            raise ValueError(f"penalty_group must be a 2-D group, got {self.penalty_group.name}")

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        if inputs is None:
            raise ValueError("the equivariance penalty needs the batch's inputs")
        group = self.penalty_group
        elements = torch.randint(1, group.order, (len(inputs),)).tolist()
        moved = torch.cat([group.act(g, inputs[i : i + 1], self.in_layout) for i, g in enumerate(elements)])
        out = self(torch.cat([inputs, moved]))
        base, of_moved = out[: len(inputs)], out[len(inputs) :]
        expected = torch.cat([group.act(g, base[i : i + 1], self.out_layout) for i, g in enumerate(elements)])
        return (of_moved - expected).pow(2).mean()


__all__ = ["D4CNN", "PenalisedConvNet"]
