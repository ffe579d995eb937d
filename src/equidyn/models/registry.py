"""Models registered by name, and sizing a model to a parameter budget.

Configs name models (``convnet``, ``e2cnn``, ``rsteer`` ...) and give a *parameter budget* rather than a width,
because the studies compare models at equal parameter count (about 600k each in the smoke studies). The width
that meets the budget is found by search over ``hidden`` and recorded with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..symmetry import group_by_name
from .base import FieldModel, ModelSpec, count_parameters

Builder = Callable[[ModelSpec], FieldModel]
_REGISTRY: dict[str, Builder] = {}
_MODULES = (
    "equidyn.models.smoke2d",
    "equidyn.models.zoo2d",
    "equidyn.models.superres3d",
    "equidyn.models.tutorial",
)

F = TypeVar("F", bound=Callable[..., FieldModel])


def register(name: str) -> Callable[[F], F]:
    """Class or function decorator: make a model buildable as ``build_model(ModelSpec(name=...))``."""

    def deco(builder: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not builder:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = builder
        return builder

    return deco


def _load_all() -> None:
    import importlib

    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a real import error inside the module, not a missing optional module
                raise


def available_models() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def build_model(spec: ModelSpec) -> FieldModel:
    _load_all()
    if spec.name not in _REGISTRY:
        raise ValueError(f"unknown model {spec.name!r}; available: {', '.join(sorted(_REGISTRY))}")
    model = _REGISTRY[spec.name](spec)
    if not isinstance(model, FieldModel):
        raise TypeError(f"model {spec.name!r} must be a FieldModel, got {type(model).__name__}")
    return model


def parameter_polynomial(spec: ModelSpec) -> tuple[float, float, float]:
    """Coefficients ``(a, b, c)`` with ``params(hidden) = a·h² + b·h + c``.

    Every registered model's parameter count is a polynomial of degree ≤ 2 in ``hidden`` (hidden-to-hidden
    weights, in/out weights, per-field biases and norms), so three builds at tiny widths determine it exactly.
    Building escnn models at paper width takes seconds each (its He initialisation loops in Python), so a search
    by repeated full builds would cost minutes.
    """
    p1, p2, p3 = (count_parameters(build_model(spec.with_hidden(h))) for h in (1, 2, 3))
    a = (p3 - 2 * p2 + p1) / 2
    b = p2 - p1 - 3 * a
    c = p1 - a - b
    return a, b, c


def fit_hidden(spec: ModelSpec, budget: int) -> tuple[ModelSpec, int]:
    """The spec whose ``hidden`` gives the parameter count closest to ``budget``, and that predicted count."""
    a, b, c = parameter_polynomial(spec)

    def params(h: int) -> int:
        return round(a * h * h + b * h + c)

    root = (-b + (b * b - 4 * a * (c - budget)) ** 0.5) / (2 * a) if a > 0 else (budget - c) / b
    candidates = [h for h in {int(root), int(root) + 1} if h >= 1] or [1]
    best = min(candidates, key=lambda h: abs(params(h) - budget))
    return spec.with_hidden(best), params(best)


def group_of(spec: ModelSpec):
    return group_by_name(spec.group)
