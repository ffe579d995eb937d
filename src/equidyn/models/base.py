"""What every equidyn model is: a map between field tensors in the physical frame, plus a relaxation penalty.

A model maps ``(batch, C_in, *grid)`` to ``(batch, C_out, *grid)``; ``in_layout`` and ``out_layout`` say which
group representation each channel carries, so the symmetry spine can transform inputs and outputs and the
measures can check equivariance without knowing the architecture. Relaxed and soft-constrained models expose
their penalty through :meth:`FieldModel.regularizer`; training adds ``alpha * regularizer`` *linearly* to the
data loss (the published code squared it and skipped it on CPU, [W22]).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..symmetry import FieldLayout, GridGroup


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model: its name, field layouts, size and model-specific options.

    ``grid`` is the spatial size; only models without weight sharing across positions (MLP, locally
    connected) depend on it. ``options`` carries model-specific settings (e.g. ``filter_banks``).

    ``residual``: the network predicts a *correction* to a trivial prediction (:func:`skip_prediction`):
    ``"last"``, the last input frame carried to the output grid (the baseline of its study: persistence for
    forecasting, the interpolated input for super-resolution), or ``"linear"``, the linear extrapolation
    ``2·x_t − x_{t−1}`` of the last two frames (forecasting with >= 2 input frames). ``""``: none. Every
    architecture accepts it, because the skip is exactly equivariant for every group equidyn uses (a linear
    combination of input frames, interpolated with symmetric weights), so it changes what the network has to
    learn, not its symmetry.

    ``rescale``: the network sees each input divided by its own rms ``s`` (over channels and grid) and its output
    is multiplied by ``s`` again (reversible instance normalisation, as RevIN [Kim22] for forecasting under
    distribution shift). A plume accelerates, so test frames are up to 2x larger than any training frame; a
    rescaled model sees inputs of one size throughout. ``s`` is invariant under every grid action, so equivariance
    is unchanged; with ``residual`` the skip is added after rescaling, so it is still exactly the baseline.
    """

    name: str
    in_layout: FieldLayout
    out_layout: FieldLayout
    hidden: int
    layers: int
    grid: tuple[int, ...]
    group: str = "C4"
    kernel_size: int = 3
    options: dict[str, Any] = field(default_factory=dict)
    residual: str = ""
    rescale: bool = False

    def with_hidden(self, hidden: int) -> ModelSpec:
        from dataclasses import replace

        return replace(self, hidden=hidden)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, stored in every checkpoint so it can be rebuilt without the config.

        ``residual`` and ``rescale`` are written only when set, so the identity of every run trained before they
        existed (which the trainer compares on resume) is unchanged.
        """
        d = {
            "name": self.name,
            "in_layout": str(self.in_layout),
            "out_layout": str(self.out_layout),
            "hidden": self.hidden,
            "layers": self.layers,
            "grid": list(self.grid),
            "group": self.group,
            "kernel_size": self.kernel_size,
            "options": dict(self.options),
        }
        if self.residual:
            d["residual"] = self.residual
        if self.rescale:
            d["rescale"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        d = dict(d)
        d["in_layout"] = FieldLayout.parse(d["in_layout"])
        d["out_layout"] = FieldLayout.parse(d["out_layout"])
        d["grid"] = tuple(d["grid"])
        return cls(**d)


class FieldModel(nn.Module):
    """Base class: subclasses implement ``forward``; relaxed ones override ``regularizer``."""

    #: Which group the model is *built* to be exactly equivariant to (None: no imposed symmetry).
    equivariant_to: str | None = None
    #: Whether ``regularizer`` is a real penalty (relaxed / soft-constrained models); alpha > 0 needs it.
    has_regularizer: bool = False

    def __init__(self, spec: ModelSpec, group: GridGroup) -> None:
        super().__init__()
        self.spec = spec
        self.group = group
        self.in_layout = spec.in_layout
        self.out_layout = spec.out_layout
        self.in_channels = group.channels(spec.in_layout)
        self.out_channels = group.channels(spec.out_layout)
        if spec.residual not in SKIPS:
            raise ValueError(f"model {spec.name!r}: residual must be one of {sorted(SKIPS)}, got {spec.residual!r}")
        frames = self.in_channels // self.out_channels
        if spec.residual and (self.in_channels % self.out_channels or frames < SKIPS[spec.residual]):
            raise ValueError(
                f"model {spec.name!r}: residual {spec.residual!r} needs the input to be >= {SKIPS[spec.residual]} "
                f"whole frames of the output layout '{spec.out_layout}', got input '{spec.in_layout}'"
            )

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``forward`` wrapped by the spec's ``rescale`` and ``residual``: ``s·f(x/s) + skip(x)``.

        Here rather than in every architecture's ``forward``: it also runs under ``torch.func.functional_call``
        (the Hessian-vector products), and the state dict is unchanged.
        """
        if not (self.spec.residual or self.spec.rescale):
            return super().__call__(x, *args, **kwargs)
        scale = _input_scale(x) if self.spec.rescale else None
        out = super().__call__(x / scale if scale is not None else x, *args, **kwargs)
        if scale is not None:
            out = out * scale
        if self.spec.residual:
            out = out + skip_prediction(self.spec.residual, x, self.out_channels, tuple(out.shape[2:]))
        return out

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """The relaxation (or soft-constraint) penalty, *without* alpha. Zero for unconstrained/strict models.

        ``inputs`` is the current batch; only data-dependent penalties (CLCNN's hinge) use it.
        """
        return torch.zeros((), device=next(self.parameters()).device)


