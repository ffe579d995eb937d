"""Checkpoints: model + optimiser + scheduler + history, written atomically, loadable without the config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import DiskFullError, atomic_path
from ..models.base import FieldModel, ModelSpec, load_model_state
from ..models.registry import build_model

# What torch's zip writer says when a write came up short (a full disk): "[enforce fail at inline_container.cc:…]
# unexpected pos …" or "PytorchStreamWriter failed writing file …: file write failed".
_SHORT_WRITE = ("unexpected pos", "file write failed")


def save(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically; a full disk raises :class:`DiskFullError` naming ``path`` and the free space."""
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as err:
            if any(marker in str(err) for marker in _SHORT_WRITE):
                raise DiskFullError.writing(path, err) from err
            raise


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
