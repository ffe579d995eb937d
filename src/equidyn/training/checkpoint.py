"""Checkpoints: model + optimiser + scheduler + history, written atomically, loadable without the config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..models.base import FieldModel, ModelSpec, load_model_state
from ..models.registry import build_model


def save(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise RuntimeError(f"checkpoint {path} cannot be read ({err}); delete it to retrain") from err


def load_model(path: str | os.PathLike) -> tuple[FieldModel, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint, in eval mode, with the checkpoint's metadata."""
    ckpt = load(path)
    model = build_model(ModelSpec.from_dict(ckpt["spec"]))
    load_model_state(model, ckpt["model"])
    model.eval()
    return model, ckpt
