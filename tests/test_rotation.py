"""The rotation benchmark's data and splits: W22's set-up, held-out plumes, and windows that never overlap."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from equidyn.data.rotation import W22_HELD_OUT, RotationPlumes, rotation_setup, split_plumes
from equidyn.data.smoke import PlumePhysics
from equidyn.data.smoke_datasets import frames_dataset
from equidyn.store import write_store
from equidyn.studies import rotation

SETTINGS = {
    "input_frames": 3,
    "rollout": {"train": 2, "valid": 2, "test_future": 4, "test_domain": 4},
    "window_stride": {"train": 1, "valid": 1, "test_future": 1, "test_domain": 2},
}


def test_setup_is_w22s_rotation_dataset() -> None:
    setup = rotation_setup(RotationPlumes(), PlumePhysics(grid=64))
    assert len(setup) == 36
    expected = {0: ((32, 5), (0, 1)), 1: ((59, 32), (-1, 0)), 2: ((32, 59), (0, -1.1)), 3: ((5, 32), (1, 0))}
    for i in range(36):
        k, j = i + 1, i % 4
        pos, force = expected[j]
        assert np.allclose(setup.centers[i], pos)
        assert np.allclose(setup.forces[i], np.asarray(force) * 0.01 * k)
        assert setup.labels["direction"][i] == j


def test_held_out_pairs_are_checked_and_split_off() -> None:
    sims = split_plumes(36, W22_HELD_OUT)
    assert len(sims["test_domain"]) == 10 and len(sims["train"]) == 26
    assert not set(sims["test_domain"]) & set(sims["train"])
    assert sims["train"] == sims["valid"] == sims["test_future"]
    with pytest.raises(ValueError, match="inconsistent"):
        split_plumes(36, [(6, 2)])


@pytest.fixture
def store(tmp_path, rng, smooth):
    n_sims, n_frames = 8, 40
    velocity = smooth(rng, (n_sims, n_frames, 2, 8, 8))
    ds = frames_dataset(velocity, PlumePhysics(grid=8, n_steps=n_frames, keep_from=0), {})
    frames = {"train": [0, 15], "valid": [15, 22], "test_future": [22, 40], "test_domain": [0, 20]}
    ds.attrs = {
        "split_sims": json.dumps(split_plumes(n_sims, [(2, 1), (7, 2)])),
        "split_frames": json.dumps(frames),
        "norm_scale": 1.5,
    }
    write_store(ds, tmp_path / "plumes.zarr", {})
    return tmp_path / "plumes.zarr", frames


def test_no_test_future_target_frame_is_inside_a_train_or_valid_window(store) -> None:
    path, _ = store
    task, _ = rotation.make_task(SETTINGS, path)

    def frames_of(split: str, targets_only: bool = False) -> set[tuple[int, int]]:
        out = set()
        for sim, start in task.windows[split].tolist():
            first = start + (task.input_frames if targets_only else 0)
            out |= {(sim, t) for t in range(first, start + task.input_frames + task.steps[split])}
        return out

    future_targets = frames_of("test_future", targets_only=True)
    assert future_targets
    assert not future_targets & (frames_of("train") | frames_of("valid"))
    assert not frames_of("valid", targets_only=True) & frames_of("train")
    held = {sim for sim, _ in task.windows["test_domain"].tolist()}
    assert held == {1, 6} and not held & {sim for sim, _ in task.windows["train"].tolist()}
    starts = task.windows["test_domain"][:, 1].unique().tolist()
    assert starts == list(range(0, 20 - 7 + 1, 2))  # the stride thins windows, the range bounds them
    x, y = task.batch("test_future", torch.arange(3))
    assert x.shape == (3, 6, 8, 8) and y.shape == (3, 4, 2, 8, 8)
