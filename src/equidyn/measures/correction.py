"""How much a residual model learned: its correction to the trivial forecast that its own skip implements.

Why (issue 20): a model with a ``residual`` skip predicts ``skip(x) + f(x)``. If training collapses ``f`` towards 0
the run's test error is the skip's, and measures of its loss surface (λ_max, sharpness) are then measures of a
network that learned almost nothing — "relaxed is flatter" can mean "relaxed learned less". So every run records

* ``correction_ratio = rms(f(x)) / rms(y − skip(x))``: the size of the learned correction relative to the
  correction the target needs (0: collapsed onto the skip; ≈ 1: a correction of the right size), and
* ``skill_vs_skip = 1 − rms(prediction − y) / rms(skip(x) − y)``: the fraction of the skip's error removed
  (> 0: beats the skip, the standard's "learned" criterion; 1: perfect).

A model without a skip is measured against persistence (the last input frame), the trivial forecast of every
forecasting study; the record names the skip used.

Both over the first predicted step of every window of a split, in one pass, in the task's (normalised) units —
ratios, so the scale cancels.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.base import skip_prediction


@torch.no_grad()
def correction_diagnostics(task, model: nn.Module, split: str, batch_size: int = 64) -> dict[str, float]:
    """``correction_ratio`` and ``skill_vs_skip`` of ``model`` on ``split`` (first step), against the skip the model
    implements (``spec.residual``) or, for a model without one, against persistence (``skip``: which one)."""
    kind = model.spec.residual or "last"
    sums = torch.zeros(3, dtype=torch.float64)  # |f|², |y − skip|², |pred − y|²
    for start in range(0, task.n(split), batch_size):
        idx = torch.arange(start, min(start + batch_size, task.n(split)), device=task.device)
        x, y = task.batch(split, idx)
        target = y[:, 0]
        pred = model(x)
        skip = skip_prediction(kind, x, model.out_channels, tuple(pred.shape[2:]))
        sums += (
            torch.stack([(pred - skip).pow(2).sum(), (target - skip).pow(2).sum(), (pred - target).pow(2).sum()])
            .double()
            .cpu()
        )
    correction, needed, error = (float(v) for v in sums.sqrt())
    return {
        "skip": kind,
        "correction_ratio": correction / needed if needed > 0 else float("nan"),
        "skill_vs_skip": 1.0 - error / needed if needed > 0 else float("nan"),
    }


def flops_per_sample(model: nn.Module, x: torch.Tensor) -> int:
    """Floating-point operations of one forward pass per sample, counted by ``torch.utils.flop_counter`` (a
    multiply-add counts 2; convolutions and matmuls only, which dominate every model here)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x[:1])
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
