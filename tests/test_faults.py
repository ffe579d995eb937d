"""Faults an outside reliability test injected (issue 22), each pinned by a test that failed before its fix.

The job server's faults (a killed server's orphans, a failing preload, stale socket directories) are in
tests/test_jobserver.py; degenerate tutorial data in tests/test_tutorial.py.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import torch

from equidyn import atomic
from equidyn.atomic import DiskFullError, write_text
from equidyn.training import checkpoint

# -- 7. a full disk names the output and the free space ------------------------------------------------------------


def _disk_with_free(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _p: usage._replace(free=free))


def test_a_full_disk_during_a_checkpoint_save_names_the_path_and_the_free_space(tmp_path, monkeypatch) -> None:
    """torch's short write used to surface as ``RuntimeError: [enforce fail at inline_container.cc:672] unexpected
    pos …``, naming neither the file nor the cause."""

    def short_write(_payload, f) -> None:
        Path(f).write_bytes(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1216 vs 1104")

    monkeypatch.setattr(torch, "save", short_write)
    _disk_with_free(monkeypatch, 3 * 2**20)
    target = tmp_path / "run" / "state" / "last.pt"
    with pytest.raises(DiskFullError, match=r"cannot write .*run/state/last\.pt: no space left \(3\.0 MiB free") as err:
        checkpoint.save(target, {"epoch": 1})
    assert err.value.errno == errno.ENOSPC and "unexpected pos" in str(err.value)
    assert list(target.parent.iterdir()) == []  # the partial temporary is gone, no checkpoint appeared


def test_other_checkpoint_errors_pass_unchanged(tmp_path, monkeypatch) -> None:
    def bad(_payload, _f) -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(torch, "save", bad)
    with pytest.raises(RuntimeError, match=r"^something else$"):
        checkpoint.save(tmp_path / "x.pt", {})


def test_every_atomic_write_on_a_full_disk_names_the_path_and_the_free_space(tmp_path, monkeypatch) -> None:
    def no_space(self, _text) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_space)
    _disk_with_free(monkeypatch, 0)
    with pytest.raises(DiskFullError, match=r"cannot write .*table\.csv: no space left \(0\.0 MiB free"):
        write_text(tmp_path / "tables" / "table.csv", "a,b\n")
    assert list((tmp_path / "tables").iterdir()) == []
