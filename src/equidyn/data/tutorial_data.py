"""Data of the rotation tutorial: coarse-grained winds in, sub-filter fluxes out (the closure problem).

**Source.** A NetCDF or zarr file (opened with xarray) holding a wind ``(u, v)`` and a scalar (vertical velocity
``w``, temperature or buoyancy) on horizontal slices. The config names the variables, the two horizontal dims and
the vertical dim; every other dim is flattened into samples. The built-in file is made by
:func:`builtin_from_turbulence` from the offline turbulence (optionally on an f-plane, see
:mod:`equidyn.data.turbulence`), with a uniform wind along +x added: a Galilean shift, so still a Navier–Stokes
flow, and every training wind "blows along +x" as in the tutorial ([TUT]).

**Coarse-graining** (as the tutorial's data, a 4× coarsening). ``C`` is the block mean over ``factor × factor``
cells (a box filter of width ``factor`` followed by subsampling). The inputs are the coarse fields ``C(u), C(v),
C(w)`` of a level and, with ``levels = L``, of the ``L`` levels above and below (each level's ``(u, v)`` a vector,
each scalar a scalar: the tutorial's "collocated is necessary and multiple vertical levels is better"). The targets
are the sub-filter fluxes, computed at the fine resolution and coarsened, ``τ_ab = C(ab) − C(a) C(b)``:

* ``uv`` — ``⟨u′v′⟩``, which changes sign under a quarter turn and under an axis mirror (the xy-quadrupole:
  C4's sign irrep, escnn ``irrep(2)``; D4 ``irrep(1, 2)``);
* ``vector_flux`` — ``(⟨u′w′⟩, ⟨v′w′⟩)``, a vector;
* ``tke`` — ``½(⟨u′u′⟩ + ⟨v′v′⟩ + ⟨w′w′⟩)``, a scalar.

A block mean maps the blocks of a square grid onto each other under every D4 element, so each target of the
transformed fields is the transformed target (tests/test_tutorial.py checks every target under C4 and the mirrors).
The fluxes are Galilean invariant: the added wind changes the inputs, not the targets. ``factor: 1`` keeps the
former same-resolution targets (a centred box filter of odd ``filter_width``, circular or reflect padding).
Targets named in ``target_variables`` are read from the file (and block-averaged) instead of computed.

**Splits** are by the outermost dim of the variables (``sample`` of the built-in file, e.g. ``time`` of a user
file): every slice, level and patch of one outer index lands in one split, so correlated slices never straddle
train and test. Training keeps only *orientation-biased* samples: mean wind within ±``bias_degrees`` of +x.
Normalisation uses one rms scale for the wind (a scalar keeps rotations exact), one for the scalar and one per
target. The a-priori skill of the gradient model ``Δ²/12 (∂ₓu ∂ₓv + ∂ᵧu ∂ᵧv)`` on the test split is stored with
the data: the ceiling a local closure of the same inputs reaches.
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


def input_layout(levels: int) -> str:
    """``(2L+1) vector + (2L+1) scalar``: every level's (u, v) first, then every level's scalar."""
    n = 2 * levels + 1
    return f"{n} vector + {n} scalar"


class TutorialDataError(ValueError):
    """The tutorial's input file does not have what the config says it has."""


@dataclass(frozen=True)
class TutorialData:
    """The ``tutorial.data`` config section."""

    path: str | None = None  # a user NetCDF/zarr file; None: the built-in file from the turbulence data
    variables: dict[str, str] = field(default_factory=lambda: {"u": "u", "v": "v", "scalar": "w"})
    target_variables: dict[str, str] = field(default_factory=dict)  # e.g. {"uv": "uw_flux"}: read, not computed
    horizontal_dims: tuple[str, str] = ("y", "x")
    vertical_dim: str = "z"  # only used with levels > 0
    factor: int = 4  # coarsening factor; 1: same-resolution box-filter targets
    levels: int = 0  # neighbouring levels on each side added to the inputs
    patch: int = 0  # square patch size in coarse cells; 0: the largest square that fits
    filter_width: int = 5  # factor 1 only
    padding: str = "circular"  # factor 1 only: circular (periodic data) or reflect
    bias_degrees: float = 45.0
    mean_wind: float = 2.0  # built-in only: the added +x wind, in units of the turbulence rms speed
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    max_samples: int = 0  # 0: all; else that many slices, evenly spread over the file

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
        if self.factor < 1 or self.levels < 0:
            raise ValueError(f"tutorial.data: factor must be >= 1 and levels >= 0, got {self.factor}, {self.levels}")
        missing = {"u", "v", "scalar"} - set(self.variables)
        if missing:
            raise ValueError(f"tutorial.data.variables must name u, v and scalar; missing {sorted(missing)}")


