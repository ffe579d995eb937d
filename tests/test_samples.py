"""Evaluation samples: seeded, spread over simulations and over times within a simulation, recorded."""

from __future__ import annotations

import pytest
import torch

from equidyn.measures.samples import evaluation_sample, stratified_indices
from equidyn.training.tasks import ForecastTask, PairTask


def windows(n_sims: int, n_starts: int) -> torch.Tensor:
    """(sim, start) pairs sorted by simulation, as the level and rotation studies build them."""
    return torch.cartesian_prod(torch.arange(n_sims), torch.arange(n_starts))


def test_samples_spread_over_simulations_and_times():
    w = windows(4, 40)
    index = stratified_indices(w[:, 0], w[:, 1], 8, seed=0)
    chosen = w[index]
    assert len(index) == 8 and len(set(index.tolist())) == 8
    for sim in range(4):  # two per simulation, one in each half of its time span
        starts = sorted(chosen[chosen[:, 0] == sim, 1].tolist())
        assert len(starts) == 2 and starts[0] < 20 <= starts[1]
    # the old rule (the first n windows) took one plume's consecutive frames
    assert set(w[:8, 0].tolist()) == {0}


def test_uneven_quota_and_short_simulations():
    groups = torch.tensor([0] * 30 + [1] * 2 + [2] * 30)
    times = torch.cat([torch.arange(30), torch.arange(2), torch.arange(30)])
    index = stratified_indices(groups, times, 10, seed=3)
    counts = torch.bincount(groups[index], minlength=3).tolist()
    assert sum(counts) == 10 and counts[1] == 2 and abs(counts[0] - counts[2]) <= 1
    assert torch.equal(stratified_indices(groups, times, 100, seed=3), torch.arange(62))  # all of them


def test_seeded_and_seed_only():
    w = windows(5, 30)
    a = stratified_indices(w[:, 0], w[:, 1], 7, seed=1)
    torch.manual_seed(99)  # the global RNG plays no part
    assert torch.equal(a, stratified_indices(w[:, 0], w[:, 1], 7, seed=1))
    assert not torch.equal(a, stratified_indices(w[:, 0], w[:, 1], 7, seed=2))
    with pytest.raises(ValueError, match="at least one"):
        stratified_indices(w[:, 0], w[:, 1], 0, seed=1)


def test_evaluation_sample_records_simulation_and_start():
    frames = torch.zeros(3, 20, 2, 4, 4)
    task = ForecastTask(frames=frames, windows={"test": windows(3, 18)}, input_frames=1, steps={"test": 1}, scale=1.0)
    index, record = evaluation_sample(task, "test", 6, seed=0)
    assert [tuple(r) for r in record] == [tuple(v) for v in task.windows["test"][index].tolist()]
    assert sorted({r[0] for r in record}) == [0, 1, 2]
    pairs = PairTask(inputs={"test": torch.zeros(9, 1)}, targets={"test": torch.zeros(9, 1)}, scale=1.0)
    index, record = evaluation_sample(pairs, "test", 4, seed=0)
    assert len(set(index.tolist())) == 4 and all(r == [int(i), 0] for r, i in zip(record, index, strict=True))
