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
_MODULES = ("equidyn.models.smoke2d", "equidyn.models.zoo2d", "equidyn.models.superres3d", "equidyn.models.tutorial")

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


def fit_hidden(spec: ModelSpec, budget: int, lo: int = 1, hi: int = 1024) -> ModelSpec:
    """The spec whose ``hidden`` gives the parameter count closest to ``budget`` (count grows with hidden)."""
    counts: dict[int, int] = {}

    def params(h: int) -> int:
        if h not in counts:
            counts[h] = count_parameters(build_model(spec.with_hidden(h)))
        return counts[h]

    while lo < hi:  # smallest h with params(h) >= budget
        mid = (lo + hi) // 2
        if params(mid) < budget:
            lo = mid + 1
        else:
            hi = mid
    best = min({max(lo - 1, 1), lo}, key=lambda h: abs(params(h) - budget))
    return spec.with_hidden(best)


def group_of(spec: ModelSpec):
    return group_by_name(spec.group)
