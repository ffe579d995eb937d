"""Faults an outside reliability test injected (issue 22), each pinned by a test that failed before its fix.

The job server's faults (a killed server's orphans, a failing preload, stale socket directories) are in
tests/test_jobserver.py; degenerate tutorial data in tests/test_tutorial.py.
"""

from __future__ import annotations

import copy
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
import zarr

import kill_hook
from equidyn import atomic
from equidyn import config as equidyn_config
from equidyn.atomic import DiskFullError, write_text
from equidyn.config import ConfigError, deep_merge, validate_config
from equidyn.training import checkpoint
from equidyn.training.trainer import TrainSettings

ROOT = Path(__file__).resolve().parents[1]

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


# -- 3, 4 and the tutorial's group: what the start-up validation rejects ------------------------------------------


def demo() -> dict:
    config: dict = {}
    for name in ("config.yaml", "demo.yaml"):
        config = deep_merge(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    return config


def _extra_convnet(c: dict) -> None:
    c["levels"]["models"].append({"name": "convnet", "budget": 16000, "layers": 4, "alphas": [0]})


def _extra_cnn_label(c: dict) -> None:
    c["tutorial"]["models"].append({"label": "cnn", "model": "closure_escnn", "budget": 3000, "layers": 4})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (_extra_convnet, r"levels\.models\[3\]\.label: 'convnet' repeats levels\.models\[0\]"),
        (_extra_cnn_label, r"tutorial\.models\[5\]\.label: 'cnn' repeats tutorial\.models\[0\]"),
        (lambda c: c["levels"]["models"][2].update(alphas=[0, 0.01, 1e-2]),
         r"models\[2\]\.alphas\[2\]: alpha 0\.01 repeats alphas\[1\]"),
        (lambda c: c["tutorial"]["models"][0].update(penalty=0.1),
         r"tutorial\.models\[0\]\.penalty: 'closure_cnn' has no regulariser .*'closure_cnn_penalty'"),
        (lambda c: c["tutorial"]["models"][0].update(group="D4"),
         r"tutorial\.models\[0\]\.group: 'D4' would be ignored by 'closure_cnn': it is not built for a group"),
        (lambda c: c["levels"]["splits"].update(test=[28, 40]),
         r"levels\.splits\.test: frames \[28, 40\) are not inside the 36 stored frames \(physics: steps 5 to 41"),
        (lambda c: c["levels"]["physics"].update(keep_to=30), r"levels\.splits\.test: .* inside the 25 stored frames"),
        (lambda c: c["rotation"]["frames"].update(test_future=[52, 95]),
         r"rotation\.frames\.test_future: .* 90 stored"),
        (lambda c: c["levels"].update(protocol="heldout", heldout={"train": [0, 2], "valid": [2], "test": [1]}),
         r"levels\.heldout\.valid: group 2 is also in levels\.heldout\.train"),
        (lambda c: c["levels"].update(protocol="heldout", heldout={"train": [0, 40], "valid": [3], "test": [1]}),
         r"levels\.heldout: group 40 of level \d+ needs base plume"),
    ],
)  # fmt: skip
def test_the_validation_rejects_duplicates_and_late_failures_naming_the_key(patch, message) -> None:
    config = demo()
    validate_config(copy.deepcopy(config))
    patch(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_entries_of_one_network_with_their_own_labels_are_valid() -> None:
    """Issue 20's arms: an augmented ConvNet and a tied RSteer beside the plain ones, told apart by ``label``."""
    config = demo()
    config["levels"]["models"].append({"name": "convnet", "label": "convnet_aug", "augment": True, **_SIZE})
    config["levels"]["models"].append({"name": "rsteer", "label": "rsteer_tied", "options": {"tied": True}, **_SIZE})
    validate_config(config)


_SIZE = {"budget": 8000, "layers": 4, "alphas": [0]}


def test_the_validation_rejects_cuda_on_a_torch_built_without_it(monkeypatch) -> None:
    """Used to fail in the first training job, after the data were built: ``AttributeError … _cuda_reset…``."""
    config = demo()
    config["superres"]["training"]["device"] = "cuda:0"
    monkeypatch.setattr(equidyn_config, "torch_cuda_build", lambda: True)
    validate_config(copy.deepcopy(config))
    monkeypatch.setattr(equidyn_config, "torch_cuda_build", lambda: False)
    with pytest.raises(
        ConfigError, match=r"superres\.training\.device: 'cuda:0', but this torch is built without CUDA"
    ):
        validate_config(config)


def test_the_installed_torchs_cuda_build_is_read_without_importing_it() -> None:
    assert equidyn_config.torch_cuda_build() is (torch.version.cuda is not None or torch.version.hip is not None)


def test_a_cuda_job_on_a_machine_without_a_gpu_names_the_key(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"training\.device is 'cuda', but torch sees no CUDA device"):
        TrainSettings(device="cuda").torch_device()


# -- minor: the rotation summary's lineage join takes a missing value as its siblings do ----------------------------


def test_the_rotation_summary_joins_a_missing_lineage_value(tmp_path) -> None:
    import pandas as pd

    from equidyn.studies import rotation

    run = {"model": "convnet", "alpha": 0.0, "params": 10, "config_sha": "c", "data_sha": "d"}
    rows = [{**run, "seed": s, "git_rev": rev, "rmse_future": 1.0 + s, "rmse_domain": 2.0 + s}
            for s, rev in ((0, "abc"), (1, None))]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "benchmark.csv", index=False)  # the missing git_rev reads back as NaN
    summary = rotation.summary_table(tmp_path / "benchmark.csv", tmp_path / "summary.csv")
    assert summary.loc[0, "git_rev"] == "abc;nan" and summary.loc[0, "n_seeds"] == 2


