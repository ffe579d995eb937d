"""The three 3-D super-resolution models of W24 Exp. 5.5 / BLOG: CNN, GCNN (strict O_h) and RGCNN (relaxed).

All three share the BLOG topology ([W24, BLOG]), so that only the imposed symmetry differs::

    lift (3×3×3 conv + ReLU) → [UpBlock ×2 → ConvBlock] × log2(upsample_factor) → output conv

* ``UpBlock(x) = ReLU(BN(conv(ReLU(BN(conv(up(x)))))) + up(x))`` with ``up`` the trilinear ×2 up-sampler
  (:func:`~equidyn.models.groupconv3d.upsample2`), which is exactly O_h-equivariant. The published UpBlock
  used a stride-2 transposed convolution (padding 1, output padding 1), equivariant only up to a one-voxel
  shift; an up-sampling followed by a 3×3×3 convolution has the same parameter count (``27·h² + h``), so the
  CNN keeps the BLOG budget *exactly* (132,795 at ``hidden=24``).
* ``ConvBlock(x) = ReLU(BN(conv(ReLU(BN(conv(x))))) + x)``, a residual block.

Inputs are the layout ``3 vector`` (9 channels: three times × (x, y, z), channel ``time*3 + component``) on
the coarse grid; outputs ``1 vector`` on the grid ``upsample_factor`` times finer (16³ → 64³ at paper scale).

* ``cnn3d``: plain convolutions (no symmetry), ``hidden`` channels.
* ``gcnn3d``: ``hidden`` regular fields of O_h (``spec.group == "Oh"``, default) or O. Velocity is *lifted as
  a vector field* and *projected back to a vector field*; biases and batch norms are per regular field.
  Exactly equivariant to every element of the group on velocity fields (tested for all 48 elements of O_h).
* ``rgcnn3d``: the same with every group convolution relaxed (``filter_banks`` banks, default 3); starts
  exactly equivariant, and ``regularizer()`` is Σ over layers of Σ_l Σ_{g,h} |w_l(g) − w_l(h)|, which training
  adds *linearly* times alpha (the published relaxed 3-D models had no alpha term).

Options (``spec.options``): ``upsample_factor`` (a power of two, default 4) for all; ``separable`` (default
True) for the group models; ``filter_banks`` (default 3) for ``rgcnn3d``. ``spec.layers`` and ``spec.grid``
are not used: the topology is fixed by the up-sampling factor and every layer is a convolution.

Paper-scale defaults (:data:`PAPER_HIDDEN`, O_h, separable, kernel 3) and their parameter counts, against the
BLOG budgets: CNN 132,795 (BLOG 132,795), GCNN 120,581 (123,801), RGCNN 128,770 (130,175); see
docs/superres_models.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..published import BLOG_PARAMS
from ..symmetry import FieldLayout, group_by_name
from .base import FieldModel, ModelSpec
from .groupconv3d import GroupConv3d, LiftConv3d, ProjectConv3d, upsample2
from .registry import register
from .regular_norm import RegularBatchNorm3d

#: ``hidden`` that puts each model at the BLOG parameter budget (O_h, separable, kernel 3, factor 4).
PAPER_HIDDEN = {"cnn3d": 24, "gcnn3d": 17, "rgcnn3d": 10}
#: BLOG parameter counts ([BLOG]) that :data:`PAPER_HIDDEN` approximates (one home: :mod:`equidyn.published`).
BLOG_BUDGETS = BLOG_PARAMS
INPUT_LAYOUT = "3 vector"
OUTPUT_LAYOUT = "1 vector"

_OPTIONS = {
    "cnn3d": {"upsample_factor"},
    "gcnn3d": {"upsample_factor", "separable"},
    "rgcnn3d": {"upsample_factor", "separable", "filter_banks"},
}


def paper_spec(name: str, group: str = "Oh", **options: object) -> ModelSpec:
    """The paper-scale spec of ``name`` (16³ → 64³, hidden from :data:`PAPER_HIDDEN`)."""
    if name not in PAPER_HIDDEN:
        known = sorted(PAPER_HIDDEN)
        raise ValueError(f"unknown 3-D super-resolution model {name!r}; expected one of {known}")
    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse(INPUT_LAYOUT),
        out_layout=FieldLayout.parse(OUTPUT_LAYOUT),
        hidden=PAPER_HIDDEN[name],
        layers=len(_stages(4)) * 2 + 2,
        grid=(16, 16, 16),
        group=group,
        options=dict(options),
    )


def _stages(factor: int) -> range:
    if factor < 1 or factor & (factor - 1):
        raise ValueError(f"upsample_factor must be a power of two (1, 2, 4, ...), got {factor}")
    return range(int(math.log2(factor)))


def _check_spec(spec: ModelSpec) -> None:
    unknown = set(spec.options) - _OPTIONS[spec.name]
    if unknown:
        allowed = sorted(_OPTIONS[spec.name])
        raise ValueError(f"model {spec.name!r}: unknown option(s) {sorted(unknown)}; allowed: {allowed}")
    if spec.group not in ("Oh", "O"):
        raise ValueError(f"model {spec.name!r} is 3-D: spec.group must be 'Oh' or 'O', got {spec.group!r}")
    if spec.kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd so 'same' padding is centred, got {spec.kernel_size}")
    if spec.hidden < 1:
        raise ValueError(f"hidden must be >= 1, got {spec.hidden}")


Factory = Callable[[], nn.Module]


class _Block(nn.Module):
    """``ReLU(BN(conv2(ReLU(BN(conv1(x'))))) + skip)``: the UpBlock (``up=True``) or the ConvBlock."""

    def __init__(self, make_conv: Factory, make_norm: Factory, up: bool) -> None:
        super().__init__()
        self.up = up
        self.conv1, self.norm1 = make_conv(), make_norm()
        self.conv2, self.norm2 = make_conv(), make_norm()
        # In place: batch norm's backward needs its input, not its output, and the sum is a fresh tensor, so
        # nothing saved for backward is overwritten (autograd's version counters would object); at 64³ with
        # 48 channels per field this saves three full-size activations per block.
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            skip = upsample2(x)
            conv1 = getattr(self.conv1, "forward_upsampled", None)
            y = conv1(x, skip) if conv1 is not None else self.conv1(skip)
        else:
            skip, y = x, self.conv1(x)
        y = self.norm2(self.conv2(self.act(self.norm1(y))))
        return self.act(y + skip)


class _SuperResNet(FieldModel):
    """The shared topology; subclasses provide the lift, hidden convolution, normalisation and head."""

    def __init__(self, spec: ModelSpec) -> None:
        _check_spec(spec)
        group = group_by_name(spec.group)
        super().__init__(spec, group)
        self.upsample_factor = int(spec.options.get("upsample_factor", 4))
        stages = _stages(self.upsample_factor)
        self.lift = nn.Sequential(self._lift(), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        for _ in stages:
            blocks += [_Block(self._conv, self._norm, up=True), _Block(self._conv, self._norm, up=False)]
        self.blocks = nn.Sequential(*blocks)
        self.head = self._head()

    def _lift(self) -> nn.Module:
        raise NotImplementedError

    def _conv(self) -> nn.Module:
        raise NotImplementedError

    def _norm(self) -> nn.Module:
        raise NotImplementedError

    def _head(self) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.spec.name} expects (batch, {self.in_channels}, n, n, n) for layout "
                f"'{self.in_layout}', "
                f"got {tuple(x.shape)}"
            )
        return self.head(self.blocks(self.lift(x)))


@register("cnn3d")
class SuperResCNN(_SuperResNet):
    """Plain CNN: the no-symmetry baseline (BLOG/W24 "CNN")."""

    def _lift(self) -> nn.Module:
        k = self.spec.kernel_size
        return nn.Conv3d(self.in_channels, self.spec.hidden, k, padding=k // 2)

    def _conv(self) -> nn.Module:
        k, h = self.spec.kernel_size, self.spec.hidden
        return nn.Conv3d(h, h, k, padding=k // 2)

    def _norm(self) -> nn.Module:
        return nn.BatchNorm3d(self.spec.hidden)

    def _head(self) -> nn.Module:
        k = self.spec.kernel_size
        return nn.Conv3d(self.spec.hidden, self.out_channels, k, padding=k // 2)


class _GroupSuperResNet(_SuperResNet):
    """GCNN and RGCNN: regular fields of ``spec.group`` throughout, vector fields in and out."""

    banks: int | None = None

    def __init__(self, spec: ModelSpec) -> None:
        self.separable = bool(spec.options.get("separable", True))
        super().__init__(spec)

    def _lift(self) -> nn.Module:
        k, h = self.spec.kernel_size, self.spec.hidden
        return LiftConv3d(self.group, self.in_layout, h, k, banks=self.banks)

    def _conv(self) -> nn.Module:
        k, h = self.spec.kernel_size, self.spec.hidden
        return GroupConv3d(self.group, h, h, k, separable=self.separable, banks=self.banks)

    def _norm(self) -> nn.Module:
        return RegularBatchNorm3d(self.spec.hidden, self.group.order)

    def _head(self) -> nn.Module:
        k, h = self.spec.kernel_size, self.spec.hidden
        return ProjectConv3d(self.group, h, self.out_layout, k, banks=self.banks)


@register("gcnn3d")
class SuperResGCNN(_GroupSuperResNet):
    """Strictly O_h- (or O-) equivariant group CNN on velocity fields (BLOG/W24 "GCNN", minus its defects)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.equivariant_to = spec.group


@register("rgcnn3d")
class SuperResRGCNN(_GroupSuperResNet):
    """Relaxed group CNN (W24 "RGCNN"): ``filter_banks`` banks per layer, exactly equivariant at init."""

    has_regularizer = True

    def __init__(self, spec: ModelSpec) -> None:
        self.banks = int(spec.options.get("filter_banks", 3))
        if self.banks < 1:
            raise ValueError(f"model {spec.name!r}: filter_banks must be >= 1, got {self.banks}")
        super().__init__(spec)

    def relaxed_layers(self) -> list[LiftConv3d | GroupConv3d | ProjectConv3d]:
        return [m for m in self.modules() if isinstance(m, LiftConv3d | GroupConv3d | ProjectConv3d)]

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Σ over relaxed layers of Σ_l Σ_{g,h} |w_l(g) − w_l(h)| (without alpha; zero iff equivariant)."""
        return torch.stack([layer.relaxation_penalty() for layer in self.relaxed_layers()]).sum()
