"""Super-resolution inputs and targets from a turbulence store ([W24, BLOG]).

A turbulence store (offline solver or JHTDB, same layout) holds ``velocity`` with dims
``(sample, time, component, z, y, x)``, components in (x, y, z) order. The super-resolution task of
W24/BLOG maps three consecutive low-resolution snapshots to the next high-resolution one:

* inputs ``(B, 9, n/f, n/f, n/f)``: times 0, 1, 2, each box-filtered and strided by ``f`` (64³ → 16³ at
  paper scale); channel ``time*3 + component``, i.e. three vector fields in the layout ``3 vector``;
* targets ``(B, 3, n, n, n)``: time 3 at full resolution (layout ``1 vector``).

The low-resolution input is made locally by :func:`box_downsample` (a block mean and a stride), which
commutes exactly with every element of O_h when ``n`` is a multiple of ``f``: a 90° rotation or a
reflection of the grid maps blocks onto blocks. So the data pipeline itself breaks no symmetry that a
model imposes (in the published code, the transposed-convolution up-sampling broke it, not the data).

Splits are by sample, in store order: the first ``n_train`` samples train, the next ``n_val`` validate,
the next ``n_test`` test (BLOG: 40/5/5). For the offline source consecutive samples are a decorrelation
gap apart, so the contiguous blocks keep the test samples furthest in time from the training ones.
Optional normalisation divides everything by one global scalar, the rms speed of the training split; a
single scalar keeps the data equivariant (a per-component scale would not).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..settings import settings_from_dict
from ..store import open_store, store_settings
from ..symmetry import FieldLayout
from .jhtdb import JhtdbSettings, download_jhtdb
from .turbulence import OfflineTurbulenceSettings, generate_offline

#: Input channels: three velocity fields (times 0, 1, 2), each a vector with components (x, y, z).
INPUT_LAYOUT = FieldLayout.of(("vector", 3))
#: Target channels: the velocity at time 3.
TARGET_LAYOUT = FieldLayout.of(("vector", 1))
#: Snapshots used per sample: three input times and one target time.
INPUT_TIMES = 3
SOURCES = ("offline", "jhtdb")


@dataclass(frozen=True)
class SuperResDataSettings:
    """The ``superres.data`` config section: which source, how to split, how far to downsample."""

    source: str = "offline"
    n_train: int = 40
    n_val: int = 5
    n_test: int = 5
    factor: int = 4
    normalise: bool = False
    offline: OfflineTurbulenceSettings = field(default_factory=OfflineTurbulenceSettings)
    jhtdb: JhtdbSettings = field(default_factory=JhtdbSettings)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"superres.data.source must be one of {SOURCES}, got {self.source!r}")
        if self.n_train < 1 or self.n_val < 0 or self.n_test < 0:
            raise ValueError(
                f"superres.data: need n_train >= 1 and n_val, n_test >= 0, got {self.n_train}/{self.n_val}/"
                f"{self.n_test}"
            )
        if self.factor < 1:
            raise ValueError(f"superres.data.factor must be >= 1, got {self.factor}")
        if self.grid_size % self.factor:
            raise ValueError(
                f"superres.data: the {self.source} grid size {self.grid_size} is not a multiple of factor "
                f"{self.factor} (box downsampling is only exactly equivariant on whole blocks)"
            )
        needed = self.n_train + self.n_val + self.n_test
        if needed > self.n_samples:
            raise ValueError(
                f"superres.data: splits need {needed} samples but superres.data.{self.source}.n_samples is "
                f"{self.n_samples}"
            )
        if self.n_times < INPUT_TIMES + 1:
            raise ValueError(
                f"superres.data.{self.source}.n_times must be >= {INPUT_TIMES + 1} (3 inputs + 1 target), "
                f"got {self.n_times}"
            )

    @property
    def grid_size(self) -> int:
        return self.offline.n if self.source == "offline" else self.jhtdb.crop

    @property
    def n_samples(self) -> int:
        return self.offline.n_samples if self.source == "offline" else self.jhtdb.n_samples

    @property
    def n_times(self) -> int:
        return self.offline.n_times if self.source == "offline" else self.jhtdb.n_times

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SuperResDataSettings:
        d = dict(d or {})
        offline = OfflineTurbulenceSettings.from_dict(d.pop("offline", None))
        jhtdb = JhtdbSettings.from_dict(d.pop("jhtdb", None))
        base = settings_from_dict(_Flat, d, "superres.data")
        return cls(offline=offline, jhtdb=jhtdb, **dataclasses.asdict(base))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def source_settings(self) -> dict[str, Any]:
        return self.offline.to_dict() if self.source == "offline" else self.jhtdb.to_dict()


@dataclass(frozen=True)
class _Flat:
    """The scalar keys of ``superres.data`` (validated by name before the nested sections are built)."""

    source: str = "offline"
    n_train: int = 40
    n_val: int = 5
    n_test: int = 5
    factor: int = 4
    normalise: bool = False


def generate_superres_store(
    settings: SuperResDataSettings, out: str | os.PathLike, *, threads: int | None = None
) -> str:
    """Make the turbulence store from the configured source; return its content checksum.

    ``threads`` (the cores the job was given) bounds the solver's torch threads; the download ignores it.
    """
    if settings.source == "offline":
        return generate_offline(settings.offline, Path(out), threads=threads)
    return download_jhtdb(settings.jhtdb, Path(out))


def box_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over non-overlapping ``factor³`` blocks of the last three axes (a box filter, then a stride).

    Exactly O_h-equivariant for sizes that are multiples of ``factor`` (each block maps onto a block under
    every flip and axis permutation), and linear, so it commutes with the component mixing of vector fields.
    """
    if factor < 1:
        raise ValueError(f"box_downsample: factor must be >= 1, got {factor}")
    if x.dim() < 3:
        raise ValueError(f"box_downsample needs at least 3 grid axes, got shape {tuple(x.shape)}")
    *lead, nz, ny, nx = x.shape
    if nz % factor or ny % factor or nx % factor:
        raise ValueError(f"box_downsample: grid {(nz, ny, nx)} is not a multiple of factor {factor}")
    f = factor
    blocks = x.reshape(*lead, nz // f, f, ny // f, f, nx // f, f)
    return blocks.mean(dim=(-5, -3, -1))


def make_pairs(velocity: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocities ``(B, T>=4, 3, n, n, n)`` → inputs ``(B, 9, n/f, n/f, n/f)``, targets ``(B, 3, n, n, n)``.

    Channel ``time*3 + component`` of the inputs holds that time's component; the target is time 3.
    """
    if velocity.dim() != 6 or velocity.shape[2] != 3:
        raise ValueError(f"expected velocity (sample, time, 3, z, y, x), got shape {tuple(velocity.shape)}")
    if velocity.shape[1] < INPUT_TIMES + 1:
        raise ValueError(f"need at least {INPUT_TIMES + 1} times per sample, got {velocity.shape[1]}")
    low = box_downsample(velocity[:, :INPUT_TIMES], factor)
    inputs = low.flatten(1, 2)  # channel = time * 3 + component
    targets = velocity[:, INPUT_TIMES]
    return inputs.contiguous(), targets.contiguous()


@dataclass
class SuperResSplit:
    """One split: float32 tensors and the store's sample indices they came from."""

    inputs: torch.Tensor
    targets: torch.Tensor
    samples: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass
class SuperResData:
    """Train/val/test tensors of a turbulence store, the normalisation scale, and the data's lineage."""

    train: SuperResSplit
    val: SuperResSplit
    test: SuperResSplit
    scale: float
    factor: int
    data_sha: str
    source: str
    input_layout: FieldLayout = INPUT_LAYOUT
    target_layout: FieldLayout = TARGET_LAYOUT

    @property
    def splits(self) -> dict[str, SuperResSplit]:
        return {"train": self.train, "val": self.val, "test": self.test}


def load_superres(
    path: str | os.PathLike,
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    factor: int,
    normalise: bool = False,
) -> SuperResData:
    """Read a turbulence store (checksum verified) and cut it into super-resolution splits."""
    ds = open_store(path)
    if "velocity" not in ds or ds["velocity"].dims != ("sample", "time", "component", "z", "y", "x"):
        raise ValueError(f"{path}: expected a variable velocity(sample, time, component, z, y, x)")
    comps = [str(c) for c in ds["component"].values]
    if comps != ["x", "y", "z"]:
        raise ValueError(f"{path}: components must be stored in (x, y, z) order, found {comps}")
    n_samples = ds.sizes["sample"]
    needed = n_train + n_val + n_test
    if n_train < 1 or n_val < 0 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_val, n_test >= 0, got {n_train}/{n_val}/{n_test}")
    if needed > n_samples:
        raise ValueError(f"{path} has {n_samples} samples but the splits need {needed} ({n_train}/{n_val}/{n_test})")
    velocity = torch.from_numpy(np.ascontiguousarray(ds["velocity"].values, dtype=np.float32))
    if not torch.isfinite(velocity).all():
        raise ValueError(f"{path}: velocity contains non-finite values")
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, needed)}
    scale = 1.0
    if normalise:
        lo, hi = bounds["train"]
        scale = float(velocity[lo:hi].double().square().sum(2).mean().sqrt())
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"{path}: the training split has zero or non-finite rms speed; cannot normalise")
    splits = {}
    samples = ds["sample"].values
    for name, (lo, hi) in bounds.items():
        inputs, targets = make_pairs(velocity[lo:hi] / scale if normalise else velocity[lo:hi], factor)
        splits[name] = SuperResSplit(inputs, targets, np.asarray(samples[lo:hi]))
    return SuperResData(
        **splits,
        scale=scale,
        factor=factor,
        data_sha=str(ds.attrs["content_sha256"]),
        source=str(ds.attrs.get("source", store_settings(ds).get("source", "unknown"))),
    )


def load_from_settings(settings: SuperResDataSettings, path: str | os.PathLike) -> SuperResData:
    """:func:`load_superres` with the counts, factor and normalisation of the ``superres.data`` section."""
    return load_superres(
        path,
        n_train=settings.n_train,
        n_val=settings.n_val,
        n_test=settings.n_test,
        factor=settings.factor,
        normalise=settings.normalise,
    )