# -- Snakemake runs of a tiny tutorial on a user's file: logs of resumed jobs, orphans, the input's checks ---------

RUN = "results/faults/runs/tutorial/f0/cnn/seed0"
TRAIN_LOG = "results/faults/logs/runs/tutorial/f0/cnn/seed0/train.log"
PREPARED = "results/faults/data/tutorial/f0/prepared.zarr"


def _user_data(path: Path) -> xr.Dataset:
    rng = np.random.default_rng(0)
    ds = xr.Dataset({k: (("time", "y", "x"), rng.standard_normal((30, 16, 16))) for k in "uvw"})
    ds["u"] = ds.u + 1.5  # a mean wind along +x
    if path.suffix == ".zarr":
        ds.to_zarr(path, mode="w")
    else:
        ds.to_netcdf(path)
    return ds


@pytest.fixture
def tutorial_dir(tmp_path: Path) -> Path:
    """A workflow directory: a user's NetCDF (``user.nc``) and a one-run tutorial config (``tiny.yaml``)."""
    _user_data(tmp_path / "user.nc")
    tiny = {
        "name": "faults",
        "tutorial": {
            "data": {"factor": 2, "levels": 0, "mean_wind": 0.0},
            "outputs": ["uv"],
            "coriolis": {"f": 0.0, "models": []},
            "seeds": [0],
            "models": [{"label": "cnn", "model": "closure_cnn", "hidden": 4, "layers": 3}],
            "training": {"epochs": 4, "batch_size": 8, "lr": 3e-3, "patience": 4, "device": "cpu"},
        },
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    return tmp_path


def snakemake(directory: Path, *args: str, python_dir: Path | None = None, **env: str) -> subprocess.Popen:
    """Snakemake on the tiny config, with ``python_dir`` first on PATH (the jobs' and the job server's python)."""
    path = os.pathsep.join(filter(None, [str(python_dir or ""), str(Path(sys.executable).parent), os.environ["PATH"]]))
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args, "--snakefile", str(ROOT / "Snakefile"), "--cores", "1",
         "--directory", str(directory), "--configfile", str(directory / "tiny.yaml")],
        env={**os.environ, "PATH": path, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate()
    return proc.returncode, out


def test_a_resumed_jobs_log_keeps_the_killed_attempt(tutorial_dir, python_killed_after_epoch) -> None:
    """Snakemake 9 deletes a job's log before each attempt, so ``>> {log}`` kept only the resumed attempt
    ("resuming … after epoch 2" and the later epochs). Every attempt now appends to an attempt log in the run
    folder, which the rule copies to its log."""
    data = "tutorial_data=user.nc"
    killed = snakemake(tutorial_dir, f"{RUN}/history.csv", "--config", data,
                       python_dir=python_killed_after_epoch.parent, **{kill_hook.ENV: "2"})  # fmt: skip
    code, out = finished(killed)
    assert code != 0 and (tutorial_dir / RUN / "state" / "last.pt").exists(), out[-3000:]
    code, out = finished(snakemake(tutorial_dir, f"{RUN}/history.csv", "--config", data))
    assert code == 0, out[-3000:]
    log = (tutorial_dir / TRAIN_LOG).read_text()
    epochs = [int(m) for m in re.findall(r"INFO equidyn\.training\.trainer: epoch (\d+):", log)]
    assert epochs == [1, 2, 3, 4], log  # the killed attempt's epochs, then the resumed attempt's
    assert log.index("epoch 2:") < log.index("after epoch 2") < log.index("epoch 3:")
    assert (tutorial_dir / RUN / "train.attempts.log").read_text() == log


def test_a_killed_job_server_leaves_no_job_after_snakemake_exits(tutorial_dir, python_killed_after_epoch) -> None:
    """SIGKILL of the job server mid-job: the job used to keep training as an orphan (PPID 1) after Snakemake
    exited, and to write complete outputs about 20 s later that a rerun trusted."""
    hold = tutorial_dir / "job.pid"
    run = snakemake(tutorial_dir, f"{RUN}/history.csv", "--config", "tutorial_data=user.nc",
                    python_dir=python_killed_after_epoch.parent,
                    **{kill_hook.HOLD_ENV: "1", kill_hook.HOLD_FILE_ENV: str(hold)})  # fmt: skip
    try:
        while not (hold.exists() and hold.read_text()):  # pytest-timeout is the hang guard
            time.sleep(0.05)
        job = int(hold.read_text())
        server = int(Path(f"/proc/{job}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the job's parent
        assert "equidyn.jobserver" in Path(f"/proc/{server}/cmdline").read_bytes().decode(errors="replace")
        os.kill(server, signal.SIGKILL)
        code, out = finished(run)
    finally:
        if run.poll() is None:
            run.kill()
    assert code != 0, out[-3000:]
    assert "stopped before the job finished" in (tutorial_dir / TRAIN_LOG).read_text()  # the client's word
    while _alive(job):
        time.sleep(0.05)
    assert not (tutorial_dir / RUN / "history.csv").exists()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_a_mistyped_tutorial_data_path_is_an_error_even_when_results_exist(tutorial_dir) -> None:
    """It used to be accepted ("Nothing to be done", exit 0), so the old results looked current."""
    code, out = finished(snakemake(tutorial_dir, f"{RUN}/history.csv", "--config", "tutorial_data=user.nc"))
    assert code == 0, out[-3000:]
    code, out = finished(snakemake(tutorial_dir, f"{RUN}/history.csv", "-n", "--config", "tutorial_data=usr.nc"))
    assert code != 0 and "tutorial_data: the tutorial input usr.nc does not exist" in out, out[-3000:]


def test_a_zarr_input_changed_in_place_is_prepared_again(tutorial_dir) -> None:
    """Snakemake compares a directory input by its own mtime, which rewriting a chunk does not change."""
    ds = _user_data(tutorial_dir / "user.zarr")
    code, out = finished(snakemake(tutorial_dir, PREPARED, "--config", "tutorial_data=user.zarr"))
    assert code == 0, out[-3000:]
    mtime = (tutorial_dir / "user.zarr").stat().st_mtime_ns
    group = zarr.open_group(str(tutorial_dir / "user.zarr"), mode="r+")
    group["w"][:] = 2 * ds.w.values  # in place: the same chunk files, rewritten
    assert (tutorial_dir / "user.zarr").stat().st_mtime_ns == mtime
    code, out = finished(snakemake(tutorial_dir, PREPARED, "-n", "--config", "tutorial_data=user.zarr"))
    assert code == 0 and re.search(r"^tutorial_prepare\s+1$", out, re.M), out[-3000:]
