"""Supervised tasks: how batches are drawn, how a model predicts, and how predictions are scored.

Two kinds cover every study:

* :class:`ForecastTask` — autoregressive forecasting from a window of ``input_frames`` frames (smoke studies). The
  windows are index pairs ``(sim, start)`` into one frame array, so overlapping windows cost no memory. Each split
  only contains windows that lie *entirely* inside its frame range, which is what guarantees that no validation or
  test target is ever seen in a training window ([W22] lists the overlap in the published code).
* :class:`PairTask` — plain input → target pairs (super-resolution, tutorial).

Everything is held normalised by one positive scalar ``scale`` (a vector field's rms speed: a scalar keeps the
C4/O_h symmetry of the data, which per-component statistics would break); scores are reported in physical units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..symmetry import FieldLayout, GridGroup

LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss}


@dataclass
class ForecastTask:
    """Windows over ``frames`` ``(sim, time, C, *grid)``; a model maps ``input_frames`` frames to the next one."""

    frames: torch.Tensor
    windows: dict[str, torch.Tensor]  # split -> (n, 2) long tensor of (sim, start)
    input_frames: int
    steps: dict[str, int]  # split -> rollout steps scored
    scale: float
    loss: str = "mse"
    augment: C4Augmentation | None = None  # random group elements applied to each training window

    def __post_init__(self) -> None:
        for split, w in self.windows.items():
            if len(w) == 0:
                raise ValueError(f"split {split!r} has no windows: its frame range is shorter than a window")

    def n(self, split: str) -> int:
        return len(self.windows[split])

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def to(self, device: torch.device) -> None:
        """Move the frames and the window index to ``device`` once, so batches are gathered there (issue 14)."""
        self.frames = self.frames.to(device)
        self.windows = {split: w.to(device) for split, w in self.windows.items()}

    def batch(self, split: str, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``(B, input_frames*C, *grid)`` and targets ``(B, steps, C, *grid)``."""
        windows = self.windows[split]
        sim, start = windows[index.to(windows.device)].to(self.frames.device).unbind(1)
        length = self.input_frames + self.steps[split]
        t = start[:, None] + torch.arange(length, device=self.frames.device)
        seq = self.frames[sim[:, None], t]  # (B, length, C, *grid)
        x = seq[:, : self.input_frames].flatten(1, 2)
        return x, seq[:, self.input_frames :]

    def predict(self, model: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive rollout: each prediction replaces the oldest input frame."""
        c = x.shape[1] // self.input_frames
        preds = []
        for _ in range(steps):
            y = model(x)
            preds.append(y)
            x = torch.cat([x[:, c:], y], dim=1) if self.input_frames > 1 else y
        return torch.stack(preds, dim=1)


@dataclass
class C4Augmentation:
    """Random group elements applied to training pairs (the tutorial's soft-constraint baseline)."""

    group: GridGroup
    in_layout: FieldLayout
    out_layout: FieldLayout

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        elements = torch.randint(self.group.order, (len(x),), generator=generator)
        xs, ys = [], []
        for i, g in enumerate(elements.tolist()):
            xs.append(self.group.act(g, x[i : i + 1], self.in_layout))
            ys.append(self.group.act(g, y[i : i + 1, 0], self.out_layout)[:, None])
        return torch.cat(xs), torch.cat(ys)


@dataclass
class PairTask:
    """Fixed input/target pairs per split; targets carry a singleton step axis for a uniform interface."""

    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    scale: float
    loss: str = "mse"
    augment: C4Augmentation | None = None

    @property
    def steps(self) -> dict[str, int]:
        return {split: 1 for split in self.inputs}

    def n(self, split: str) -> int:
        return len(self.inputs[split])

    @property
    def device(self) -> torch.device:
        return next(iter(self.inputs.values())).device

    def to(self, device: torch.device) -> None:
        self.inputs = {k: v.to(device) for k, v in self.inputs.items()}
        self.targets = {k: v.to(device) for k, v in self.targets.items()}

    def batch(self, split: str, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.inputs[split].device)
        return self.inputs[split][index], self.targets[split][index][:, None]

    def predict(self, model: nn.Module, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
        return model(x)[:, None]


Task = ForecastTask | PairTask


def rollout_loss(task: Task, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training loss: per-step loss *summed* over the rollout steps (W22), mean over elements within a step."""
    pred = task.predict(model, x, y.shape[1])
    fn = LOSSES[task.loss]
    return torch.stack([fn(pred[:, s], y[:, s]) for s in range(y.shape[1])]).sum()


@torch.no_grad()
def score(task: Task, model: nn.Module, split: str, batch_size: int = 64) -> dict[str, float]:
    """Physical-unit scores of ``split``: RMSE and MAE over all samples, steps and elements, and RMSE per step.

    Sample means, not means of batch means, so every sample weighs the same (the published 3-D test MAE was a
    per-batch mean, [W24, BLOG]).
    """
    sq = ab = count = None
    for start in range(0, task.n(split), batch_size):
        idx = torch.arange(start, min(start + batch_size, task.n(split)), device=task.device)
        x, y = task.batch(split, idx)
        err = task.predict(model, x, y.shape[1]) - y  # (B, steps, C, *grid)
        dims = [0, *range(2, err.dim())]
        s, a = err.pow(2).sum(dims).double(), err.abs().sum(dims).double()
        c = torch.full_like(s, err[:, 0].numel())
        sq, ab, count = (s, a, c) if sq is None else (sq + s, ab + a, count + c)
    assert sq is not None and ab is not None and count is not None
    per_step = (sq / count).sqrt() * task.scale
    return {
        "rmse": float((sq.sum() / count.sum()).sqrt() * task.scale),
        "mae": float(ab.sum() / count.sum() * task.scale),
        "rmse_by_step": [float(v) for v in per_step],
    }
