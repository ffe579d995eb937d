"""The tutorial: flux targets transform by their representation, escnn is exact per output type, user files work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from equidyn.data.tutorial_data import TARGETS, TutorialData, TutorialDataError, fluxes, prepare
from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec
from equidyn.models.registry import build_model
from equidyn.symmetry import C4, FieldLayout

ROOT = Path(__file__).resolve().parents[1]
G = C4()


def periodic_fields(rng: np.random.Generator, n: int = 12, batch: int = 2) -> torch.Tensor:
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    out = np.zeros((batch, 3, n, n))
    for b in range(batch):
        for c in range(3):
            for _ in range(4):
                kx, ky = rng.integers(-2, 3, size=2)
                out[b, c] += rng.standard_normal() * np.cos(2 * np.pi * (kx * x + ky * y) / n + rng.uniform(0, 6.3))
    out[:, 0] += 1.5  # a mean wind along +x
    return torch.tensor(out)


@pytest.mark.parametrize("padding", ["circular", "reflect"])
def test_flux_of_rotated_fields_is_the_transformed_flux(rng, padding: str) -> None:
    fields = periodic_fields(rng)
    layout_in = FieldLayout.parse("1 vector + 1 scalar")
    base = fluxes(fields[:, 0], fields[:, 1], fields[:, 2], 5, padding)
    assert base["uv"].abs().mean() > 1e-2  # a real signal, not zeros
    for k in (1, 2, 3):
        rotated = G.act(k, fields, layout_in)
        got = fluxes(rotated[:, 0], rotated[:, 1], rotated[:, 2], 5, padding)
        for name, layout in TARGETS.items():
            expected = G.act(k, base[name], FieldLayout.parse(layout))
            assert torch.allclose(got[name], expected, atol=1e-12), (name, k)
    # ⟨u′v′⟩ changes sign under a quarter turn: the sign irrep, not a scalar
    quarter = fluxes(*G.act(1, fields, layout_in).unbind(1), 5, padding)["uv"]
    assert torch.allclose(quarter, -G.transform_grid(base["uv"], 1), atol=1e-12)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_escnn_model_is_exactly_equivariant_for_each_output_type(target: str) -> None:
    torch.manual_seed(0)
    spec = ModelSpec(
        name="e2cnn",
        in_layout=FieldLayout.parse("1 vector + 1 scalar"),
        out_layout=FieldLayout.parse(TARGETS[target]),
        hidden=4,
        layers=3,
        grid=(12, 12),
    )
    model = build_model(spec).eval()
    x = torch.randn(4, 3, 12, 12)
    ee = equivariance_error(model, x, G, spec.in_layout, spec.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-3


def user_file(tmp_path: Path, rng: np.random.Generator, n_time: int = 30, n: int = 16, **drop) -> Path:
    t = np.arange(n_time)
    fields = periodic_fields(rng, n=n, batch=n_time).numpy()
    ds = xr.Dataset(
        {
            "u": (("time", "y", "x"), fields[:, 0]),
            "v": (("time", "y", "x"), fields[:, 1]),
            "w": (("time", "y", "x"), fields[:, 2]),
        },
        coords={"time": t, "y": np.arange(n), "x": np.arange(n)},
    )
    for name, value in drop.items():
        if value is None:
            ds = ds.drop_vars(name)
        else:
            ds[name] = value
    path = tmp_path / "user.nc"
    ds.to_netcdf(path)
    return path


def test_prepare_names_the_culprit(tmp_path: Path, rng) -> None:
    settings = TutorialData(padding="reflect")
    with pytest.raises(TutorialDataError, match="'w' \\(the scalar\\) is missing"):
        prepare(settings, user_file(tmp_path, rng, w=None), ["uv"], tmp_path / "p.zarr")
    bad = np.zeros((30, 16))
    with pytest.raises(TutorialDataError, match="'w' \\(the scalar\\) has dims \\('time', 'y'\\)"):
        prepare(settings, user_file(tmp_path, rng, w=(("time", "y"), bad)), ["uv"], tmp_path / "p.zarr")
    nan = np.ones((30, 16, 16))
    nan[3, 4, 5] = np.nan
    with pytest.raises(TutorialDataError, match="'v' \\(the v\\) has 1 NaN"):
        prepare(settings, user_file(tmp_path, rng, v=(("time", "y", "x"), nan)), ["uv"], tmp_path / "p.zarr")
    with pytest.raises(TutorialDataError, match="does not exist"):
        prepare(settings, tmp_path / "nope.nc", ["uv"], tmp_path / "p.zarr")
    assert not (tmp_path / "p.zarr").exists()


def test_training_split_keeps_only_biased_samples(tmp_path: Path, rng) -> None:
    angles = np.linspace(-180, 180, 40, endpoint=False)
    fields = periodic_fields(rng, n=12, batch=40).numpy() * 0.1
    fields[:, 0] = np.cos(np.radians(angles))[:, None, None] + fields[:, 0] - 0.15
    fields[:, 1] += np.sin(np.radians(angles))[:, None, None]
    ds = xr.Dataset({k: (("time", "y", "x"), fields[:, i]) for i, k in enumerate("uvw")})
    ds.to_netcdf(tmp_path / "rot.nc")
    prepare(TutorialData(split_fractions=(0.5, 0.25, 0.25)), tmp_path / "rot.nc", ["uv"], tmp_path / "p.zarr")
    out = xr.open_zarr(tmp_path / "p.zarr")
    train = out.mean_wind_angle.values[out.split.values == "train"]
    assert len(train) > 0 and np.all(np.abs(train) <= 45)
    assert (out.split.values == "test").sum() == 10  # valid/test keep every orientation


def test_a_user_netcdf_runs_through_snakemake(tmp_path: Path, rng) -> None:
    path = user_file(tmp_path, rng, n_time=40)
    tiny = {
        "name": "usertest",
        "tutorial": {
            "data": {"padding": "reflect", "filter_width": 3, "mean_wind": 0.0},
            "targets": ["uv"],
            "seeds": [0],
            "models": [
                {"label": "cnn", "model": "convnet", "hidden": 4, "layers": 3},
                {"label": "escnn", "model": "e2cnn", "hidden": 2, "layers": 3},
                {"label": "cnn_aug", "model": "convnet", "hidden": 4, "layers": 3, "augment": True},
            ],
            "training": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "patience": 3, "device": "cpu"},
        },
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "tutorial_all",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--cores",
            "2",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "tiny.yaml"),
            "--config",
            f"tutorial_data={path}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    res = tmp_path / "results" / "usertest"
    assert not (res / "data" / "tutorial" / "builtin.nc").exists()  # the user's file, not the built-in one
    table = pd.read_csv(res / "tables" / "tutorial.csv")
    assert len(table) == 3 * 4 and set(table.rotation) == {0, 90, 180, 270}
    assert {"config_sha", "git_rev", "data_sha"} <= set(table.columns)
    escnn = table[table.model == "escnn"].rmse
    assert escnn.max() - escnn.min() <= 1e-4 * escnn.mean()
    for fig in ("tutorial_rotated", "tutorial_skill"):
        assert (res / "figures" / f"{fig}.pdf").stat().st_size > 5000
