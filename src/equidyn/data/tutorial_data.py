"""Data of the rotation-equivariance tutorial: horizontal (u, v) + a scalar, and filtered-flux targets.

**Inputs.** A NetCDF or zarr file (opened with xarray) holding, on horizontal slices, a wind ``(u, v)`` and a scalar
(vertical velocity ``w``, temperature or buoyancy). The config names the variables and the two horizontal dims; all
other dims are flattened into samples. The built-in file is made by :func:`builtin_from_turbulence` from horizontal
slices of the offline turbulence, with a uniform wind along +x added (a Galilean shift, so still a Navier–Stokes
flow): every training wind "blows along +x", the situation of the tutorial ([TUT]).

**Targets**, computed here with a box filter ``F`` of odd width (or read from the file):

* ``uv`` — the momentum flux ``⟨u′v′⟩ = F(uv) − F(u)F(v)``, which changes sign under a 90° rotation (C4's sign
  irrep, escnn ``irrep(2)``);
* ``vector_flux`` — ``(⟨u′w′⟩, ⟨v′w′⟩)``, a vector;
* ``tke`` — ``½(⟨u′u′⟩ + ⟨v′v′⟩ + ⟨w′w′⟩)``, a scalar.

``F`` is a centred box with circular (periodic data) or reflect padding, both of which commute with 90° rotations of
a square patch, so each target transforms exactly by its representation — tests/test_tutorial.py checks the flux
of rotated fields against the transformed flux. Non-square slices are cut into square patches.

**Splits** are by sample block (so correlated slices of one 3-D field never straddle train and test). Training
keeps only *orientation-biased* samples: mean wind within ±``bias_degrees`` of +x. Normalisation uses one rms
scale for the wind (a scalar keeps rotations exact), one for the scalar and one per target.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from ..atomic import atomic_path
from ..settings import settings_from_dict
from ..store import open_store, write_store

TARGETS = {"uv": "1 sign", "vector_flux": "1 vector", "tke": "1 scalar"}
INPUT_LAYOUT = "1 vector + 1 scalar"


class TutorialDataError(ValueError):
    """The tutorial's input file does not have what the config says it has."""


@dataclass(frozen=True)
class TutorialData:
    """The ``tutorial.data`` config section."""

    path: str | None = None  # a user NetCDF/zarr file; None: the built-in file from the turbulence data
    variables: dict[str, str] = field(default_factory=lambda: {"u": "u", "v": "v", "scalar": "w"})
    target_variables: dict[str, str] = field(default_factory=dict)  # e.g. {"uv": "uw_flux"}: read, not computed
    horizontal_dims: tuple[str, str] = ("y", "x")
    patch: int = 0  # square patch size; 0: the largest square that fits
    filter_width: int = 5
    padding: str = "circular"  # circular (periodic data) or reflect
    bias_degrees: float = 45.0
    mean_wind: float = 2.0  # built-in only: the added +x wind, in units of the turbulence rms speed
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    max_samples: int = 0  # 0: all

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TutorialData:
        d = dict(d)
        for key in ("horizontal_dims", "split_fractions"):
            if key in d:
                d[key] = tuple(d[key])
        return settings_from_dict(cls, d, "tutorial.data")

    def __post_init__(self) -> None:
        if self.filter_width < 1 or self.filter_width % 2 == 0:
            raise ValueError(f"tutorial.data.filter_width must be odd and positive, got {self.filter_width}")
        if self.padding not in ("circular", "reflect"):
            raise ValueError(f"tutorial.data.padding must be 'circular' or 'reflect', got {self.padding!r}")
        missing = {"u", "v", "scalar"} - set(self.variables)
        if missing:
            raise ValueError(f"tutorial.data.variables must name u, v and scalar; missing {sorted(missing)}")


