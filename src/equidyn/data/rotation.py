"""The W22 rotation dataset: 36 plumes blowing in four directions, one of them 10 % stronger on purpose.

Plume ``k = 1 … n_sims`` has direction ``j = (k−1) mod 4`` and force magnitude ``force_step·k``; direction ``j`` is
the base inflow/force ``(grid/2, inflow_y)/(0, +1)`` turned by ``j·90°`` with the symmetry spine — for a 64×64
grid exactly W22's (32,5)/(0,1), (59,32)/(−1,0), (32,59)/(0,−1), (5,32)/(1,0) — and direction ``j = 2`` (the top
inflow) has its force multiplied by ``asymmetry`` (1.1), which breaks the C4 symmetry of the data on purpose.

Splits ([W22]) are by plume and by *frame range*: ``train``, ``valid`` and ``test_future`` use the plumes
not held out, in consecutive, disjoint frame ranges; ``test_domain`` uses the held-out ``(k, j)`` plumes. A window
must lie entirely inside its split's range, so no validation or test frame is ever part of a training window (the
published windows overlapped). The normalisation scale — the rms speed of the train frames of the train plumes —
is computed here and stored with the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..settings import settings_from_dict
from ..store import open_store, write_store
from ..symmetry import C4
from .smoke import PlumePhysics, PlumeSetup, simulate
from .smoke_datasets import check_frame_ranges, frames_dataset, rms_scale

SPLITS = ("train", "valid", "test_future", "test_domain")
W22_HELD_OUT = ((6, 1), (14, 1), (15, 2), (10, 1), (18, 1), (20, 3), (24, 3), (13, 0), (21, 0), (5, 0))


@dataclass(frozen=True)
class RotationPlumes:
    n_sims: int = 36
    force_step: float = 0.01
    inflow_y: float = 5.0
    asymmetry: float = 1.1
    asymmetric_direction: int = 2

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RotationPlumes:
        return settings_from_dict(cls, d, "rotation plume")


def rotation_setup(plumes: RotationPlumes, physics: PlumePhysics) -> PlumeSetup:
    group, c = C4(), physics.grid / 2
    k = np.arange(1, plumes.n_sims + 1)
    j = (k - 1) % 4
    p0, f0 = np.array([c, plumes.inflow_y]), np.array([0.0, 1.0])
    centers = np.stack([group.matrix(d) @ (p0 - c) + c for d in j])
    magnitude = plumes.force_step * k * np.where(j == plumes.asymmetric_direction, plumes.asymmetry, 1.0)
    forces = np.stack([group.matrix(d) @ f0 for d in j]) * magnitude[:, None]
    return PlumeSetup(centers, forces, labels={"k": k, "direction": j, "force_magnitude": magnitude})


def split_plumes(n_sims: int, held_out: list[list[int]] | tuple) -> dict[str, list[int]]:
    """Store indices (0-based) of the plumes of each split; held-out pairs are ``(k, j)``, checked for consistency."""
    held = []
    for k, j in held_out:
        if not 1 <= k <= n_sims:
            raise ValueError(f"held-out plume k={k} is outside 1..{n_sims}")
        if (k - 1) % 4 != j:
            raise ValueError(f"held-out pair (k={k}, j={j}) is inconsistent: plume {k} has direction {(k - 1) % 4}")
        held.append(k - 1)
    rest = [i for i in range(n_sims) if i not in held]
    return {"train": rest, "valid": rest, "test_future": rest, "test_domain": sorted(held)}


def generate_rotation(
    physics: PlumePhysics,
    plumes: RotationPlumes,
    held_out: list[list[int]],
    frames: dict[str, list[int]],
    out: str | os.PathLike,
) -> str:
    setup = rotation_setup(plumes, physics)
    sims = split_plumes(plumes.n_sims, held_out)
    frames = check_frame_ranges(frames, len(physics.kept_steps), SPLITS, ("train", "valid", "test_future"))
    velocity = simulate(setup, physics)
    lo, hi = frames["train"]
    ds = frames_dataset(
        velocity,
        physics,
        {
            "k": ("sim", setup.labels["k"]),
            "direction": ("sim", setup.labels["direction"]),
            "force_magnitude": ("sim", setup.labels["force_magnitude"]),
            "inflow_x": ("sim", setup.centers[:, 0]),
            "inflow_y": ("sim", setup.centers[:, 1]),
        },
    )
    ds.attrs = {
        "split_sims": json.dumps(sims),
        "split_frames": json.dumps(frames),
        "norm_scale": rms_scale(velocity[sims["train"], lo:hi]),
        "norm_note": "rms speed of the train frames of the train plumes; one scalar keeps the C4 action exact",
    }
    settings = {
        "kind": "smoke-rotation",
        "physics": asdict(physics),
        "plumes": asdict(plumes),
        "held_out": [list(p) for p in held_out],
        "frames": frames,
    }
    return write_store(ds, out, settings)


def load_splits(store: str | os.PathLike) -> tuple[Any, dict[str, list[int]], dict[str, list[int]]]:
    ds = open_store(store)
    return ds, json.loads(ds.attrs["split_sims"]), json.loads(ds.attrs["split_frames"])
