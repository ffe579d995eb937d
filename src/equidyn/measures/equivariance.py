"""Equivariance error (EE) of a model or a dataset under a finite group's *physical* action.

``EE = E_x mean_{g≠e} mean |f(g·x) − g·f(x)|`` (L1, BLOG §5), computed with :meth:`GridGroup.act`, the one
definition of the action that the data generation also uses. ``ee_rel`` divides by ``mean |f(x)|`` so models of
different output scale compare; it is what "≤ 1e-5 relative" bounds in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from ..symmetry import FieldLayout, GridGroup


@torch.no_grad()
def equivariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    group: GridGroup,
    in_layout: FieldLayout,
    out_layout: FieldLayout,
    *,
    elements: Iterable[int] | None = None,
    batch_size: int = 32,
) -> dict[str, float]:
    """Absolute (``ee``) and relative (``ee_rel``) equivariance error of ``f`` on the samples ``x``.

    Also returns ``ee_by_element`` (absolute EE for each non-identity element) and ``ee_max`` (largest absolute
    deviation anywhere), which the exactness tests bound.
    """
    elements = [g for g in (elements if elements is not None else group.elements) if g != 0]
    if not elements:
        raise ValueError("need at least one non-identity group element")
    total = {g: 0.0 for g in elements}
    worst = 0.0
    norm = 0.0
    count = 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        fx = f(xb)
        norm += float(fx.abs().double().sum())
        count += fx.numel()
        for g in elements:
            diff = f(group.act(g, xb, in_layout)) - group.act(g, fx, out_layout)
            total[g] += float(diff.abs().double().sum())
            worst = max(worst, float(diff.abs().max()))
    by_element = {g: total[g] / count for g in elements}
    ee = sum(by_element.values()) / len(elements)
    mean_abs = norm / count
    return {
        "ee": ee,
        "ee_rel": ee / mean_abs if mean_abs > 0 else float("nan"),
        "ee_max": worst,
        "output_mean_abs": mean_abs,
        "ee_by_element": {str(g): v for g, v in by_element.items()},
    }


def orbit_equivariance_error(orbits: np.ndarray) -> dict[str, float]:
    """The data EE of group orbits of simulations whose elements were undone: ``orbits`` is
    ``(n_orbits, members, …)`` with member 0 the untransformed simulation and member ``j`` the simulation of the
    ``j``-th element's image, acted back by its inverse.

    ``ee`` is the mean over orbits of ``mean_j mean |d₀ − d_j|`` (``j ≥ 1``, means over every remaining axis): for
    four C4 members exactly the levels' data EE ([W22], ``smoke_datasets.data_equivariance_error``), 0 for data
    whose dynamics keep the group. ``ee_rel`` divides by ``mean |d₀|``.
    """
    if orbits.ndim < 3 or orbits.shape[1] < 2:
        raise ValueError(f"need (n_orbits, members >= 2, ...) orbits, got shape {orbits.shape}")
    d = orbits.astype(np.float64, copy=False)
    members = range(1, d.shape[1])
    per_orbit = [np.mean([np.abs(o[0] - o[j]).mean() for j in members]) for o in d]
    ee = float(np.mean(per_orbit))
    return {"ee": ee, "ee_rel": ee / float(np.mean(np.abs(d[:, 0])))}
