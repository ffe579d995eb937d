"""Per-job fixed cost (issue 14), checked without a clock: which modules a job imports, and that the cheaper
pieces compute exactly what they replace (escnn's cached He init).

``torch._dynamo`` (imported by every ``torch.optim`` optimiser) and ``scipy.stats`` (imported by escnn) are no
longer kept out of the jobs: issue 22 went back to ``torch.optim`` and a plain ``scipy.stats`` import, since the
local job server imports both once and on a cluster they are a negligible part of a training job.

The times themselves are measured by benchmarks/bench_job_overhead.py and recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# Each costs a job 0.3-3 s to import and none is needed by the job named in the test.
HEAVY = ("escnn", "phi", "matplotlib")


def loaded_after(code: str) -> set[str]:
    """Top-level names of the modules ``code`` leaves in ``sys.modules`` (a fresh interpreter)."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "EQUIDYN_GIT_REV": "test"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


def test_the_cli_module_imports_nothing_heavy() -> None:
    modules = loaded_after("import equidyn.cli")
    assert heavy(modules) == []
    assert not {"torch", "xarray", "zarr", "pandas"} & modules


JOB = """
import json
import numpy as np
from equidyn.data.smoke import PlumePhysics
from equidyn.data.smoke_datasets import build_level, frames_dataset
from equidyn.store import write_store
from equidyn.cli import main
rng = np.random.default_rng(0)
velocity = rng.standard_normal((5, 10, 2, 8, 8)).astype(np.float32)
ds = frames_dataset(velocity, PlumePhysics(grid=8, n_steps=10, keep_from=0),
                    {{"inflow_x": ("sim", np.zeros(5)), "inflow_y": ("sim", np.zeros(5))}})
root = {root!r}
splits = {{"train": [0, 6], "valid": [6, 8], "test": [8, 10]}}
write_store(ds, root + "/base.zarr", {{}})
build_level(root + "/base.zarr", 1, splits, root + "/level1.zarr")
settings = {{"physics": {{}}, "base": {{}}, "splits": splits, "input_frames": 1,
            "rollout": {{"train": 1, "valid": 1, "test": 1}},
            "training": {{"epochs": 3, "batch_size": 4, "patience": 3, "device": "cpu"}},
            "evaluation": {{"ee_samples": 2}}, "model": {{"name": {model!r}, "budget": 500, "layers": 3}}}}
main(["levels-train", "--settings", json.dumps(settings), "--store", root + "/level1.zarr", "--model", {model!r},
      "--alpha", "0", "--level", "1", "--seed", "0", "--run-dir", root + "/run", "--threads", "1"])
"""


def test_a_convnet_training_job_imports_neither_escnn_nor_plotting(tmp_path) -> None:
    """The ConvNet path of a real levels-train job (store, sizing, training, evaluation), in a fresh process."""
    modules = loaded_after(JOB.format(root=str(tmp_path), model="convnet"))
    assert (tmp_path / "run" / "eval_best.json").exists()  # the job really ran to its end
    assert heavy(modules) == []


def test_an_escnn_training_job_imports_escnn_but_not_plotting(tmp_path) -> None:
    modules = loaded_after(JOB.format(root=str(tmp_path), model="e2cnn"))
    assert (tmp_path / "run" / "eval_best.json").exists()
    assert "escnn" in modules
    assert heavy(modules) == [m for m in heavy(modules) if m == "escnn" or m.startswith("escnn.")]


def test_importing_the_model_zoo_for_a_convnet_does_not_import_escnn() -> None:
    modules = loaded_after(
        "from equidyn.models.registry import build_model\n"
        "from equidyn.models.base import ModelSpec\n"
        "from equidyn.symmetry import FieldLayout\n"
        "v = FieldLayout.parse('1 vector')\n"
        "build_model(ModelSpec(name='convnet', in_layout=v, out_layout=v, hidden=2, layers=2, grid=(8, 8), group='C4'))"
    )
    assert "escnn" not in modules


