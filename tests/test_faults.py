"""Faults an outside reliability test injected (issue 22), each pinned by a test that failed before its fix.

The job server's faults (a killed server's orphans, a failing preload, stale socket directories) are in
tests/test_jobserver.py; degenerate tutorial data in tests/test_tutorial.py.
"""

from __future__ import annotations

import copy
import errno
import shutil
from pathlib import Path

import pytest
import torch
import yaml

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
        (_extra_convnet, r"levels\.models\[3\]\.name: 'convnet' repeats levels\.models\[0\]"),
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
    ],
)  # fmt: skip
def test_the_validation_rejects_duplicates_and_late_failures_naming_the_key(patch, message) -> None:
    config = demo()
    validate_config(copy.deepcopy(config))
    patch(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


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