#: the trivial predictions a ``residual`` model corrects, and how many input frames each needs
SKIPS = {"": 0, "last": 1, "linear": 2}


def skip_prediction(kind: str, x: torch.Tensor, out_channels: int, out_grid: tuple[int, ...]) -> torch.Tensor:
    """The trivial prediction ``kind`` of :data:`SKIPS` from input ``x`` (frames stacked oldest first)."""
    last = last_frame(x, out_channels, out_grid)
    if kind == "last":
        return last
    if kind == "linear":
        return 2 * last - last_frame(x[:, :-out_channels], out_channels, out_grid)
    raise ValueError(f"unknown residual {kind!r}; expected one of {sorted(SKIPS)}")


def last_frame(x: torch.Tensor, out_channels: int, out_grid: tuple[int, ...] | None = None) -> torch.Tensor:
    """The last ``out_channels`` input channels (the newest frame), linearly interpolated to ``out_grid``.

    Interpolation is at cell centres (``align_corners=False``): a coarse block mean sits at the centre of its fine
    block. At an integer scale factor the interpolation weights are symmetric under reversing an axis and the same
    on every axis, so the map commutes exactly with the grid actions of C4, D4, O and O_h (tested). This is both
    the trivial baseline of a study and the skip of a ``residual`` model: one definition for both.
    """
    frame = x[:, -out_channels:]
    if out_grid is None or tuple(frame.shape[2:]) == tuple(out_grid):
        return frame
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[frame.ndim - 2]
    return nn.functional.interpolate(frame, size=tuple(out_grid), mode=mode, align_corners=False)


def _input_scale(x: torch.Tensor) -> torch.Tensor:
    """Per-sample rms over channels and grid, shaped to broadcast; floored so a zero field stays finite.

    Detached (what the laptop study ran with): a derivative with respect to the input, as the Lie derivative takes,
    treats the scale as a constant, which is exact wherever the rms is invariant under the transformation.
    """
    return x.detach().pow(2).mean(dim=tuple(range(1, x.ndim)), keepdim=True).sqrt().clamp_min(1e-6)


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict in evaluation mode.

    escnn convolutions register their cached filter as a buffer only in eval mode, so a state dict taken in train
    mode cannot be loaded into a freshly built model and vice versa; equidyn always saves and loads in eval mode.
    """
    was_training = model.training
    model.eval()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.train(was_training)
    return state


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`model_state`; leaves the model in the mode it was in."""
    was_training = model.training
    model.eval()
    model.load_state_dict(state)
    model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class functional_eval:
    """Evaluation mode that still builds filters from the current parameters.

    escnn's convolutions cache their expanded filter when put in eval mode, so after ``model.eval()`` an in-place
    weight perturbation (sharpness) or a functional parameter substitution (Hessian-vector products) changes
    nothing, and repeated backward passes through the cached filter fail ([BLOG]). Inside this context
    normalisation layers use their running statistics (true eval behaviour) while every module that expands
    its filter from parameters re-expands it on each call. The previous modes are restored on exit.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._saved: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self._saved = [(m, m.training) for m in self.model.modules()]
        for m, _ in self._saved:
            m.training = False
        for m, _ in self._saved:
            # escnn R2Conv/R3Conv and equidyn's relaxed convs expose expand_parameters(); keep them expanding.
            if hasattr(m, "expand_parameters"):
                if hasattr(m, "filter"):
                    # drop a filter cached by an earlier model.eval(): it may hold stale weights
                    with contextlib.suppress(AttributeError):
                        del m.filter
                m.training = True
        return self.model

    def __exit__(self, *exc: object) -> None:
        for m, mode in self._saved:
            m.training = mode
        for m, mode in self._saved:
            if hasattr(m, "expand_parameters") and not mode:
                # re-cache the filter from the current weights, as escnn's own .eval() would
                m.training = True
                m.train(False)
