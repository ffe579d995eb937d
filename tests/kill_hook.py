"""Test hook: a ``python`` whose training jobs are SIGKILLed right after saving the state of a chosen epoch.

A scheduler kills a job at any moment; the tests that resume a killed job need the kill at a known point (after
epoch N's ``state/last.pt`` is written), without a test hook in the training loop. Run as
``python tests/kill_hook.py -m MODULE ARGS…`` (:func:`write_python` writes an executable ``python`` that does so,
for the shell commands of Snakemake rules and for the job server, which both find ``python`` on ``PATH``): it
wraps :func:`equidyn.training.checkpoint.save`, then runs ``MODULE`` as ``python -m`` would. The epoch is read
from ``$EQUIDYN_KILL_AFTER_EPOCH`` at each save, so a job forked by the job server sees its own environment.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import time
from pathlib import Path
from typing import Any

ENV = "EQUIDYN_KILL_AFTER_EPOCH"
# Or hold the job there (a long job, mid-run at a known point): write its pid to $EQUIDYN_HOLD_FILE and sleep.
HOLD_ENV, HOLD_FILE_ENV = "EQUIDYN_HOLD_AFTER_EPOCH", "EQUIDYN_HOLD_FILE"
STATE_FILE = "last.pt"  # the trainer's resumable state (equidyn.training.trainer): written last in each epoch


def install() -> None:
    """Make ``checkpoint.save`` SIGKILL (or hold) this process after it saved the state of the chosen epoch."""
    from equidyn.training import checkpoint

    save = checkpoint.save

    def save_then_maybe_die(path: str | os.PathLike, payload: dict[str, Any]) -> None:
        save(path, payload)
        if Path(path).name != STATE_FILE:
            return
        if os.environ.get(ENV) == str(payload.get("epoch")):
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get(HOLD_ENV) == str(payload.get("epoch")):
            Path(os.environ[HOLD_FILE_ENV]).write_text(str(os.getpid()))
            while True:
                time.sleep(1)

    checkpoint.save = save_then_maybe_die


def write_python(directory: Path) -> Path:
    """An executable ``directory/python`` that runs ``python -m …`` with the hook installed; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    python = directory / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    python.chmod(0o755)
    return python


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit(f"kill_hook: only `python -m MODULE [ARGS]` is supported, got {sys.argv[1:]}")
    sys.path.insert(0, os.getcwd())  # as `python -m` does
    install()
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
