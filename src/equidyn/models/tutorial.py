"""Models of the rotation tutorial (closure learning on periodic coarse slices), one topology for every row.

* ``closure_cnn`` — a plain CNN (no imposed symmetry), with circular padding by default;
* ``closure_escnn`` — the same topology as an escnn network for C4 (``rot2dOnR2(4)``) or D4 (``flipRot2dOnR2(4)``,
  rotations *and* mirrors): the hard constraint. C4 against D4 asks the tutorial's question "does Coriolis break
  this symmetry?": on f-plane data the mirror symmetry is false, so a D4 model imposes a wrong constraint;
* ``closure_cnn_penalty`` — the plain CNN whose :meth:`regularizer` is the equivariance mismatch
  ``‖f(g·x) − g·f(x)‖²`` (mean over elements) at one random non-identity C4 element per sample: the *soft*
  constraint (a physics-informed loss term after Beucler et al.), weighted by the run's alpha. The trainer adds
  ``alpha · regularizer`` linearly, so no new training code is needed.

All take any output layout, so one network can predict several fluxes at once (e.g. ``1 sign + 1 vector``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ..symmetry import C4, group_by_name
from ..symmetry.escnn_frame import d4_gspace, escnn_field_type, from_escnn, to_escnn
from .base import FieldModel, ModelSpec
from .registry import register
from .smoke2d import regular_field_stack


def _padding_mode(spec: ModelSpec) -> str:
    mode = str(spec.options.get("padding", "circular"))
    if mode not in ("circular", "zeros"):
        raise ValueError(f"options.padding must be 'circular' or 'zeros', got {mode!r}")
    return mode


@register("closure_cnn")
class ClosureCNN(FieldModel):
    """Plain CNN of the tutorial (no imposed symmetry), ``options.padding`` circular (default) or zeros.

    The built-in slices are periodic, so circular padding keeps the network translation-equivariant on the torus
    (every cell sees a full neighbourhood); it commutes with every D4 element of a square grid, so it imposes no
    rotation symmetry the zero-padded CNN would not.
    """

    def __init__(self, spec: ModelSpec) -> None:
        if spec.layers < 2 or spec.kernel_size % 2 != 1:
            raise ValueError("closure_cnn needs >= 2 layers and an odd kernel size")
        super().__init__(spec, C4())
        k, h, mode = spec.kernel_size, spec.hidden, _padding_mode(spec)
        widths = [self.in_channels] + [h] * (spec.layers - 1)
        blocks: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            blocks += [nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode=mode), nn.BatchNorm2d(c_out), nn.ReLU()]
        blocks.append(nn.Conv2d(widths[-1], self.out_channels, k, padding=k // 2, padding_mode=mode))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("closure_escnn")
class ClosureEscnn(FieldModel):
    """Strictly equivariant steerable CNN for ``spec.group`` C4 (``rot2dOnR2(4)``) or D4 (rotations and mirrors).

    ``layers`` escnn convolutions with regular hidden fields, inner batch norm and ReLU, the same topology as
    :class:`ClosureCNN`; ``options.padding`` as there.
    """

    def __init__(self, spec: ModelSpec) -> None:
        if spec.group not in ("C4", "D4"):
            raise ValueError(f"closure_escnn is a C4 or D4 model; spec.group is {spec.group!r}")
        if spec.layers < 2 or spec.kernel_size % 2 != 1:
            raise ValueError("closure_escnn needs >= 2 layers and an odd kernel size")
        super().__init__(spec, group_by_name(spec.group))
        self.equivariant_to = spec.group
        from escnn import gspaces
        from escnn import nn as enn

        self.gspace = d4_gspace() if spec.group == "D4" else gspaces.rot2dOnR2(4)
        k, mode = spec.kernel_size, _padding_mode(spec)
        self.in_type = escnn_field_type(self.gspace, spec.in_layout)
        self.out_type = escnn_field_type(self.gspace, spec.out_layout)
        self.net = regular_field_stack(
            self.gspace,
            self.in_type,
            self.out_type,
            spec,
            lambda t_in, t_out: enn.R2Conv(t_in, t_out, k, padding=k // 2, padding_mode=mode),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from escnn.nn import GeometricTensor

        y = self.net(GeometricTensor(to_escnn(x, self.in_layout), self.in_type))
        return from_escnn(y.tensor, self.out_layout)


@register("closure_cnn_penalty")
class PenalisedCNN(ClosureCNN):
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
        elements = torch.randint(1, group.order, (len(inputs),))
        # samples grouped by their element: one exact group action per element, not per sample
        order = torch.cat([torch.nonzero(elements == g).flatten() for g in range(1, group.order)])
        drawn = [int(g) for g in range(1, group.order) if bool((elements == g).any())]
        chunks = [int((elements == g).sum()) for g in drawn]
        x = inputs[order]
        moved = torch.cat([group.act(g, part, self.in_layout) for g, part in zip(drawn, x.split(chunks), strict=True)])
        out = self(torch.cat([x, moved]))
        base, of_moved = out[: len(x)], out[len(x) :]
        expected = torch.cat(
            [group.act(g, part, self.out_layout) for g, part in zip(drawn, base.split(chunks), strict=True)]
        )
        return (of_moved - expected).pow(2).mean()


__all__ = ["ClosureCNN", "ClosureEscnn", "PenalisedCNN"]
