"""One description per study: every study implements one interface; paths and checkpoint names have one source."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from equidyn import runs
from equidyn.studies import catalog
from equidyn.studies.description import StudyDescription, StudyModule, pattern_keys
from equidyn.workflow import Workflow

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
# the scaling and exponax studies are not part of the demo (issues 23, 24): their grids come from their own configs
SECTIONS = {
    **DEMO,
    "scaling": yaml.safe_load((ROOT / "config" / "scaling.yaml").read_text())["scaling"],
    "exponax": yaml.safe_load((ROOT / "config" / "exponax.yaml").read_text())["exponax"],
}


@pytest.mark.parametrize("name", sorted(catalog.STUDIES))
def test_every_study_implements_the_interface(name: str) -> None:
    module = catalog.study(name)
    assert isinstance(module, StudyModule)
    d = module.DESCRIPTION
    assert d.name == name and isinstance(d, StudyDescription)
    # train_run is called with keywords: settings, store, run_dir and exactly the run keys
    params = inspect.signature(module.train_run).parameters
    assert {"settings", "store", "run_dir"} <= set(params)
    assert set(params) - {"settings", "store", "run_dir"} == set(d.keys) | ({"alpha"} if "alpha" in params else set())
    assert list(inspect.signature(module.make_task).parameters) == ["settings", "store"]
    # every run of the demo grid has exactly the description's keys and settings that name its model
    section = SECTIONS[name]
    grid = module.runs(section)
    assert grid and all(set(r) == set(d.keys) for r in grid)
    settings = module.run_settings(section, grid[0])
    assert settings["model"][d.model_key if d.model_key != "model" else "name"] == grid[0][d.model_key]


def test_an_unknown_study_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown study 'nope'.*levels"):
        catalog.study("nope")


def test_checkpoint_names_derive_from_the_early_epoch() -> None:
    assert f"epoch{runs.EARLY_EPOCH}" == runs.EARLY_CHECKPOINT
    assert runs.EPOCH_CHECKPOINTS[runs.EARLY_CHECKPOINT] == runs.EARLY_EPOCH
    assert (*runs.EPOCH_CHECKPOINTS, runs.BEST_CHECKPOINT) == runs.CHECKPOINTS
    assert max(runs.EPOCH_CHECKPOINTS.values()) == runs.MIN_EPOCHS
    d = catalog.description("levels")
    files = d.train_files()
    assert {files[c] for c in runs.CHECKPOINTS} == {f"{c}.pt" for c in runs.CHECKPOINTS}
    assert {f"eval_{c}" for c in runs.CHECKPOINTS} <= set(files)
    assert all(key.isidentifier() for key in files)  # usable as named rule outputs
    with pytest.raises(ValueError, match="names no checkpoint"):
        runs.checkpoint_of("eval_epoch99", "eval_")


def test_paths_are_formatted_from_run_keys_and_stores_follow_them() -> None:
    d = catalog.description("levels")
    run = {"model": "rsteer", "alpha": "0.01", "level": 3, "seed": 0}
    assert d.keys == ("model", "alpha", "level", "seed")
    assert d.run_path(run) == "runs/levels/rsteer/alpha0.01/level3/seed0"
    assert d.store_path(run) == "data/levels/level3.zarr"
    assert pattern_keys(d.run_dir) == d.keys
    with pytest.raises(ValueError, match="not run keys"):
        StudyDescription(name="x", run_pattern="{model}/seed{seed}", store="data/{level}.zarr")


def test_workflow_lists_the_dynamics_files_of_the_selected_runs() -> None:
    config = {**DEMO, "resources": {}}
    w = Workflow(config)
    selected = w.dynamics_runs()
    assert {s for s, _ in selected} == {"levels", "superres"}
    assert all(r["seed"] == 0 for _, r in selected)
    files = w.dynamics_files(("lie",))
    assert len(files) == len(selected) * len(runs.CHECKPOINTS)
    assert "results/demo/runs/levels/rsteer/alpha0.01/level0/seed0/lie_best.json" in files
    hessian = w.hessian_figure_files()
    assert hessian and all("/level0/" in f or "/superres/" in f for f in hessian)


def test_dynamics_runs_can_be_restricted_to_the_models_a_claim_compares() -> None:
    config = {**DEMO, "resources": {}, "dynamics": {**DEMO["dynamics"], "runs": [{"study": "levels", "level": [0]}]}}
    everything = Workflow(config).dynamics_runs()
    config["dynamics"]["runs"] = [{"study": "levels", "level": [0], "model": ["e2cnn", "rsteer"]}]
    chosen = Workflow(config).dynamics_runs()
    assert {r["model"] for _, r in everything} == {"convnet", "e2cnn", "rsteer"}
    assert chosen == [(s, r) for s, r in everything if r["model"] != "convnet"]


def test_a_runs_entry_may_measure_the_best_checkpoint_only() -> None:
    """``checkpoints: [best]`` (issue 20's laptop budget): only those measure files are asked for, every selected
    run keeps its eval files, and another entry's runs keep every checkpoint."""
    config = {**DEMO, "resources": {}}
    config["dynamics"] = {
        **DEMO["dynamics"],
        "runs": [{"study": "levels", "level": [0], "checkpoints": ["best"]}, {"study": "superres"}],
    }
    w = Workflow(config)
    files = w.dynamics_files(("hessian",))
    level_files = [f for f in files if "/levels/" in f]
    assert level_files and all(f.endswith("hessian_best.json") for f in level_files)
    assert any(f.endswith("hessian_epoch3.json") for f in files if "/superres/" in f)
    assert len(w.dynamics_eval_files()) == len(w.dynamics_runs()) * len(runs.CHECKPOINTS)
    assert all("epoch3" not in f for f in w.hessian_figure_files() if "/levels/" in f)


def test_a_runs_entry_sets_the_memory_knobs_of_its_runs_only() -> None:
    """``subset.batch_size`` / ``hessian.vector_chunk`` in a ``dynamics.runs`` entry reach its runs' measure jobs
    (the paper's 3-D Hessians need them), are not filters, and leave every other run at the section's values."""
    import json

    from equidyn.config import load_config, validate_config

    small = {"subset": {"batch_size": 1}, "hessian": {"vector_chunk": 2}}
    config = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "demo.yaml"])
    config["dynamics"]["runs"] = [{"study": "superres", **small}, {"study": "levels", "level": [0]}]
    validate_config(config)
    w = Workflow(config)
    studies = {s for s, _ in w.dynamics_runs()}
    assert studies == {"superres", "levels"}
    superres = next(r for s, r in w.dynamics_runs() if s == "superres")
    level = next(r for s, r in w.dynamics_runs() if s == "levels")
    measured = json.loads(w.measure_settings("superres", superres, "hessian"))["dynamics"]
    assert measured["subset"]["batch_size"] == 1 and measured["hessian"]["vector_chunk"] == 2
    assert measured["hessian"]["top_k"] == DEMO["dynamics"]["hessian"]["top_k"]  # merged, not replaced
    plain = json.loads(w.measure_settings("levels", level, "hessian"))["dynamics"]
    assert "batch_size" not in plain["subset"] and "vector_chunk" not in plain["hessian"]
    config["dynamics"]["runs"][0]["subset"] = {"samples": 3}  # a knob that changes values is not allowed there
    with pytest.raises(Exception, match="samples"):
        validate_config(config)


