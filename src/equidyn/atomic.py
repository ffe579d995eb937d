"""Atomic outputs: a file or directory appears under its final name only when it is complete.

Snakemake marks outputs of a killed job as incomplete, but a reader outside Snakemake (a user, a notebook, a
resumed download) only sees the file system. Everything equidyn writes therefore goes to a temporary sibling
first and is renamed into place; ``os.replace`` is atomic on POSIX file systems, so a half-written table, figure,
checkpoint or zarr store is never visible under the name a downstream rule reads.

A process killed with SIGKILL cannot clean up, so it leaves its hidden temporary sibling behind (at paper scale, a
partial zarr store per kill). Every atomic write therefore first removes the stale temporaries of *its own* target
(:func:`remove_stale_temporaries`): the next attempt at an output cleans up after the killed one.

A write that fails for want of space (``ENOSPC``, ``EDQUOT``, or torch's ``unexpected pos`` from a short write)
raises :class:`DiskFullError`, which names the output and the free space on its file system: the writers' own
messages name neither (issue 22).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """Writing an output failed because its file system (or the user's quota there) is full."""

    @classmethod
    def writing(cls, path: str | os.PathLike, cause: BaseException) -> DiskFullError:
        """The error for ``cause`` while writing ``path``: the path, the free space where it goes, the cause."""
        free = free_bytes(path)
        where = f"{free / 2**20:.1f} MiB free" if free is not None else "free space unknown"
        return cls(
            errno.ENOSPC,
            f"cannot write {path}: no space left ({where} on its file system, or a quota is reached); free some "
            f"space or point the results elsewhere, then rerun ({cause})",
        )


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free for this user on the file system that holds ``path`` (its nearest existing ancestor)."""
    here = Path(path).absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        return shutil.disk_usage(here).free
    except OSError:
        return None


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is a write that failed for want of space."""
    return isinstance(err, OSError) and err.errno in FULL_ERRNOS and not isinstance(err, DiskFullError)


def _stale_pattern(name: str) -> re.Pattern[str]:
    # tempfile's names: prefix + 8 characters of [a-z0-9_] + suffix; ".tmp…" while writing, ".old" while replacing
    return re.compile(rf"^\.{re.escape(name)}\.[a-z0-9_]{{8}}\.(tmp.*|old)$")


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings an interrupted atomic write of ``path`` left behind; return them.

    Only names of the exact form this module creates for ``path`` match, so other files are never touched. Safe
    because one output has one writer at a time (Snakemake runs one job per output and locks the directory).
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _stale_pattern(path.name)
    removed = []
    for entry in path.parent.iterdir():
        if pattern.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success rename it onto ``path``.

    ``keep_suffix`` keeps the final extension (``.pdf``, ``.csv``) on the temporary name, because some writers
    (matplotlib, pandas) choose the format from it.
    """
    path = Path(path)
    tmp = _tmp_sibling(path, path.suffix if keep_suffix else "")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError.writing(path, err) from err
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``path``; on success it replaces ``path`` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(err):
            raise DiskFullError.writing(path, err) from err
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in metrics and configs; serialise them plainly.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_csv(table: Any, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as CSV atomically (parents created), floats with 9 significant digits.

    The one CSV writer of the studies: every table in ``results/`` has the same float format and appears whole.
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.9g")