def builtin_from_turbulence(turbulence_store: str | os.PathLike, mean_wind: float, out: str | os.PathLike) -> None:
    """Write the built-in tutorial NetCDF: every z-slice of every snapshot, with a +x wind added."""
    ds = open_store(turbulence_store)
    vel = ds.velocity.values.astype(np.float32)  # (sample, time, component, z, y, x)
    rms = float(np.sqrt((vel.astype(np.float64) ** 2).sum(axis=2).mean()))
    u = vel[:, :, 0] + mean_wind * rms
    v, w = vel[:, :, 1], vel[:, :, 2]
    dims = ("sample", "time", "z", "y", "x")
    coords = {name: ds[name].values for name in ("sample", "z", "y", "x")}
    coords["time"] = np.arange(vel.shape[1])
    out_ds = xr.Dataset(
        {
            "u": (dims, u, {"units": "velocity", "long_name": "x wind (turbulence + uniform wind)"}),
            "v": (dims, v, {"units": "velocity", "long_name": "y wind"}),
            "w": (dims, w, {"units": "velocity", "long_name": "vertical velocity (a scalar under rotations about z)"}),
        },
        coords=coords,
        attrs={
            "source": f"equidyn built-in from {Path(turbulence_store).name}",
            "turbulence_sha256": ds.attrs["content_sha256"],
            "mean_wind_over_rms": mean_wind,
        },
    )
    with atomic_path(out) as tmp:
        out_ds.to_netcdf(tmp)


def open_user_file(path: str | os.PathLike) -> xr.Dataset:
    path = Path(path)
    if not path.exists():
        raise TutorialDataError(f"tutorial data file {path} does not exist")
    try:
        if path.is_dir() or path.suffix == ".zarr":
            return xr.open_zarr(path).load()
        return xr.open_dataset(path).load()
    except Exception as err:
        raise TutorialDataError(f"tutorial data file {path} cannot be read as NetCDF or zarr: {err}") from err


def _field(ds: xr.Dataset, role: str, name: str, hdims: tuple[str, str], path: str) -> np.ndarray:
    """``name`` as ``(sample, y, x)`` float64, with every other dim flattened into samples."""
    if name not in ds.variables:
        raise TutorialDataError(f"{path}: variable {name!r} (the {role}) is missing; it has {sorted(ds.data_vars)}")
    var = ds[name]
    absent = [d for d in hdims if d not in var.dims]
    if absent:
        raise TutorialDataError(
            f"{path}: variable {name!r} (the {role}) has dims {var.dims}, missing horizontal dim(s) {absent}"
        )
    other = [d for d in var.dims if d not in hdims]
    values = var.transpose(*other, *hdims).values.astype(np.float64)
    values = values.reshape(-1, *values.shape[-2:])
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise TutorialDataError(f"{path}: variable {name!r} (the {role}) has {bad} NaN/inf values")
    return values


def box_filter(x: torch.Tensor, width: int, padding: str) -> torch.Tensor:
    """Centred box mean of odd ``width`` over the last two axes (commutes with 90° rotations of square fields)."""
    if width == 1:
        return x
    p = width // 2
    shape = x.shape
    y = torch.nn.functional.pad(x.reshape(-1, 1, *shape[-2:]), (p, p, p, p), mode=padding)
    return torch.nn.functional.avg_pool2d(y, width, stride=1).reshape(shape)


