"""Super-resolution inputs: exact O_h equivariance of the box downsampling, channel layout, splits, scale."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import xarray as xr

from equidyn.data.superres_data import (
    INPUT_LAYOUT,
    TARGET_LAYOUT,
    SuperResDataSettings,
    box_downsample,
    generate_superres_store,
    load_from_settings,
    load_superres,
    make_pairs,
)
from equidyn.store import write_store

OH = [(perm, signs) for perm in itertools.permutations(range(3)) for signs in itertools.product((1, -1), repeat=3)]


def act_oh(perm: tuple[int, ...], signs: tuple[int, ...], u: torch.Tensor) -> torch.Tensor:
    """Physical action of ``M[a, perm[a]] = signs[a]`` on ``(..., 3, z, y, x)`` vector fields, by permute/flip."""
    nd = u.dim()
    dims = list(range(nd))
    for a in range(3):
        dims[nd - 1 - a] = nd - 1 - perm[a]
    v = u.permute(dims)
    flips = [nd - 1 - a for a in range(3) if signs[a] < 0]
    if flips:
        v = v.flip(flips)
    return torch.stack([signs[a] * v[..., perm[a], :, :, :] for a in range(3)], dim=-4)


def test_box_downsample_known_answer():
    x = torch.arange(4**3, dtype=torch.float64).reshape(1, 4, 4, 4)
    y = box_downsample(x, 2)
    assert y.shape == (1, 2, 2, 2)
    # the block at (z, y, x) = (0, 0, 0) holds indices z*16 + y*4 + x for z, y, x in {0, 1}
    assert float(y[0, 0, 0, 0]) == np.mean([z * 16 + yy * 4 + xx for z in (0, 1) for yy in (0, 1) for xx in (0, 1)])
    assert float(y[0, 1, 0, 1]) == float(x[0, 2:4, 0:2, 2:4].mean())
    assert torch.equal(box_downsample(x, 1), x)
    with pytest.raises(ValueError, match="multiple"):
        box_downsample(torch.zeros(1, 6, 8, 8), 4)


@pytest.mark.parametrize("factor", [2, 4])
def test_box_downsample_is_equivariant_under_all_48_octahedral_elements(factor):
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, 8, 8, 8, generator=gen, dtype=torch.float64)
    for perm, signs in OH:
        lhs = box_downsample(act_oh(perm, signs, u), factor)
        rhs = act_oh(perm, signs, box_downsample(u, factor))
        assert torch.allclose(lhs, rhs, rtol=0, atol=1e-14), (perm, signs)
    # float32 data: equal to round-off
    u32 = u.float()
    err = max(
        float((box_downsample(act_oh(p, s, u32), factor) - act_oh(p, s, box_downsample(u32, factor))).abs().max())
        for p, s in OH
    )
    assert err < 1e-6


def test_plain_striding_is_not_equivariant_so_the_check_is_sharp():
    u = torch.randn(1, 3, 8, 8, 8, dtype=torch.float64)

    def stride(x: torch.Tensor) -> torch.Tensor:
        return x[..., ::4, ::4, ::4]

    perm, signs = (0, 1, 2), (-1, 1, 1)  # a reflection of x
    assert float((stride(act_oh(perm, signs, u)) - act_oh(perm, signs, stride(u))).abs().max()) > 0.1


def _fake_store(path, n_samples: int = 6, n: int = 8, n_times: int = 4, tail_scale: float = 1.0) -> np.ndarray:
    """A store of random velocities; samples from index 2 on are multiplied by ``tail_scale``."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal((n_samples, n_times, 3, n, n, n)).astype(np.float32)
    v[2:] *= tail_scale
    pos = np.arange(n) * 2 * np.pi / n
    ds = xr.Dataset(
        {"velocity": (("sample", "time", "component", "z", "y", "x"), v)},
        coords={
            "sample": np.arange(n_samples),
            "time": np.arange(n_times) * 0.1,
            "component": ["x", "y", "z"],
            "z": pos,
            "y": pos,
            "x": pos,
            "t0": ("sample", np.arange(n_samples) * 1.0),
        },
        attrs={"source": "offline"},
    )
    write_store(ds, path, {"source": "offline"})
    return v


