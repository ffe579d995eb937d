"""Evaluation samples drawn seeded and stratified across simulations and times, so that they are independent.

Every measure that averages over samples (model equivariance error, Lie derivative, the sharpness and Hessian
subsets) takes its samples from here. Why: a forecasting split's windows are ``(simulation, start)`` pairs sorted
by simulation, so "the first 64 windows" are 64 consecutive frames of *one* plume — per-sample Lie derivatives of
0.857-0.871, in effect one sample, and any mean ± sd over them overstates certainty. Consecutive frames of one
plume are one sample; distinct simulations and distant times are not.

The draw: the ``n`` samples are dealt round-robin over the simulations (every simulation gets ``⌊n/S⌋`` or
``⌈n/S⌉``, the extra ones to a seeded choice of simulations); within a simulation, its windows' time span is cut
into as many equal strata as it gets samples, and one window is drawn uniformly inside each stratum. A task
without simulations (independent input/target pairs: super-resolution crops, tutorial patches) is one stratum
per sample: a seeded draw without replacement. The chosen ``(simulation, start)`` pairs are returned so the
measure can record which samples it used.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["evaluation_sample", "stratified_indices"]


def stratified_indices(groups: torch.Tensor, times: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of ``min(n, len)`` samples spread over ``groups`` and, within a group, over ``times``."""
    if groups.shape != times.shape or groups.dim() != 1:
        raise ValueError(f"groups and times must be 1-D of one length, got {tuple(groups.shape)}, {tuple(times.shape)}")
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    total = len(groups)
    if n >= total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(int(seed))
    labels = torch.unique(groups)
    members = [torch.nonzero(groups == g).flatten() for g in labels]
    quota = torch.full((len(labels),), n // len(labels), dtype=torch.long)
    extra = n - int(quota.sum())
    if extra:
        quota[torch.randperm(len(labels), generator=gen)[:extra]] += 1
    # a simulation with fewer windows than its quota passes the rest on to the others
    quota = torch.minimum(quota, torch.tensor([len(m) for m in members]))
    while int(quota.sum()) < n:  # to the least-sampled simulations with room left, ties in a seeded order
        room = [i for i, m in enumerate(members) if quota[i] < len(m)]
        least = min(int(quota[i]) for i in room)
        room = [i for i in room if quota[i] == least]
        quota[room[int(torch.randint(len(room), (1,), generator=gen))]] += 1
    chosen = []
    for idx, k in zip(members, quota.tolist(), strict=True):
        if k == 0:
            continue
        order = idx[torch.argsort(times[idx], stable=True)]  # this simulation's windows in time order
        edges = torch.linspace(0, len(order), k + 1)
        for lo, hi in zip(edges[:-1].floor().long().tolist(), edges[1:].floor().long().tolist(), strict=True):
            hi = max(hi, lo + 1)
            chosen.append(int(order[lo + int(torch.randint(hi - lo, (1,), generator=gen))]))
    return torch.tensor(sorted(set(chosen)), dtype=torch.long)


def evaluation_sample(task: Any, split: str, n: int, seed: int) -> tuple[torch.Tensor, list[list[int]]]:
    """``(index into the split, [[simulation, start], …])`` of ``n`` independent samples of ``task``'s split.

    A forecasting task's windows carry their simulation and start frame; a pair task's samples are independent
    items (simulation = item, start = 0).
    """
    windows = getattr(task, "windows", None)
    if windows is not None:
        w = windows[split].cpu()
        groups, times = w[:, 0], w[:, 1]
    else:
        groups = torch.arange(task.n(split))
        times = torch.zeros_like(groups)
    index = stratified_indices(groups, times, n, seed)
    return index, [[int(groups[i]), int(times[i])] for i in index]
