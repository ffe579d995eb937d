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

    def with_hidden(self, hidden: int) -> ModelSpec:
        from dataclasses import replace

        return replace(self, hidden=hidden)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, stored in every checkpoint so it can be rebuilt without the config."""
        return {
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

    def regularizer(self, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """The relaxation (or soft-constraint) penalty, *without* alpha. Zero for unconstrained/strict models.

        ``inputs`` is the current batch; only data-dependent penalties (CLCNN's hinge) use it.
        """
        return torch.zeros((), device=next(self.parameters()).device)


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
