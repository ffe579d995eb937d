"""Smoke-plume data: the simulated rotation equals the rotated simulation; level datasets; stores and checksums."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from equidyn.data.smoke import PlumePhysics, PlumeSetup, simulate
from equidyn.data.smoke_datasets import (
    PUBLISHED_DATA_EE_FRAMES,
    build_level,
    data_equivariance_error,
    frames_dataset,
    level_members,
    unrotated_tasks,
)
from equidyn.store import CorruptStoreError, open_store, write_store
from equidyn.symmetry import C4, FieldLayout

G = C4()


def test_simulating_the_rotated_inflow_equals_rotating_the_simulation() -> None:
    n = 16
    physics = PlumePhysics(grid=n, inflow_radius=2.0, velocity_dt=0.5, n_steps=8, keep_from=0)
    c = n / 2
    p0, f0 = np.array([c, 2.5]), np.array([0.0, 0.08])
    setup = PlumeSetup(
        np.stack([G.matrix(k) @ (p0 - c) + c for k in G.elements]),
        np.stack([G.matrix(k) @ f0 for k in G.elements]),
    )
    v = simulate(setup, physics)  # all four directions in one batch
    assert v.shape == (4, 8, 2, n, n)
    layout = FieldLayout.of(("vector", v.shape[1]))
    scale = np.abs(v).max()
    assert scale > 0.05  # the plume actually moves
    for k in (1, 2, 3):
        rotated = G.act_numpy(k, v[0].reshape(1, -1, n, n), layout).reshape(v[0].shape)
        assert np.abs(rotated - v[k]).max() <= 1e-6 * scale


def test_velocities_are_cell_centred_and_upward() -> None:
    n = 12
    physics = PlumePhysics(grid=n, inflow_radius=2.0, n_steps=4, keep_from=1)
    v = simulate(PlumeSetup(np.array([[n / 2, 2.5]]), np.array([[0.0, 0.2]])), physics)
    assert v.shape == (1, 3, 2, n, n)  # n×n centres, not (n+1)-face grids
    assert v[0, -1, 1, :, n // 2 - 1 : n // 2 + 1].mean() > 0  # buoyant fluid rises along +y (+row)
    # mirror symmetry of a centred plume: u is odd, v even in x
    assert np.allclose(v[0, -1, 1], v[0, -1, 1, :, ::-1], atol=1e-6)
    assert np.allclose(v[0, -1, 0], -v[0, -1, 0, :, ::-1], atol=1e-6)


def test_physics_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="keep_from"):
        PlumePhysics(n_steps=10, keep_from=10)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \[.gird.\] in config section .smoke physics."):
        PlumePhysics.from_dict({"grid": 32, "gird": 3})


def _fake_base(tmp_path, rng, smooth, n_sims=12, n_frames=10, n=8):
    physics = PlumePhysics(grid=n, n_steps=n_frames, keep_from=0)
    velocity = smooth(rng, (n_sims, n_frames, 2, n, n))
    ds = frames_dataset(
        velocity, physics, {"inflow_x": ("sim", np.zeros(n_sims)), "inflow_y": ("sim", np.zeros(n_sims))}
    )
    path = tmp_path / "base.zarr"
    write_store(ds, path, {"physics": {}, "base": {}})
    return path, velocity


def test_level_tasks_are_rotations_of_base_plumes(tmp_path, rng, smooth) -> None:
    base, velocity = _fake_base(tmp_path, rng, smooth)
    splits = {"train": [0, 5], "valid": [5, 7], "test": [7, 10]}
    build_level(base, 3, splits, tmp_path / "l3.zarr")
    ds = open_store(tmp_path / "l3.zarr")
    assert ds.velocity.dims == ("sim", "time", "component", "y", "x")
    assert list(ds.base_sim.values) == level_members(3) == [1, 4, 7, 10]
    assert np.array_equal(unrotated_tasks(ds), velocity[[1, 4, 7, 10]])
    assert json.loads(ds.attrs["splits"]) == splits
    train = ds.velocity.values[:, 0:5].astype(np.float64)
    assert ds.attrs["norm_scale"] == pytest.approx(np.sqrt((train**2).sum(2).mean()))
    d = velocity[[1, 4, 7, 10]].astype(np.float64)
    expected = np.mean([np.abs(d[0] - d[j]).mean() for j in (1, 2, 3)])
    assert data_equivariance_error(ds, frames=None) == pytest.approx(expected)  # every stored frame


def test_data_ee_is_the_published_frame_window(tmp_path, rng, smooth) -> None:
    # issue 9: W22 averaged over the saved frames [10:-1], i.e. frames 10 .. n-2 of the kept ones
    base, velocity = _fake_base(tmp_path, rng, smooth, n_frames=16)
    build_level(base, 2, {"train": [0, 8], "valid": [8, 12], "test": [12, 16]}, tmp_path / "l2.zarr")
    ds = open_store(tmp_path / "l2.zarr")
    d = velocity[[1, 3, 5, 7]].astype(np.float64)
    published = np.mean([np.abs(d[0, 10:15] - d[j, 10:15]).mean() for j in (1, 2, 3)])
    assert PUBLISHED_DATA_EE_FRAMES == (10, -1)
    assert data_equivariance_error(ds) == pytest.approx(published, rel=1e-12)
    assert data_equivariance_error(ds, (0, 4)) == pytest.approx(
        np.mean([np.abs(d[0, :4] - d[j, :4]).mean() for j in (1, 2, 3)]), rel=1e-12
    )
    assert data_equivariance_error(ds, None) != pytest.approx(published)
    with pytest.raises(ValueError, match=r"\[20:-1\] selects no frame of the 16"):
        data_equivariance_error(ds, (20, -1))


def test_level_zero_is_exactly_symmetric(tmp_path, rng, smooth) -> None:
    base, _ = _fake_base(tmp_path, rng, smooth)
    build_level(base, 0, {"train": [0, 5], "valid": [5, 7], "test": [7, 10]}, tmp_path / "l0.zarr")
    ds = open_store(tmp_path / "l0.zarr")
    assert data_equivariance_error(ds, frames=None) == 0.0
    v = ds.velocity.values
    layout = FieldLayout.of(("vector", v.shape[1]))
    for k in (1, 2, 3):
        assert np.array_equal(G.act_numpy(k, v[0].reshape(1, -1, 8, 8), layout).reshape(v[0].shape), v[k])


def test_level_rejects_overlapping_or_out_of_range_splits(tmp_path, rng, smooth) -> None:
    base, _ = _fake_base(tmp_path, rng, smooth)
    with pytest.raises(ValueError, match="overlap"):
        build_level(base, 1, {"train": [0, 6], "valid": [5, 7], "test": [7, 10]}, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="not inside"):
        build_level(base, 1, {"train": [0, 5], "valid": [5, 7], "test": [7, 11]}, tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="needs base plume"):
        build_level(base, 9, {"train": [0, 5], "valid": [5, 7], "test": [7, 10]}, tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()


def test_store_checksum_detects_corruption_and_half_written_stores(tmp_path, rng, smooth) -> None:
    ds = xr.Dataset({"velocity": (("sim", "y"), rng.standard_normal((3, 4)).astype(np.float32))})
    sha = write_store(ds, tmp_path / "s.zarr", {"a": 1})
    assert open_store(tmp_path / "s.zarr").attrs["content_sha256"] == sha
    # tamper with the values but keep the recorded checksum
    tampered = open_store(tmp_path / "s.zarr")
    tampered["velocity"] = tampered.velocity + 1
    tampered.to_zarr(tmp_path / "s.zarr", mode="w", consolidated=False, zarr_format=2)
    with pytest.raises(CorruptStoreError, match=r"s\.zarr is corrupt"):
        open_store(tmp_path / "s.zarr")
    with pytest.raises(CorruptStoreError, match="does not exist"):
        open_store(tmp_path / "missing.zarr")
    # no temporary leftovers next to the stores
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
