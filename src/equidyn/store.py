"""Zarr stores with xarray metadata and a content checksum.

Every dataset equidyn produces (smoke plumes, level datasets, turbulence cubes, tutorial fields) is an
``xarray.Dataset`` written to zarr by :func:`write_store`. The store's attributes carry the generator settings
(``settings``, JSON) and ``content_sha256``, a checksum of the coordinate and variable *values*. Readers call
:func:`open_store`, which recomputes the checksum and refuses a store that does not match: a truncated copy, a
half-written store or a hand-edited one is named in the error instead of silently feeding a training run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .atomic import atomic_dir


class CorruptStoreError(RuntimeError):
    """A zarr store is missing, unreadable, or its content does not match its recorded checksum."""


def content_sha256(ds: xr.Dataset) -> str:
    """Checksum of names, dims, dtypes and values of all variables and coordinates (attributes excluded)."""
    h = hashlib.sha256()
    for name in sorted(map(str, ds.variables)):
        var = ds.variables[name]
        values = np.ascontiguousarray(var.values)
        h.update(f"{name}|{var.dims}|{values.dtype.str}|{values.shape}|".encode())
        if values.dtype.kind in "OUS":
            h.update("\x1f".join(map(str, values.ravel())).encode())
        else:
            h.update(values.tobytes())
    return h.hexdigest()


def write_store(ds: xr.Dataset, path: str | os.PathLike, settings: dict[str, Any] | None = None) -> str:
    """Write ``ds`` atomically to the zarr store ``path``; return its content checksum."""
    ds = ds.copy()
    sha = content_sha256(ds)
    ds.attrs["content_sha256"] = sha
    if settings is not None:
        ds.attrs["settings"] = json.dumps(settings, sort_keys=True, default=str)
    from . import __version__

    ds.attrs["equidyn_version"] = __version__
    with atomic_dir(path) as tmp:
        # zarr format 2: string coordinates (component names) have no stable v3 encoding yet.
        ds.to_zarr(tmp / "store.zarr", mode="w", consolidated=False, zarr_format=2)
        # Move the finished store's contents up so `path` itself is the zarr root.
        inner = tmp / "store.zarr"
        for child in inner.iterdir():
            os.replace(child, tmp / child.name)
        inner.rmdir()
    return sha


def open_store(path: str | os.PathLike, *, verify: bool = True) -> xr.Dataset:
    """Open and load a store written by :func:`write_store`, checking its content checksum."""
    path = Path(path)
    if not path.is_dir():
        raise CorruptStoreError(f"data store {path} does not exist (was the rule that writes it run?)")
    try:
        ds = xr.open_zarr(path, consolidated=False).load()
    except Exception as err:  # zarr raises many types for a damaged store
        raise CorruptStoreError(f"data store {path} cannot be read: {err}") from err
    recorded = ds.attrs.get("content_sha256")
    if recorded is None:
        raise CorruptStoreError(f"data store {path} has no content_sha256 attribute: not written by equidyn")
    if verify:
        actual = content_sha256(ds)
        if actual != recorded:
            raise CorruptStoreError(
                f"data store {path} is corrupt: content checksum {actual[:12]} != recorded {recorded[:12]}"
            )
    return ds


def store_settings(ds: xr.Dataset) -> dict[str, Any]:
    return json.loads(ds.attrs.get("settings", "{}"))
