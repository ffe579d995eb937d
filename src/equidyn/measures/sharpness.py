"""Two sharpness measures along the same seeded random unit directions in parameter space ([BLOG]).

* **BLOG sharpness** (kept for comparability with the published numbers):

      φ(w) = 1/(|D||T|) Σ_{t∈T} Σ_{d∈D} |L(w + t·d) − L(w)|,   ‖d‖₂ = 1 over the *whole* parameter vector.

  It is *not* a curvature measure: ``L(w + t·d) − L(w) = t ∇L·d + t²/2 dᵀHd + …``, and the first-order term
  dominates wherever the gradient of the measured loss is not zero. It never is at a checkpoint: the measured loss
  (eval mode, first prediction step, a data subset) is not the trained objective. On the level study's models the
  curvature part was only 3-57 % of φ at t = 0.01-0.05.
* **Curvature sharpness** (what "flatter minimum" means):

      κ(w) = 1/(|D||T|) Σ_{t∈T} Σ_{d∈D} [(L(w + t·d) + L(w − t·d))/2 − L(w)]

  The symmetric difference cancels every odd-order term, so ``κ = t²/2 · mean_d dᵀHd + O(t⁴)``: the directional
  curvature averaged over random directions (``E_d dᵀHd = tr H / n``), unchanged by any linear term in the loss
  (tests). It is signed: negative where the loss curves down. ``curvature_per_t2 = 2κ_t/t²`` reports it per unit
  displacement so different ``t`` compare.

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
    """BLOG and curvature sharpness of ``model`` on a fixed data subset along ``n_directions`` seeded unit directions.

    Returns a JSON-ready dict:

    * ``loss``: ``L(w)``, the sample-weighted mean criterion over ``batches``;
    * ``sharpness``: the BLOG's φ(w) averaged over all directions and displacements (first + second order);
    * ``sharpness_rel``: ``sharpness / loss`` (NaN when ``loss`` is 0), for comparing models of different fit;
    * ``per_displacement``: φ at each displacement (mean over directions), in the order of ``displacements``;
    * ``curvature``: the curvature sharpness κ(w), averaged over all directions and displacements;
    * ``curvature_se``: its standard error over directions (NaN for one direction);
    * ``curvature_per_displacement``: κ at each displacement; ``curvature_per_t2``: ``2κ_t/t²`` at each;
    * ``loss_perturbed`` / ``loss_perturbed_minus``: ``L(w ± t·d)`` as ``[direction][displacement]``;
    * ``displacements``, ``n_directions``, ``seed``, ``n_params``, ``normalisation``, ``definitions``.
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
        plus: list[list[float]] = []
        minus: list[list[float]] = []
        try:
            for d in random_unit_directions(n_params, n_directions, seed):
                row_plus, row_minus = [], []
                for t in ts:
                    for sign, row in ((1.0, row_plus), (-1.0, row_minus)):
                        start = 0
                        for p, p0 in zip(params, saved, strict=True):
                            step = d[start : start + p.numel()].view_as(p).to(device=p.device, dtype=p.dtype)
                            p.copy_(p0 + (sign * t) * step)
                            start += p.numel()
                        row.append(evaluate_loss(model, batches, criterion))
                plus.append(row_plus)
                minus.append(row_minus)
        finally:
            for p, p0 in zip(params, saved, strict=True):
                p.copy_(p0)

    per_t = [sum(abs(row[j] - loss0) for row in plus) / n_directions for j in range(len(ts))]
    value = sum(per_t) / len(ts)
    # per direction: κ_d = mean_t [(L(w+td) + L(w−td))/2 − L(w)]
    kappa = [
        [(p_j + m_j) / 2 - loss0 for p_j, m_j in zip(p_row, m_row, strict=True)]
        for p_row, m_row in zip(plus, minus, strict=True)
    ]
    per_direction = [sum(row) / len(ts) for row in kappa]
    curvature = sum(per_direction) / n_directions
    curvature_se = (
        math.sqrt(sum((c - curvature) ** 2 for c in per_direction) / (n_directions - 1) / n_directions)
        if n_directions > 1
        else float("nan")
    )
    curvature_per_t = [sum(row[j] for row in kappa) / n_directions for j in range(len(ts))]
    return {
        "loss": loss0,
        "sharpness": value,
        "sharpness_rel": value / loss0 if loss0 != 0 else float("nan"),
        "per_displacement": per_t,
        "curvature": curvature,
        "curvature_se": curvature_se,
        "curvature_per_displacement": curvature_per_t,
        "curvature_per_t2": [
            2 * c / t**2 if t != 0 else float("nan") for c, t in zip(curvature_per_t, ts, strict=True)
        ],
        "displacements": ts,
        "loss_perturbed": plus,
        "loss_perturbed_minus": minus,
        "n_directions": n_directions,
        "seed": seed,
        "n_params": n_params,
        "normalisation": "unit L2 norm over the whole trainable-parameter vector",
        "definitions": {
            "sharpness": "BLOG: mean_{d,t} |L(w+td) - L(w)| (first and second order)",
            "curvature": "mean_{d,t} [(L(w+td) + L(w-td))/2 - L(w)] = t^2/2 mean_d d'Hd + O(t^4)",
        },
    }
