"""The parameter-free predictors that the trivial baselines score (:mod:`equidyn.studies.baseline_job`).

Each is an ``nn.Module`` so that :func:`equidyn.training.tasks.score` scores it exactly like a trained model, on the
same task; they are defined once here, at module level, rather than rebuilt on every call. Persistence and the
linear extrapolation are also the skips of the ``residual`` models (:func:`equidyn.models.base.skip_prediction`).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import last_frame, skip_prediction


class Persistence(nn.Module):
    """Predicts the last input frame: ``(B, frames*C, *grid)`` → ``(B, C, *grid)``."""

    def __init__(self, input_frames: int) -> None:
        super().__init__()
        self.input_frames = input_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return last_frame(x, x.shape[1] // self.input_frames)


class LinearExtrapolation(nn.Module):
    """``2·x_t − x_{t−1}`` from the last two input frames: the second trivial forecast, reported next to
    persistence because a ``residual: linear`` model is built on it (a model that beats persistence only
    through its skip has learnt nothing; this column shows whether it does better than its skip)."""

    def __init__(self, input_frames: int) -> None:
        super().__init__()
        self.input_frames = input_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return skip_prediction("linear", x, x.shape[1] // self.input_frames, tuple(x.shape[2:]))


class InterpolatedInput(nn.Module):
    """The last coarse time's velocity (channels ``-3:``), trilinearly upsampled by ``factor`` (cell centres,
    ``align_corners=False``: coarse block means sit at the centres of their fine blocks)."""

    def __init__(self, factor: int, components: int = 3) -> None:
        super().__init__()
        self.factor, self.components = factor, components

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return last_frame(x, self.components, tuple(n * self.factor for n in x.shape[2:]))
