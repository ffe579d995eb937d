"""Models registered by name, and sizing a model to a parameter budget.

Configs name models (``convnet``, ``e2cnn``, ``rsteer`` ...) and give a *parameter budget* rather than a width,
because the studies compare models at equal parameter count (about 600k each in the smoke studies). The width
that meets the budget is found by search over ``hidden`` and recorded with the run.

:data:`MODELS` declares every model once — its module, its dimension and whether it has a penalty that alpha
weighs — as plain data, so the config validation at the workflow's start-up can check model names, dimensions and
alphas without importing torch. ``register`` refuses a model that is not declared there or whose
``has_regularizer`` disagrees with the declaration, so the table and the code cannot drift apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .base import FieldModel, ModelSpec

    Builder = Callable[[ModelSpec], FieldModel]


@dataclass(frozen=True)
class ModelInfo:
    """What the config validation needs to know about a model, without building it."""

    module: str  # the module whose import registers it
    ndim: int  # 2: the smoke/tutorial fields; 3: the turbulence cubes
    penalty: bool  # has a relaxation / soft-constraint penalty, so alpha > 0 means something
    groups: tuple[str, ...] = ()  # the groups a tutorial entry's ``group:`` may choose (none: the key is refused)


MODELS: dict[str, ModelInfo] = {
    "convnet": ModelInfo("equidyn.models.smoke2d", 2, False),
    "e2cnn": ModelInfo("equidyn.models.smoke2d", 2, False),
    "rsteer": ModelInfo("equidyn.models.smoke2d", 2, True),
    "mlp": ModelInfo("equidyn.models.baselines2d", 2, False),
    "rpp": ModelInfo("equidyn.models.baselines2d", 2, True),
    "combo": ModelInfo("equidyn.models.baselines2d", 2, False),
    "lift": ModelInfo("equidyn.models.baselines2d", 2, False),
    "clcnn": ModelInfo("equidyn.models.baselines2d", 2, True),
    "rgroup": ModelInfo("equidyn.models.rgroup", 2, True),
    "cnn3d": ModelInfo("equidyn.models.superres3d", 3, False),
    "gcnn3d": ModelInfo("equidyn.models.superres3d", 3, False),
    "rgcnn3d": ModelInfo("equidyn.models.superres3d", 3, True),
    "closure_cnn": ModelInfo("equidyn.models.tutorial", 2, False),
    "closure_escnn": ModelInfo("equidyn.models.tutorial", 2, False, groups=("C4", "D4")),
    "closure_cnn_penalty": ModelInfo("equidyn.models.tutorial", 2, True),
}

_REGISTRY: dict[str, Builder] = {}

F = TypeVar("F", bound=Callable[..., "FieldModel"])


def register(name: str) -> Callable[[F], F]:
    """Class or function decorator: make a model buildable as ``build_model(ModelSpec(name=...))``."""

    def deco(builder: F) -> F:
        if name not in MODELS:
            raise ValueError(f"model {name!r} is not declared in equidyn.models.registry.MODELS; add it there")
        declared = MODELS[name].penalty
        if isinstance(builder, type) and bool(getattr(builder, "has_regularizer", False)) != declared:
            raise ValueError(f"model {name!r}: has_regularizer disagrees with MODELS (penalty={declared})")
        if name in _REGISTRY and _REGISTRY[name] is not builder:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = builder
        return builder

    return deco


def _load_all() -> None:
    """Import every declared module; a missing one is an error (it used to be skipped silently)."""
    for module in sorted({info.module for info in MODELS.values()}):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            raise ImportError(f"model module {module} (declared in equidyn.models.registry.MODELS) is missing") from err
    missing = sorted(set(MODELS) - set(_REGISTRY))
    if missing:
        raise RuntimeError(f"models {missing} are declared in MODELS but their modules do not register them")


def available_models() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def build_model(spec: ModelSpec) -> FieldModel:
    from .base import FieldModel

    _load_all()
    if spec.name not in _REGISTRY:
        raise ValueError(f"unknown model {spec.name!r}; available: {', '.join(sorted(_REGISTRY))}")
    model = _REGISTRY[spec.name](spec)
    if not isinstance(model, FieldModel):
        raise TypeError(f"model {spec.name!r} must be a FieldModel, got {type(model).__name__}")
    if model.has_regularizer != MODELS[spec.name].penalty:
        raise TypeError(
            f"model {spec.name!r}: has_regularizer disagrees with MODELS (penalty={MODELS[spec.name].penalty})"
        )
    return model


def parameter_polynomial(spec: ModelSpec) -> tuple[float, float, float]:
    """Coefficients ``(a, b, c)`` with ``params(hidden) = a·h² + b·h + c``.

    Every registered model's parameter count is a polynomial of degree ≤ 2 in ``hidden`` (hidden-to-hidden
    weights, in/out weights, per-field biases and norms), so three builds at tiny widths determine it exactly.
    Building escnn models at paper width takes seconds each (its He initialisation loops in Python), so a search
    by repeated full builds would cost minutes.
    """
    from .base import count_parameters

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