# -- escnn's He initialisation, computed once per layer, gives the same weights -----------------------------------


def test_cached_he_init_gives_escnns_weights_and_random_stream() -> None:
    from escnn import gspaces
    from escnn import nn as enn

    from equidyn.models.escnn_init import he_initialised_r2conv

    gs = gspaces.rot2dOnR2(4)
    vec = enn.FieldType(gs, 3 * [gs.irrep(1)])
    reg = enn.FieldType(gs, 5 * [gs.regular_repr])
    for t_in, t_out in [(vec, reg), (reg, reg), (reg, reg), (reg, vec)]:  # the repeat hits the cache
        torch.manual_seed(5)
        plain = enn.R2Conv(t_in, t_out, 3, padding=1)
        after_plain = torch.rand(1)
        torch.manual_seed(5)
        cached = he_initialised_r2conv(t_in, t_out, 3)
        assert torch.rand(1) == after_plain  # the same draws, in the same order
        a, b = plain.state_dict(), cached.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_e2cnn_and_rsteer_build_as_before(rng) -> None:
    """The escnn models' outputs at a seed do not depend on whether their layers hit the variance cache."""
    from equidyn.models.base import ModelSpec
    from equidyn.models.registry import build_model
    from equidyn.symmetry import FieldLayout

    x = torch.from_numpy(rng.standard_normal((2, 2, 8, 8)).astype(np.float32))
    for name in ("e2cnn", "rsteer"):
        v = FieldLayout.parse("1 vector")
        spec = ModelSpec(name=name, in_layout=v, out_layout=v, hidden=3, layers=4, grid=(8, 8), group="C4")
        torch.manual_seed(0)
        first = build_model(spec).eval()
        torch.manual_seed(0)
        second = build_model(spec).eval()  # every layer's variances now come from the cache
        assert torch.equal(first(x), second(x))


# -- fewer, fuller cluster submissions -------------------------------------------------------------------------------


def _profile() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())


def test_the_slurm_profile_groups_each_measured_runs_training_and_measures_by_existing_rule_names() -> None:
    """A rule renamed in rules/*.smk without the profile would silently lose its grouping (Snakemake ignores
    unknown names), turning ~470 submissions back into ~2,800."""
    import yaml

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules", "--nolock", "--profile", "profiles/slurm"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rules = set(out.stdout.split())
    groups = dict(entry.split("=") for entry in _profile()["groups"])
    assert set(groups) <= rules, f"profile groups name rules that do not exist: {sorted(set(groups) - rules)}"
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    measured = {entry["study"] for entry in config["dynamics"]["runs"]}
    must = {f"{study}_train" for study in measured} | {r for r in rules if r.startswith("measure_")}
    assert {r: groups.get(r) for r in must} == {r: "run" for r in must}


def test_the_slurm_profiles_per_submission_limits_admit_every_configured_request() -> None:
    """Snakemake refuses a job whose request exceeds the per-submission limits the profile sets for grouping."""
    import yaml

    profile = _profile()
    limits = dict(entry.split("=") for entry in profile["resources"])
    assert "gpu=local" in profile["set-resource-scopes"]  # else gpu=1 would cap the whole cluster at one GPU job
    merged = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["resources"]
    for kind, values in (yaml.safe_load((ROOT / "config" / "slurm.yaml").read_text()) or {})["resources"].items():
        merged[kind] = {**merged.get(kind, {}), **values}
    by_model = merged.pop("by_model", {})
    for model, kinds in by_model.items():
        for kind, values in kinds.items():
            assert values.get("mem_mb", 0) <= int(limits["mem_mb"]), (model, kind)
    for kind, values in merged.items():
        assert values.get("threads", 1) <= profile["cores"], kind
        assert values.get("mem_mb", 0) <= int(limits["mem_mb"]), kind
        assert values.get("gpu", 0) <= int(limits["gpu"]), kind
