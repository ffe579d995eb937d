"""Lineage: the config hash, code revision and data checksum that every table row and figure carries.

A number in a report is only reproducible if one can tell which configuration, which code and which data made
it. ``config_sha`` hashes the canonical JSON of the (validated) config section that produced a result,
``git_rev`` is the commit of the working tree (with ``-dirty`` when it has uncommitted changes, so a figure made
from edited code never passes as a clean one), and ``data_sha`` is the content checksum stored in the data's zarr
attributes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

LINEAGE_COLUMNS = ("config_sha", "git_rev", "data_sha")


def config_sha(config: Any) -> str:
    """SHA-256 (first 12 hex digits) of the canonical JSON of ``config``."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@functools.cache
def git_rev(start: str | None = None) -> str:
    """The current commit (12 digits, ``-dirty`` if tracked files changed), or ``EQUIDYN_GIT_REV``, or ``unknown``.

    ``EQUIDYN_GIT_REV`` lets a cluster job that runs outside the checkout report the revision the workflow
    was launched from; the Snakefile exports it for every job.
    """
    if os.environ.get("EQUIDYN_GIT_REV"):
        return os.environ["EQUIDYN_GIT_REV"]
    cwd = start or str(Path(__file__).resolve().parent)
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
        return f"{rev}-dirty" if dirty else rev
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def lineage_record(config: Any, data_sha: str) -> dict[str, str]:
    return {"config_sha": config_sha(config), "git_rev": git_rev(), "data_sha": data_sha}