def test_a_model_can_ask_for_more_than_its_class() -> None:
    """``resources.by_model`` (the O_h GCNN's memory, from the paper-scale check) reaches that model's jobs only."""
    from types import SimpleNamespace

    config = {**DEMO, "resources": {"train": {"threads": 1, "runtime": 60, "mem_mb": 4000}}}
    assert Workflow(config).model_res("train", "mem_mb") == 4000  # no override: a plain value, as before
    config["resources"]["by_model"] = {"gcnn3d": {"train": {"mem_mb": 90000}}}
    request = Workflow(config).model_res("train", "mem_mb")
    assert request(SimpleNamespace(model="gcnn3d")) == 90000 and request(SimpleNamespace(model="cnn3d")) == 4000
    assert Workflow(config).model_res("train", "runtime") == 60


def test_snakefile_path_imports_neither_torch_nor_numpy() -> None:
    """The Snakefile validates the config and builds the DAG with equidyn.config and equidyn.workflow only."""
    code = (
        "import sys, yaml\n"
        "from equidyn.config import validate_config, load_config\n"
        "from equidyn.workflow import Workflow\n"
        f"c = load_config([{str(ROOT / 'config' / 'config.yaml')!r}, {str(ROOT / 'config' / 'demo.yaml')!r}])\n"
        "w = Workflow(c); [w.runs(s) for s in ('levels', 'rotation', 'superres', 'tutorial')]\n"
        "w.dynamics_files(('lie',)); w.run_settings('levels', w.runs('levels')[0])\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'pandas', 'escnn') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]


def test_rules_can_name_only_declared_tables() -> None:
    w = Workflow({**DEMO, "resources": {}})
    assert w.table("levels") == "results/demo/tables/levels.csv"
    assert w.table("dynamics").endswith("tables/dynamics.csv")
    with pytest.raises(ValueError, match="table 'level' is declared by no study"):
        w.table("level")


def _imports_of(path: Path, package: str) -> set[str]:
    """The ``equidyn.studies`` modules that a module imports anywhere (deferred imports inside functions count:
    they close a cycle as soon as both functions run in one process)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            found |= {f"{package}.{n.split('.')[0]}" for n in names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            found.add(".".join(node.module.split(".")[:3]))
    return found


def test_the_study_modules_import_each_other_without_a_cycle() -> None:
    """The baselines once closed a cycle with the catalog (baselines → catalog → levels → baselines); each module
    of ``equidyn.studies`` now has one job and the imports between them form no loop."""
    import equidyn.studies

    package = "equidyn.studies"
    folder = Path(equidyn.studies.__file__).parent
    graph = {f"{package}.{p.stem}": _imports_of(p, package) for p in folder.glob("*.py") if p.stem != "__init__"}
    assert f"{package}.catalog" in graph[f"{package}.baselines"]  # the check sees deferred imports

    def cycle_from(node: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                return (*path[path.index(nxt) :], nxt)
            found = cycle_from(nxt, (*path, nxt))
            if found:
                return found
        return None

    for module in sorted(graph):
        assert cycle_from(module, (module,)) is None, f"import cycle: {' → '.join(cycle_from(module, (module,)))}"


def test_a_study_train_run_takes_exactly_its_run_keys_and_forwards_them_in_path_order(monkeypatch) -> None:
    """The bound ``train_run`` replaces per-study copies: its signature names the run keys (so a missing or an unknown
    key is a TypeError, as with a written-out signature) and it passes them on in path order."""
    from equidyn.studies import common, scaling

    calls = []
    monkeypatch.setattr(common, "train_run", lambda training, *args, **run: calls.append((training, args, run)))
    keys = scaling.DESCRIPTION.keys
    run = dict(reversed([(k, i) for i, k in enumerate(keys)]))  # given in reverse order
    scaling.train_run({"s": 1}, "store.zarr", run_dir="runs/x", **run)
    training, args, forwarded = calls[0]
    assert training is scaling.TRAINING and args == ({"s": 1}, "store.zarr", "runs/x")
    assert list(forwarded) == list(keys) and forwarded == run
    with pytest.raises(TypeError, match="seed"):
        scaling.train_run({}, "store.zarr", "runs/x", **{k: 0 for k in keys if k != "seed"})
    with pytest.raises(TypeError, match="flow"):
        scaling.train_run({}, "store.zarr", "runs/x", flow="kolmogorov", **{k: 0 for k in keys})
    assert scaling.train_run.__name__ == "train_run" and "scaling" in scaling.train_run.__doc__