def builtin_from_turbulence(turbulence_store: str | os.PathLike, mean_wind: float, out: str | os.PathLike) -> None:
    """Write the built-in tutorial NetCDF: every snapshot's 3-D field, with a +x wind added."""
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
            "coriolis": float(ds.attrs.get("coriolis", 0.0)),
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


def _field(ds: xr.Dataset, role: str, name: str, hdims: tuple[str, str], vdim: str | None, path: str):
    """``name`` as ``(group, slice, [z,] y, x)`` float64 and the name of the group (outermost) dim."""
    if name not in ds.variables:
        raise TutorialDataError(f"{path}: variable {name!r} (the {role}) is missing; it has {sorted(ds.data_vars)}")
    var = ds[name]
    need = [*hdims, *([vdim] if vdim else [])]
    absent = [d for d in need if d not in var.dims]
    if absent:
        kind = "horizontal" if set(absent) <= set(hdims) else "vertical (tutorial.data.levels > 0)"
        raise TutorialDataError(
            f"{path}: variable {name!r} (the {role}) has dims {var.dims}, missing {kind} dim(s) {absent}"
        )
    other = [d for d in var.dims if d not in need]
    values = var.transpose(*other, *need[2:], *hdims).values.astype(np.float64)
    group_dim = other[0] if other else None
    values = values.reshape(values.shape[0] if other else 1, -1, *values.shape[len(other) :])
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise TutorialDataError(f"{path}: variable {name!r} (the {role}) has {bad} NaN/inf values")
    return values, group_dim


def box_filter(x: torch.Tensor, width: int, padding: str) -> torch.Tensor:
    """Centred box mean of odd ``width`` over the last two axes (commutes with 90° rotations of square fields)."""
    if width == 1:
        return x
    p = width // 2
    shape = x.shape
    y = torch.nn.functional.pad(x.reshape(-1, 1, *shape[-2:]), (p, p, p, p), mode=padding)
    return torch.nn.functional.avg_pool2d(y, width, stride=1).reshape(shape)