def test_channels_are_time_major_and_the_target_is_time_three(tmp_path):
    v = _fake_store(tmp_path / "s.zarr")
    data = load_superres(tmp_path / "s.zarr", n_train=3, n_val=1, n_test=2, factor=2)
    tr = data.train
    assert tr.inputs.shape == (3, 9, 4, 4, 4) and tr.targets.shape == (3, 3, 8, 8, 8)
    assert tr.inputs.dtype == torch.float32 and tr.targets.dtype == torch.float32
    for t in range(3):
        for c in range(3):
            want = v[:3, t, c].reshape(3, 4, 2, 4, 2, 4, 2).mean(axis=(2, 4, 6))
            np.testing.assert_allclose(tr.inputs[:, t * 3 + c].numpy(), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(tr.targets.numpy(), v[:3, 3])
    # splits are contiguous blocks of samples, in store order, and disjoint
    assert list(data.train.samples) == [0, 1, 2] and list(data.val.samples) == [3]
    assert list(data.test.samples) == [4, 5]
    np.testing.assert_array_equal(data.test.targets.numpy(), v[4:6, 3])
    assert data.scale == 1.0 and data.factor == 2 and len(data.data_sha) == 64


def test_inputs_transform_as_three_vector_fields(tmp_path):
    """Acting on the velocities then making pairs equals acting on inputs (3 vector) and targets (1 vector)."""
    u = torch.randn(2, 4, 3, 8, 8, 8, dtype=torch.float64)
    inputs, targets = make_pairs(u, 4)
    assert INPUT_LAYOUT.channels(3, 48) == 9 and TARGET_LAYOUT.channels(3, 48) == 3
    for perm, signs in OH[::5]:
        gi, gt = make_pairs(act_oh(perm, signs, u), 4)
        acted_inputs = act_oh(perm, signs, inputs.unflatten(1, (3, 3))).flatten(1, 2)
        assert torch.allclose(gi, acted_inputs, atol=1e-14)
        assert torch.allclose(gt, act_oh(perm, signs, targets), atol=0)


def test_normalisation_uses_the_train_split_rms_speed_only(tmp_path):
    v = _fake_store(tmp_path / "s.zarr", tail_scale=3.0)  # train = samples 0, 1: 3x smaller than the rest
    data = load_superres(tmp_path / "s.zarr", n_train=2, n_val=2, n_test=2, factor=4, normalise=True)
    rms = float(np.sqrt((v[:2].astype(np.float64) ** 2).sum(axis=2).mean()))
    assert data.scale == pytest.approx(rms, rel=1e-6)
    assert data.scale < 0.5 * float(np.sqrt((v.astype(np.float64) ** 2).sum(axis=2).mean()))
    np.testing.assert_allclose(data.val.targets.numpy(), v[2:4, 3] / rms, rtol=1e-5, atol=1e-6)


def test_bad_requests_name_the_culprit(tmp_path):
    _fake_store(tmp_path / "s.zarr", n_samples=4)
    with pytest.raises(ValueError, match="has 4 samples but the splits need 5"):
        load_superres(tmp_path / "s.zarr", n_train=3, n_val=1, n_test=1, factor=2)
    with pytest.raises(ValueError, match="not a multiple"):
        load_superres(tmp_path / "s.zarr", n_train=1, n_val=1, n_test=1, factor=3)
    _fake_store(tmp_path / "short.zarr", n_times=3)
    with pytest.raises(ValueError, match="at least 4 times"):
        load_superres(tmp_path / "short.zarr", n_train=1, n_val=1, n_test=1, factor=2)


def test_settings_validate_nested_sections_and_cross_checks():
    s = SuperResDataSettings.from_dict(
        {"source": "offline", "offline": {"n": 16, "n_samples": 10}, "n_train": 8, "n_val": 1, "n_test": 1}
    )
    assert s.offline.n == 16 and s.grid_size == 16 and s.jhtdb.crop == 64
    with pytest.raises(ValueError, match="n_tran"):
        SuperResDataSettings.from_dict({"n_tran": 3})
    with pytest.raises(ValueError, match=r"superres\.data\.offline"):
        SuperResDataSettings.from_dict({"offline": {"spinup": 3}})
    with pytest.raises(ValueError, match="source"):
        SuperResDataSettings.from_dict({"source": "jhtbd"})
    with pytest.raises(ValueError, match="splits need 50"):
        SuperResDataSettings.from_dict({"offline": {"n_samples": 10}})
    with pytest.raises(ValueError, match="multiple of factor"):
        SuperResDataSettings.from_dict({"factor": 3})
    assert SuperResDataSettings().to_dict()["jhtdb"]["token_env"] == "JHTDB_TOKEN"


def test_offline_store_end_to_end(tmp_path):
    s = SuperResDataSettings.from_dict(
        {
            "n_train": 2,
            "n_val": 1,
            "n_test": 1,
            "factor": 4,
            "normalise": True,
            "offline": {"n": 16, "n_samples": 4, "spinup_time": 1.0, "decorrelation_gap": 0.2},
        }
    )
    sha = generate_superres_store(s, tmp_path / "t.zarr")
    data = load_from_settings(s, tmp_path / "t.zarr")
    assert data.data_sha == sha and data.source == "offline"
    assert data.train.inputs.shape == (2, 9, 4, 4, 4) and data.test.targets.shape == (1, 3, 16, 16, 16)
    train_rms = float(data.train.targets.double().square().sum(1).mean().sqrt())
    assert 0.5 < train_rms < 2.0  # normalised by the rms speed of all four train times
