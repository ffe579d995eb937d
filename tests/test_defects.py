"""The defects met by trying equidyn as a new user (issue 10), each pinned by a test that failed before the fix.

Degenerate tutorial data is covered in tests/test_tutorial.py (test_degenerate_data_is_rejected_naming_the_variable).
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from equidyn.config import ConfigError, deep_merge, validate_config

ROOT = Path(__file__).resolve().parents[1]


def merged_yaml(*names: str) -> dict:
    """The shipped configs merged as Snakemake merges them (not validated: each test validates its own)."""
    config: dict = {}
    for name in names:
        config = deep_merge(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    return config


def demo() -> dict:
    return merged_yaml("config.yaml", "demo.yaml")


# -- 1. start-up validation knows the registry, the levels and the penalties -----------------------------------------


BAD_MODEL = {"name": "rstear", "budget": 9, "layers": 3}


@pytest.mark.parametrize(
    "patch, message",
    [
        (lambda c: c["levels"]["models"].append(BAD_MODEL), r"levels\.models\[3\]\.name: unknown model 'rstear'"),
        (lambda c: c["levels"]["models"][0].update(alphas=[0, 0.1]), r"models\[0\]\.alphas: .*'convnet' has no pen"),
        (lambda c: c["levels"].update(levels=[0, 17]), r"levels\.levels: level\(s\) \[17\].*possible level: 16"),
        (lambda c: c["superres"]["models"][0].update(name="convnet"), r"superres\.models\[0\]\.name: .* 2-D model"),
        (lambda c: c["dynamics"]["runs"][0].update(level=[5]), r"dynamics\.runs\[0\]\.level: \[5\] not in levels"),
        (lambda c: c["dynamics"]["runs"][0].update(model=["rgroup"]), r"runs\[0\]\.model: \['rgroup'\] not in"),
        (lambda c: c.update(studies=["rotation"]), r"dynamics\.runs\[0\]\.study: 'levels' is not in studies"),
        (lambda c: c["levels"]["models"][1].update(residual="linear"), r"models\[1\]\.residual: 'linear' .*is 1"),
    ],
)  # fmt: skip
def test_start_up_validation_rejects_what_would_fail_after_the_data_is_built(patch, message) -> None:
    config = demo()
    validate_config(copy.deepcopy(config))
    patch(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_validate_config_prints_a_clean_message_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"levels": {"models": [{"name": "convnet", "budget": 9, "layers": 3, "alphas": [0.1]}]}})
    )
    out = subprocess.run(
        [sys.executable, "-m", "equidyn.cli", "validate-config", str(ROOT / "config" / "config.yaml"), str(bad)],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "levels.models[0].alphas" in out.stderr and "no penalty" in out.stderr


# -- 2. nested --config overrides arrive as strings and are coerced by the schema's types ----------------------------


def test_command_line_strings_are_coerced_to_the_schema_types() -> None:
    config = demo()
    config["name"] = 2024  # Snakemake parses a top-level `name=2024` as a number
    config["levels"]["training"].update(epochs="10", lr="1e-3", device="cpu")  # nested values arrive as strings
    config["levels"]["levels"] = ["0", "4"]
    config["levels"]["physics"].update(precision="64", keep_to="null")
    config["superres"]["data"]["normalise"] = "true"
    validate_config(config)
    assert config["name"] == "2024"
    assert config["levels"]["training"]["epochs"] == 10 and config["levels"]["training"]["lr"] == 1e-3
    assert config["levels"]["levels"] == [0, 4]
    assert config["levels"]["physics"]["precision"] == 64 and config["levels"]["physics"]["keep_to"] is None
    assert config["superres"]["data"]["normalise"] is True
    config["levels"]["training"]["epochs"] = "ten"  # not a number: the schema still names it
    with pytest.raises(ConfigError, match=r"levels\.training\.epochs: 'ten' is not of type 'integer'"):
        validate_config(config)


def test_snakemake_accepts_a_nested_config_override(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "levels_all", "-n", "--profile", str(ROOT / "profiles" / "local"),
         "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--config", "levels={training: {epochs: 10}}", "name=2024"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "results/2024/runs/levels/" in out.stdout + out.stderr


# -- 3. a non-finite loss stops training, naming epoch and batch, keeping the last good state --------------------------


def test_a_non_finite_loss_stops_training_naming_epoch_and_batch(tmp_path: Path, smooth, monkeypatch) -> None:
    import numpy as np
    import torch

    from equidyn.models.base import ModelSpec
    from equidyn.symmetry import FieldLayout
    from equidyn.training import checkpoint, trainer
    from equidyn.training.tasks import PairTask

    rng = np.random.default_rng(0)
    x = torch.from_numpy(smooth(rng, (24, 2, 8, 8))).float()
    task = PairTask(
        {s: x for s in ("train", "valid", "test")}, {s: x.flip(-1) for s in ("train", "valid", "test")}, 1.0
    )
    spec = ModelSpec("convnet", FieldLayout.parse("1 vector"), FieldLayout.parse("1 vector"), 4, 3, (8, 8), "C4")
    batches_per_epoch = 3
    calls = {"n": 0}
    real_loss = trainer.rollout_loss

    def poisoned(task, model, x, y):  # epoch 2, batch 2 turns NaN (as a diverging run or NaN data would)
        calls["n"] += 1
        loss = real_loss(task, model, x, y)
        return loss * float("nan") if calls["n"] == batches_per_epoch + 2 else loss

    monkeypatch.setattr(trainer, "rollout_loss", poisoned)
    settings = trainer.TrainSettings(epochs=5, batch_size=8, patience=5, device="cpu")
    with pytest.raises(trainer.NonFiniteLossError, match=r"epoch 2, batch 2: the data loss is not finite"):
        trainer.train(task, spec, settings, tmp_path / "run", seed=0, alpha=0.0)
    last = checkpoint.load(tmp_path / "run" / "state" / "last.pt")
    assert last["epoch"] == 1  # the last good state is kept
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert not (tmp_path / "run" / "best.pt").exists()  # nothing half-made is published


# -- 4. temporaries left by a SIGKILL are removed before the output is written again -----------------------------------


def test_a_killed_atomic_write_leaves_nothing_behind_after_the_next_write(tmp_path: Path) -> None:
    from equidyn.atomic import atomic_dir, write_csv

    target, store = tmp_path / "table.csv", tmp_path / "data.zarr"
    code = (
        "import os, signal, sys\n"
        "from equidyn.atomic import atomic_dir, atomic_path\n"
        "target, store = sys.argv[1], sys.argv[2]\n"
        "with atomic_dir(store) as tmp:\n"
        "    (tmp / 'chunk').write_text('partial')\n"
        "    with atomic_path(target) as t:\n"
        "        t.write_text('half a tab')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(target), str(store)], capture_output=True)
    assert out.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(re.fullmatch(r"\.(table\.csv|data\.zarr)\.\w{8}\.tmp(\.csv)?", n) for n in left), left
    (tmp_path / ".table.csv.bak").write_text("a user's file")  # a look-alike that is not ours stays

    import pandas as pd

    write_csv(pd.DataFrame({"a": [1.0]}), target)
    with atomic_dir(store) as tmp:
        (tmp / "chunk").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".table.csv.bak", "data.zarr", "table.csv"]


# -- 5. logs appended on resume; a report without rST errors; threads reach the functions ---------------------------


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        for match in re.finditer(r"^ *rule:?\s*(\w*):?\n(.*?)(?=^ *rule\b|\Z)", text, re.M | re.S):
            blocks[f"{smk.name}:{match.start()}"] = match.group(0)
    return blocks


def test_resumable_jobs_append_to_their_logs() -> None:
    """A training job resumes from its last state, so its log must keep the epochs before the kill. Snakemake 9
    deletes ``log:`` before each attempt, so every attempt appends to an attempt log (a params function of the
    output) that the rule copies to its log (issue 22; tests/test_faults.py runs one)."""
    resumable = {
        k: b for k, b in _rule_blocks().items() if re.search(r"-train |equidyn\.cli measure |superres-data ", b)
    }
    assert len(resumable) >= 6, sorted(resumable)
    for name, block in resumable.items():
        assert re.search(r"attempts=W\.(train_attempts\(\"\w+\"\)|output_attempts),", block), name
        assert '"cat {params.attempts:q} > {log} 2>/dev/null || true; "' in block, name
        assert "2>&1 | tee -a {params.attempts:q} >> {log}" in block and block.count("{log}") == 2, name


def test_report_captions_render_without_restructuredtext_errors() -> None:
    from docutils.core import publish_parts
    from jinja2 import Environment

    config = demo()
    env = Environment()
    snakemake = types.SimpleNamespace(config=config)
    for caption in sorted((ROOT / "workflow" / "report").glob("*.rst")):
        text = env.from_string(caption.read_text()).render(snakemake=snakemake, categories={}, files={})
        # halt on warnings (level 2) and above: docutils otherwise renders an error box into the HTML
        publish_parts(text, writer_name="html", settings_overrides={"halt_level": 2, "warning_stream": False})


def test_threads_reach_functions_that_take_them(tmp_path: Path, monkeypatch) -> None:
    from equidyn import cli

    (tmp_path / "threadprobe.py").write_text(
        "seen = {}\n"
        "def with_threads(out, threads=None):\n    seen['with'] = threads\n"
        "def without_threads(out):\n    seen['without'] = out\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "probe-with", ("threadprobe:with_threads", [cli.OUT, cli.THREADS], ""))
    monkeypatch.setitem(cli.COMMANDS, "probe-without", ("threadprobe:without_threads", [cli.OUT, cli.THREADS], ""))
    assert cli.main(["probe-with", "--out", "x", "--threads", "1"]) == 0
    assert cli.main(["probe-without", "--out", "y", "--threads", "1"]) == 0
    import threadprobe

    assert threadprobe.seen == {"with": 1, "without": "y"}
