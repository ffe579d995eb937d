"""Sharpness: the mean loss change along seeded random unit directions in parameter space (REFERENCE §5).

    φ(w) = 1/(|D||T|) Σ_{t∈T} Σ_{d∈D} |L(w + t·d) − L(w)|,   ‖d‖₂ = 1 over the *whole* parameter vector.

What this module fixes relative to the published version, and why:

* **Unit directions over the whole parameter vector.** ``d = g/‖g‖`` with ``g ~ N(0, I)``: uniform on the unit
  sphere, so ``t`` is a Euclidean distance in weight space. The published ``randn/N`` made the step size depend
  on the parameter count. Filter normalisation (Li et al. 2018) is *not* used: it rescales each filter to the
  norm of the matching weights and zeroes 1-D parameters, and every escnn weight is a 1-D coefficient vector,
  so equivariant models would be measured along no direction at all.
* **Seeded by the seed alone.** Directions come from a private ``torch.Generator(seed)`` drawn on the CPU in
  float64, one direction at a time, so every model compared with the same seed uses the same stream of draws,
  the result does not depend on the device or on the global RNG, and memory holds one direction at a time.
* **Eval mode on both sides.** ``L(w)`` and ``L(w + t·d)`` are both evaluated inside
  :class:`~equidyn.models.base.functional_eval`: BatchNorm uses its running statistics (the published code
  compared train-mode ``L(w)`` with eval-mode ``L(w + t·d)``, so it measured the BN mismatch), and escnn
  convolutions re-expand their filters from the perturbed weights (with a cached filter an in-place
  perturbation changes nothing and the sharpness reads 0). Running statistics are never updated.
* **Exact restore.** Each perturbation is undone by copying the saved weights back, not by subtracting
  ``t·d`` (which would leave rounding residue in float32).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..models.base import functional_eval
from ._loss import Batch, Criterion, check_batches, evaluate_loss, seeded_generator, trainable_parameters

__all__ = ["random_unit_directions", "sharpness"]


def random_unit_directions(n_params: int, n_directions: int, seed: int) -> Iterator[Tensor]:
    """Yield ``n_directions`` float64 CPU vectors of length ``n_params``, uniform on the unit sphere.

    Deterministic in ``seed``: the same call always yields the same vectors (tests recompute them to check the
    closed form of a quadratic loss).
    """
    if n_params < 1 or n_directions < 1:
        raise ValueError(f"need n_params >= 1 and n_directions >= 1, got {n_params}, {n_directions}")
    gen = seeded_generator(seed)
    for _ in range(n_directions):
        d = torch.randn(n_params, generator=gen, dtype=torch.float64)
        yield d / torch.linalg.vector_norm(d)


@torch.no_grad()
def sharpness(
    model: nn.Module,
    batches: Sequence[Batch],
    criterion: Criterion,
    displacements: Sequence[float],
    n_directions: int,
    seed: int,
) -> dict:
    """Sharpness of ``model`` on a fixed data subset along ``n_directions`` seeded unit directions.

    Returns a JSON-ready dict:

    * ``loss``: ``L(w)``, the sample-weighted mean criterion over ``batches``;
    * ``sharpness``: φ(w) averaged over all directions and displacements;
    * ``sharpness_rel``: ``sharpness / loss`` (NaN when ``loss`` is 0), for comparing models of different fit;
    * ``per_displacement``: φ at each displacement (mean over directions), in the order of ``displacements``;
    * ``loss_perturbed``: ``L(w + t·d)`` as ``[direction][displacement]`` (for plots of the loss landscape);
    * ``displacements``, ``n_directions``, ``seed``, ``n_params``, ``normalisation``.
    """
    batches = check_batches(batches)
    ts = [float(t) for t in displacements]
    if not ts:
        raise ValueError("displacements is empty")
    if not all(math.isfinite(t) for t in ts):
        raise ValueError(f"displacements must be finite, got {ts}")
    params = trainable_parameters(model)
    n_params = sum(p.numel() for p in params)
    saved = [p.detach().clone() for p in params]

    with functional_eval(model):
        loss0 = evaluate_loss(model, batches, criterion)
        perturbed: list[list[float]] = []
        try:
            for d in random_unit_directions(n_params, n_directions, seed):
                row = []
                for t in ts:
                    start = 0
                    for p, p0 in zip(params, saved, strict=True):
                        step = d[start : start + p.numel()].view_as(p).to(device=p.device, dtype=p.dtype)
                        p.copy_(p0 + t * step)
                        start += p.numel()
                    row.append(evaluate_loss(model, batches, criterion))
                perturbed.append(row)
        finally:
            for p, p0 in zip(params, saved, strict=True):
                p.copy_(p0)

    per_t = [sum(abs(row[j] - loss0) for row in perturbed) / n_directions for j in range(len(ts))]
    value = sum(per_t) / len(ts)
    return {
        "loss": loss0,
        "sharpness": value,
        "sharpness_rel": value / loss0 if loss0 != 0 else float("nan"),
        "per_displacement": per_t,
        "displacements": ts,
        "loss_perturbed": perturbed,
        "n_directions": n_directions,
        "seed": seed,
        "n_params": n_params,
        "normalisation": "unit L2 norm over the whole trainable-parameter vector",
    }