def fluxes(u: torch.Tensor, v: torch.Tensor, s: torch.Tensor, width: int, padding: str) -> dict[str, torch.Tensor]:
    """Filtered second moments ``⟨ab⟩ = F(ab) − F(a)F(b)`` as targets, each ``(n, C, y, x)``."""

    def cov(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return box_filter(a * b, width, padding) - box_filter(a, width, padding) * box_filter(b, width, padding)

    return {
        "uv": cov(u, v)[:, None],
        "vector_flux": torch.stack([cov(u, s), cov(v, s)], dim=1),
        "tke": (0.5 * (cov(u, u) + cov(v, v) + cov(s, s)))[:, None],
    }


def _square_patches(x: np.ndarray, patch: int) -> np.ndarray:
    n_y, n_x = x.shape[-2:]
    size = patch or min(n_y, n_x)
    if size > min(n_y, n_x):
        raise TutorialDataError(f"tutorial.data.patch {size} exceeds the horizontal size {n_y}×{n_x}")
    tiles = [
        x[..., i : i + size, j : j + size]
        for i in range(0, n_y - size + 1, size)
        for j in range(0, n_x - size + 1, size)
    ]
    return np.stack(tiles, axis=1).reshape(-1, *x.shape[1:-2], size, size)


def prepare(settings: TutorialData, source: str | os.PathLike, targets: list[str], out: str | os.PathLike) -> str:
    """Validate the source file, compute targets, select biased training samples, split and store."""
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise ValueError(f"unknown tutorial target(s) {unknown}; available: {sorted(TARGETS)}")
    ds = open_user_file(source)
    hdims = tuple(settings.horizontal_dims)
    raw = {role: _field(ds, role, name, hdims, str(source)) for role, name in settings.variables.items()}
    shapes = {role: a.shape for role, a in raw.items()}
    if len(set(shapes.values())) != 1:
        raise TutorialDataError(f"{source}: u, v and the scalar differ in shape: {shapes}")
    stacked = _square_patches(np.stack([raw["u"], raw["v"], raw["scalar"]], axis=1), settings.patch)
    if settings.max_samples:
        stacked = stacked[: settings.max_samples]
    x = torch.from_numpy(stacked)
    computed = fluxes(x[:, 0], x[:, 1], x[:, 2], settings.filter_width, settings.padding)
    target_arrays = {}
    for name in targets:
        if name in settings.target_variables:
            var = settings.target_variables[name]
            arr = _field(ds, f"{name} target", var, hdims, str(source))
            target_arrays[name] = _square_patches(arr[:, None], settings.patch)[: len(stacked)]
        else:
            target_arrays[name] = computed[name].numpy()

    n = len(stacked)
    fractions = np.asarray(settings.split_fractions, dtype=float)
    bounds = np.floor(np.cumsum(fractions / fractions.sum()) * n).astype(int)
    split = np.full(n, "test", dtype=object)
    split[: bounds[0]] = "train"
    split[bounds[0] : bounds[1]] = "valid"
    mean_u, mean_v = stacked[:, 0].mean(axis=(1, 2)), stacked[:, 1].mean(axis=(1, 2))
    angle = np.degrees(np.arctan2(mean_v, mean_u))
    biased = np.abs(angle) <= settings.bias_degrees
    keep = (split != "train") | biased  # orientation bias on the training split only
    if not keep[split == "train"].any():
        raise TutorialDataError(
            f"{source}: no training sample has its mean wind within ±{settings.bias_degrees}° of +x"
        )
    idx = np.flatnonzero(keep)
    train = idx[split[idx] == "train"]
    wind_scale = float(np.sqrt((stacked[train, :2] ** 2).sum(axis=1).mean()))
    scalar_scale = float(np.sqrt((stacked[train, 2] ** 2).mean()))
    size = stacked.shape[-1]
    data_vars = {
        "inputs": (("sample", "channel", "y", "x"), stacked[idx].astype(np.float32)),
        "split": (("sample",), split[idx].astype(str)),
        "mean_wind_angle": (("sample",), angle[idx]),
    }
    attrs = {"wind_scale": wind_scale, "scalar_scale": scalar_scale, "input_layout": INPUT_LAYOUT}
    for name, arr in target_arrays.items():
        data_vars[f"target_{name}"] = ((("sample", f"{name}_channel", "y", "x")), arr[idx].astype(np.float32))
        attrs[f"target_{name}_scale"] = float(np.sqrt((arr[train].astype(np.float64) ** 2).mean()))
        attrs[f"target_{name}_layout"] = TARGETS[name]
    prepared = xr.Dataset(
        data_vars,
        coords={
            "sample": np.arange(len(idx)),
            "channel": ["u", "v", "scalar"],
            "y": np.arange(size),
            "x": np.arange(size),
        },
    )
    prepared.attrs = attrs
    return write_store(
        prepared, out, {"kind": "tutorial", "data": asdict(settings), "targets": targets, "source": str(source)}
    )