def coarsen(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Block mean over ``factor × factor`` cells of the last two axes (sizes must be multiples of ``factor``)."""
    if factor == 1:
        return x
    shape = x.shape
    y = torch.nn.functional.avg_pool2d(x.reshape(-1, 1, *shape[-2:]), factor, stride=factor)
    return y.reshape(*shape[:-2], *y.shape[-2:])


def fluxes(u: torch.Tensor, v: torch.Tensor, s: torch.Tensor, width: int, padding: str) -> dict[str, torch.Tensor]:
    """Same-resolution filtered second moments ``⟨ab⟩ = F(ab) − F(a)F(b)`` (``factor: 1``), each ``(n, C, y, x)``."""
    return _moments(u, v, s, lambda a: box_filter(a, width, padding))


def subfilter_fluxes(u: torch.Tensor, v: torch.Tensor, s: torch.Tensor, factor: int) -> dict[str, torch.Tensor]:
    """Sub-filter fluxes at the coarse resolution, ``τ_ab = C(ab) − C(a) C(b)``, each ``(n, C, y/f, x/f)``."""
    return _moments(u, v, s, lambda a: coarsen(a, factor))


def _moments(u, v, s, op) -> dict[str, torch.Tensor]:
    def cov(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return op(a * b) - op(a) * op(b)

    return {
        "uv": cov(u, v)[:, None],
        "vector_flux": torch.stack([cov(u, s), cov(v, s)], dim=1),
        "tke": (0.5 * (cov(u, u) + cov(v, v) + cov(s, s)))[:, None],
    }


def gradient_model_uv(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The gradient (Clark/Leonard) model ``Δ²/12 (∂ₓu ∂ₓv + ∂ᵧu ∂ᵧv)`` of ``⟨u′v′⟩`` from coarse fields.

    For a box filter of width Δ and derivatives in coarse cells (Δ = 1 coarse cell): ``(1/12) ∇u·∇v``, second
    order differences (one-sided at the edges, so it is the same for every orientation of a patch).
    """
    du = np.gradient(u, axis=(-2, -1))
    dv = np.gradient(v, axis=(-2, -1))
    return (du[0] * dv[0] + du[1] * dv[1]) / 12.0


def r2_score(pred: np.ndarray, truth: np.ndarray) -> float:
    """``1 − SS_res / SS_tot`` over every element (channels pooled, each channel about its own mean)."""
    truth = truth.astype(np.float64)
    axes = tuple(i for i in range(truth.ndim) if i != 1) if truth.ndim > 1 else 0
    ss_tot = float(((truth - truth.mean(axis=axes, keepdims=True)) ** 2).sum())
    ss_res = float(((pred.astype(np.float64) - truth) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _with_levels(x: np.ndarray, levels: int) -> np.ndarray:
    """``(group, slice, z, y, x)`` → ``(group, slice·z', 2L+1, y, x)``: each interior level with its neighbours."""
    n_z = x.shape[2]
    if n_z < 2 * levels + 1:
        raise TutorialDataError(f"tutorial.data.levels={levels} needs at least {2 * levels + 1} levels, have {n_z}")
    stacks = [x[:, :, k - levels : k + levels + 1] for k in range(levels, n_z - levels)]
    out = np.stack(stacks, axis=2)  # (group, slice, z', 2L+1, y, x)
    return out.reshape(x.shape[0], -1, 2 * levels + 1, *x.shape[-2:])


def _square_patches(x: np.ndarray, patch: int) -> np.ndarray:
    """``(group, n, C, y, x)`` → ``(group, n·tiles, C, p, p)``."""
    n_y, n_x = x.shape[-2:]
    size = patch or min(n_y, n_x)
    if size > min(n_y, n_x):
        raise TutorialDataError(f"tutorial.data.patch {size} exceeds the coarse horizontal size {n_y}×{n_x}")
    tiles = [
        x[..., i : i + size, j : j + size]
        for i in range(0, n_y - size + 1, size)
        for j in range(0, n_x - size + 1, size)
    ]
    out = np.stack(tiles, axis=2)
    return out.reshape(x.shape[0], -1, *x.shape[2:-2], size, size)


def check_not_degenerate(raw: dict[str, np.ndarray], names: dict[str, str], settings: TutorialData, path: str) -> None:
    """Reject data no closure can be learnt from, naming the culprit: too small, constant (everywhere, or on each
    horizontal slice), or without wind."""
    n_y, n_x = next(iter(raw.values())).shape[-2:]
    coarse = min(n_y, n_x) // settings.factor
    if coarse < 3:
        raise TutorialDataError(
            f"{path}: the horizontal grid {n_y}×{n_x} ({'×'.join(settings.horizontal_dims)}) coarsened by "
            f"tutorial.data.factor={settings.factor} leaves {coarse}×{coarse} cells; a 3×3 stencil needs at least 3"
        )
    for role, values in raw.items():
        if float(values.max()) == float(values.min()):
            raise TutorialDataError(f"{path}: variable {names[role]!r} (the {role}) is constant ({values.flat[0]!r})")
        if np.array_equal(values.max(axis=(-2, -1)), values.min(axis=(-2, -1))):
            # every sub-filter flux it enters is then zero: its targets' scale is 0 and every training job fails
            # with a non-finite loss (issue 22)
            raise TutorialDataError(
                f"{path}: variable {names[role]!r} (the {role}) is constant on every horizontal slice "
                f"({'×'.join(settings.horizontal_dims)}); it varies only between slices, so the sub-filter fluxes "
                "it enters are zero and there is nothing to learn"
            )
    if not (np.any(raw["u"] != 0) or np.any(raw["v"] != 0)):
        raise TutorialDataError(f"{path}: the wind ({names['u']!r}, {names['v']!r}) is zero everywhere")


def prepare(settings: TutorialData, source: str | os.PathLike, targets: list[str], out: str | os.PathLike) -> str:
    """Validate the source, coarse-grain, compute targets, select biased training samples, split and store.

    One named stage each: read the variables (:func:`_read_fields`) and reject data no closure can be learnt from
    (:func:`check_not_degenerate`); coarse-grain the inputs and compute the targets (:func:`_coarse_grain`); put
    the neighbouring levels into channels and cut square patches (:func:`_arrange`); split by the outermost dim
    (:func:`_split`); keep the orientation-biased training samples (:func:`_orientation_bias`); normalisation
    scales, the gradient model's ceiling and the dataset (:func:`_dataset`).
    """
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise ValueError(f"unknown tutorial target(s) {unknown}; available: {sorted(TARGETS)}")
    ds = open_user_file(source)
    path = str(source)
    raw, groups = _read_fields(ds, settings, path)
    check_not_degenerate(raw, settings.variables, settings, path)
    coarse, target_arrays = _coarse_grain(ds, raw, settings, targets, path)
    inputs, target_arrays = _arrange(coarse, target_arrays, settings)
    n_groups, per_group = inputs.shape[:2]
    group_id = np.repeat(np.arange(n_groups), per_group)
    x_all = inputs.reshape(-1, *inputs.shape[2:])
    y_all = {k: a.reshape(-1, *a.shape[2:]) for k, a in target_arrays.items()}
    order, split = _split(group_id, n_groups, settings, path, groups)
    idx, split, angle = _orientation_bias(x_all, order, split, settings, path)
    prepared = _dataset(x_all, y_all, idx, split, angle, group_id, settings, float(ds.attrs.get("coriolis", 0.0)), path)
    return write_store(
        prepared, out, {"kind": "tutorial", "data": asdict(settings), "targets": targets, "source": str(source)}
    )


def _read_fields(ds: xr.Dataset, settings: TutorialData, path: str) -> tuple[dict[str, np.ndarray], set[str | None]]:
    """The wind and the scalar as ``(group, slice[, z], y, x)`` float64, and the names of their group dims."""
    hdims = tuple(settings.horizontal_dims)
    vdim = settings.vertical_dim if settings.levels > 0 else None
    raw, groups = {}, set()
    for role, name in settings.variables.items():
        raw[role], group_dim = _field(ds, role, name, hdims, vdim, path)
        groups.add(group_dim)
    shapes = {role: a.shape for role, a in raw.items()}
    if len(set(shapes.values())) != 1:
        raise TutorialDataError(f"{path}: u, v and the scalar differ in shape: {shapes}")
    return raw, groups


def _coarse_grain(
    ds: xr.Dataset, raw: dict[str, np.ndarray], settings: TutorialData, targets: list[str], path: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Coarse inputs ``(group, slice[, z], y, x)`` per role, and each target ``(group, slice[, z], C, y, x)``:
    computed at the fine resolution (cropped to a multiple of ``factor``), or read from the file and coarsened."""
    f = settings.factor
    n_y, n_x = raw["u"].shape[-2:]
    crop = (..., slice(0, n_y - n_y % f), slice(0, n_x - n_x % f))
    fine = {role: torch.from_numpy(np.ascontiguousarray(a[crop])) for role, a in raw.items()}
    u, v, s = (fine[role].flatten(0, -3) for role in ("u", "v", "scalar"))
    computed = subfilter_fluxes(u, v, s, f) if f > 1 else fluxes(u, v, s, settings.filter_width, settings.padding)
    lead = fine["u"].shape[:-2]  # (group, slice[, z])
    coarse = {role: coarsen(a, f).numpy() for role, a in fine.items()}
    hdims = tuple(settings.horizontal_dims)
    vdim = settings.vertical_dim if settings.levels > 0 else None
    target_arrays = {}
    for name in targets:
        if name in settings.target_variables:
            arr, _ = _field(ds, f"{name} target", settings.target_variables[name], hdims, vdim, path)
            target_arrays[name] = coarsen(torch.from_numpy(np.ascontiguousarray(arr[crop])), f).numpy()[..., None, :, :]
        else:
            arr = computed[name].numpy()
            target_arrays[name] = arr.reshape(*lead, arr.shape[1], *arr.shape[-2:])
    return coarse, target_arrays


def _arrange(
    coarse: dict[str, np.ndarray], target_arrays: dict[str, np.ndarray], settings: TutorialData
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Samples ``(group, n, C, p, p)``: each (interior) level with its ``levels`` neighbours on each side as channels,
    in square patches. The input channels are ``u₋L, v₋L, …, u₊L, v₊L`` (each level's wind, a vector, as a pair)
    and then ``scalar₋L … scalar₊L`` (:func:`input_layout`)."""
    lv = settings.levels
    if lv:
        wind = [_with_levels(coarse[c], lv) for c in ("u", "v")]
        scal = _with_levels(coarse["scalar"], lv)
        inputs = np.concatenate([np.stack(wind, axis=3).reshape(*scal.shape[:2], -1, *scal.shape[-2:]), scal], axis=2)
        target_arrays = {
            k: a[:, :, lv : a.shape[2] - lv].reshape(a.shape[0], -1, *a.shape[3:]) for k, a in target_arrays.items()
        }
    else:
        inputs = np.stack([coarse["u"], coarse["v"], coarse["scalar"]], axis=-3)
        inputs = inputs.reshape(inputs.shape[0], -1, *inputs.shape[-3:])
        target_arrays = {k: a.reshape(a.shape[0], -1, *a.shape[-3:]) for k, a in target_arrays.items()}
    inputs = _square_patches(inputs, settings.patch)
    return inputs, {k: _square_patches(a, settings.patch) for k, a in target_arrays.items()}


def _split(
    group_id: np.ndarray, n_groups: int, settings: TutorialData, path: str, groups: set[str | None]
) -> tuple[np.ndarray, np.ndarray]:
    """The samples used (``max_samples`` evenly spread) and their split, whole groups (outer indices) per split."""
    order = np.arange(len(group_id))
    if settings.max_samples and settings.max_samples < len(order):
        order = np.unique(np.linspace(0, len(order) - 1, settings.max_samples).round().astype(int))
    fractions = np.asarray(settings.split_fractions, dtype=float)
    bounds = np.floor(np.cumsum(fractions / fractions.sum()) * n_groups).astype(int)
    group_split = np.full(n_groups, "test", dtype=object)
    group_split[: bounds[0]] = "train"
    group_split[bounds[0] : bounds[1]] = "valid"
    split = group_split[group_id[order]]
    for name in ("train", "valid", "test"):
        if not (split == name).any():
            raise TutorialDataError(
                f"{path}: the {name} split is empty: {n_groups} independent group(s) along the outermost dim "
                f"({sorted(g for g in groups if g) or 'none'}) for split_fractions {settings.split_fractions}"
            )
    return order, split


def _centre_wind(x: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """The centre level's ``(u, v)`` of inputs ``(n, C, y, x)``: level ``k`` (0 … 2L) is channels ``2k, 2k+1``, and
    the centre level is ``k = L`` (:func:`_arrange`)."""
    return x[:, 2 * levels], x[:, 2 * levels + 1]


def _orientation_bias(
    x_all: np.ndarray, order: np.ndarray, split: np.ndarray, settings: TutorialData, path: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the training samples whose mean wind is not within ±``bias_degrees`` of +x; the kept samples' indices,
    splits and mean wind angles (valid and test keep every orientation)."""
    u_c, v_c = _centre_wind(x_all[order], settings.levels)
    angle = np.degrees(np.arctan2(v_c.mean(axis=(1, 2)), u_c.mean(axis=(1, 2))))
    biased = np.abs(angle) <= settings.bias_degrees
    keep = (split != "train") | biased
    if not keep[split == "train"].any():
        raise TutorialDataError(f"{path}: no training sample has its mean wind within ±{settings.bias_degrees}° of +x")
    return order[keep], split[keep], angle[keep]


def _dataset(
    x_all: np.ndarray,
    y_all: dict[str, np.ndarray],
    idx: np.ndarray,
    split: np.ndarray,
    angle: np.ndarray,
    group_id: np.ndarray,
    settings: TutorialData,
    coriolis: float,
    path: str,
) -> xr.Dataset:
    """The prepared samples with their normalisation scales (from the training split) and, with ``uv``, the
    a-priori skill of the gradient model on the test split."""
    n_lev = 2 * settings.levels + 1
    train = idx[split == "train"]
    x_train = x_all[train]
    wind_scale = float(np.sqrt((x_train[:, : 2 * n_lev] ** 2).sum(axis=1).mean() / n_lev))
    scalar_scale = float(np.sqrt((x_train[:, 2 * n_lev :] ** 2).mean()))
    size = x_all.shape[-1]
    data_vars = {
        "inputs": (("sample", "channel", "y", "x"), x_all[idx].astype(np.float32)),
        "split": (("sample",), split.astype(str)),
        "mean_wind_angle": (("sample",), angle),
        "group": (("sample",), group_id[idx]),
    }
    attrs: dict[str, Any] = {
        "wind_scale": wind_scale,
        "scalar_scale": scalar_scale,
        "input_layout": input_layout(settings.levels),
        "coarsening_factor": settings.factor,
        "coriolis": coriolis,
    }
    for name, arr in y_all.items():
        scale = float(np.sqrt((arr[train].astype(np.float64) ** 2).mean()))
        if not scale > 0:
            raise TutorialDataError(
                f"{path}: the target {name!r} is zero on every training sample, so it cannot be normalised or learnt"
                + (f" (read from variable {settings.target_variables[name]!r})" if name in settings.target_variables
                   else "")
            )  # fmt: skip
        data_vars[f"target_{name}"] = (("sample", f"{name}_channel", "y", "x"), arr[idx].astype(np.float32))
        attrs[f"target_{name}_scale"] = scale
        attrs[f"target_{name}_layout"] = TARGETS[name]
    if "uv" in y_all:
        attrs |= _gradient_model_skill(x_all, y_all["uv"], idx[split == "test"], settings)
    channels = [f"{c}{k - settings.levels:+d}" for k in range(n_lev) for c in ("u", "v")]
    channels += [f"scalar{k - settings.levels:+d}" for k in range(n_lev)]
    prepared = xr.Dataset(
        data_vars,
        coords={"sample": np.arange(len(idx)), "channel": channels, "y": np.arange(size), "x": np.arange(size)},
    )
    prepared.attrs = attrs
    return prepared


def _gradient_model_skill(x_all: np.ndarray, uv: np.ndarray, test: np.ndarray, settings: TutorialData) -> dict:
    """R² of the gradient model of ``⟨u′v′⟩`` on the test split: nominal, and at its best coefficient (the ceiling)."""
    grad = gradient_model_uv(*_centre_wind(x_all[test], settings.levels))[:, None]
    truth = uv[test]
    coef = float((grad * truth).sum() / max(float((grad**2).sum()), 1e-300))
    return {
        "gradient_model_r2": r2_score(grad, truth),  # the nominal Δ²/12 coefficient
        "gradient_model_r2_fitted": r2_score(coef * grad, truth),  # its best multiple: the ceiling
        "gradient_model_coefficient": coef / 12.0 if settings.factor > 1 else float("nan"),
    }
