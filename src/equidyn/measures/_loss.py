"""The loss problem shared by the sharpness and Hessian measures: a model, a fixed data subset, a criterion.

Both measures need the same three things done the same way, so they live here once:

* the loss ``L(w)`` is the *sample-weighted* mean of a mean-reduction criterion over the caller's fixed list of
  batches, so a short last batch does not carry the weight of a full one (the published test MAE did,
  docs/references.md [W24]);
* the trainable parameters are viewed as one flat vector, because directions (sharpness) and Krylov vectors
  (Hessian) live on the whole parameter vector, not per layer;
* randomness comes from a private ``torch.Generator`` seeded by the caller's seed alone and drawn on the CPU in
  float64, so two models compared with the same seed see the same draws whatever their device, and the global
  RNG is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]
Criterion = Callable[[Tensor, Tensor], Tensor]


def check_batches(batches: Sequence[Batch]) -> list[Batch]:
    """Validate the fixed data subset and return it as a list; a bad entry raises naming its index."""
    batches = list(batches)
    if not batches:
        raise ValueError("the data subset is empty: pass at least one (inputs, targets) batch")
    for i, batch in enumerate(batches):
        if not (isinstance(batch, tuple | list) and len(batch) == 2):
            raise ValueError(f"batch {i} must be an (inputs, targets) pair, got {type(batch).__name__}")
        x, y = batch
        if not (isinstance(x, Tensor) and isinstance(y, Tensor)):
            raise TypeError(f"batch {i}: inputs and targets must be tensors")
        if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"batch {i}: inputs have {x.shape[0]} samples and targets {y.shape[0]}; need equal and > 0"
            )
    return batches


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the measures perturb/differentiate, in ``model.parameters()`` order."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    return params


def n_samples(batches: Sequence[Batch]) -> int:
    return sum(int(x.shape[0]) for x, _ in batches)


def batch_loss(model: nn.Module, batch: Batch, criterion: Criterion) -> Tensor:
    """Criterion on one batch, on the model's device; must be a scalar (mean reduction)."""
    x, y = batch
    device = next(model.parameters()).device
    loss = criterion(model(x.to(device)), y.to(device))
    if loss.dim() != 0:
        raise ValueError(f"criterion must return a scalar (mean reduction), got shape {tuple(loss.shape)}")
    return loss


@torch.no_grad()
def evaluate_loss(model: nn.Module, batches: Sequence[Batch], criterion: Criterion) -> float:
    """``L(w)``: sample-weighted mean of the criterion over the batches, accumulated in float64.

    The caller is responsible for the mode (the measures call it inside ``functional_eval``).
    """
    total, count = 0.0, 0
    for batch in batches:
        n = int(batch[0].shape[0])
        total += float(batch_loss(model, batch, criterion).double()) * n
        count += n
    return total / count


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator owned by one measurement call: seeded by ``seed`` only, global RNG untouched."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return gen


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten_like(vec: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector into views shaped like ``params`` (same dtype/device as ``vec``)."""
    out, start = [], 0
    for p in params:
        out.append(vec[start : start + p.numel()].view_as(p))
        start += p.numel()
    return out
