"""The training study on exponax's periodic 2-D turbulence (issue 24): one run per (model, alpha, flow, seed).

The data part (one store per flow, its symmetry check, the data-EE table) is :mod:`equidyn.studies.exponax`; this
module is the study the catalog lists as ``exponax``: its description, run grid, per-run settings, task and
training job. The tables are :mod:`equidyn.studies.exponax_tables`, the claims
:func:`equidyn.studies.claims.exponax_claims`.

**The task.** Forecast the next vorticity frame from ``input_frames`` frames (``2 pseudoscalar`` → ``1
pseudoscalar``) on whole *held-out trajectories*: every split's windows come from its own trajectories
(``split_sims`` of the store, independent random initial conditions), and every stored frame of them is used, as
in the held-out level study. Normalised by the store's ``norm_scale`` (rms vorticity of the training
trajectories: one positive scalar, so normalising keeps every D4 element, the sign flips included).

**The arms** are the held-out level study's: ConvNet, ConvNet + C4 augmentation, E2CNN, RSteer (and its α grid),
the tied RSteer. E2CNN and RSteer are C4 models: on a pseudoscalar field C4 acts as on a scalar (rotations keep
its sign), so they are exactly C4-equivariant on vorticity frames (tested) and impose nothing about the
reflections, which flip the vorticity's sign. The augmentation draws C4 elements and acts on the pseudoscalar
frames through :meth:`equidyn.symmetry.GridGroup.act` (the one group action). Why no D4 arm:
docs/decisions.md, "The exponax study".

**Mirror EE.** Because no arm imposes the mirrors, every training job also measures each checkpoint's EE under
D4's four reflections (``mirror_ee.json``; pseudoscalar action, so a model that learned the mirror symmetry of
decaying turbulence has a small value): what a C4 model does with the half of D4 it is not built for.

Imports stay light (no torch, numpy or xarray at module level): the Snakefile imports this through the catalog.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..atomic import write_json
from . import common
from .description import Run, StudyDescription

DESCRIPTION = StudyDescription(
    name="exponax",
    run_pattern="{model}/alpha{alpha}/flow{flow}/seed{seed}",
    store="data/exponax/{flow}.zarr",
    examples=("mirror_ee.json",),
    tables=("exponax_data_equivariance", "exponax", "exponax_summary"),
    measured_split="test",
    headline=("test", "rmse"),
)
#: the per-run file with each checkpoint's EE under the reflections of D4
MIRROR_FILE = "mirror_ee.json"
#: what a run's settings take from the study section besides its flow's data settings and its model entry
RUN_KEYS = ("input_frames", "rollout", "training", "evaluation")


def flows(section: dict[str, Any]) -> list[str]:
    """The flows the study trains on: every flow of ``exponax.flows``, in the order of :data:`FLOWS`."""
    from ..data.exponax_flows import FLOWS

    return [f for f in FLOWS if f in section["flows"]]


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (model, alpha, flow, seed) of the configured grid."""
    grid = common.model_alpha_seed_runs(section)
    return [
        {**{k: r[k] for k in ("model", "alpha")}, "flow": f, "seed": r["seed"]} for r in grid for f in flows(section)
    ]


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run: its flow's data settings (that flow's section only, so changing one flow does not
    retrain the other's runs), the task and training settings and its model entry (without the alpha grid). Adding
    a seed, an arm or an alpha changes no existing run's settings; their hash is the run's ``config_sha``."""
    entry = common.run_entry(section["models"], run["model"])
    flow = str(run["flow"])
    return {"flow": flow, "data": section["flows"][flow], **{k: section[k] for k in RUN_KEYS}, "model": entry}


def layouts(input_frames: int) -> tuple[str, str]:
    """The models' input and output layouts: ``input_frames`` vorticity frames in, one out (pseudoscalars)."""
    return f"{int(input_frames)} pseudoscalar", "1 pseudoscalar"


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    """The forecasting task on one flow's store: windows of ``input_frames + rollout`` consecutive frames inside
    each split's own (held-out) trajectories, every frame used, normalised by the train rms vorticity."""
    import torch

    from ..data.exponax_flows import LAYOUT, store_frames
    from ..store import open_store
    from ..training.tasks import ForecastTask
    from .levels import windows

    ds = open_store(store)
    if ds.attrs.get("layout") != str(LAYOUT) or ds.attrs.get("flow") != settings["flow"]:
        raise ValueError(
            f"{store}: a store of flow {ds.attrs.get('flow')!r} with layout {ds.attrs.get('layout')!r}, but the run is "
            f"for flow {settings['flow']!r} on '{LAYOUT}'"
        )
    scale = float(ds.attrs["norm_scale"])
    frames = torch.from_numpy(store_frames(ds)) / scale  # (sim, time, 1, y, x)
    n_in = int(settings["input_frames"])
    steps = {split: int(settings["rollout"][split]) for split in ("train", "valid", "test")}
    sims = json.loads(ds.attrs["split_sims"])
    every = (0, frames.shape[1])
    wins = {split: windows(sims[split], every, n_in + steps[split]) for split in steps}
    task = ForecastTask(
        frames=frames, windows=wins, input_frames=n_in, steps=steps, scale=scale, augment=augmentation(settings)
    )
    return task, ds


def augmentation(settings: dict[str, Any]):
    """Random C4 elements acting on every training window's pseudoscalar frames (input and target alike) for a
    model entry with ``augment: true``; ``None`` otherwise."""
    if not settings.get("model", {}).get("augment", False):
        return None
    from ..symmetry import C4, FieldLayout
    from ..training.tasks import C4Augmentation

    in_layout, out_layout = layouts(settings["input_frames"])
    return C4Augmentation(C4(), FieldLayout.parse(in_layout), FieldLayout.parse(out_layout))


def spec(settings: dict[str, Any], ds: Any):
    """The model: ``input_frames`` pseudoscalar frames → the next one on the store's square grid, C4."""
    n = int(ds.sizes["x"])
    return common.model_spec(settings["model"], *layouts(settings["input_frames"]), (n, n), "C4")


def mirror_ee(task: Any, run_dir: Path, settings: dict[str, Any]) -> None:
    """Each checkpoint's EE under D4's reflections on the EE samples of the evaluation (test split, seeded), with
    the pseudoscalar action; written to ``mirror_ee.json`` (the run keys, and ``{checkpoint: {ee, ee_rel,
    ee_by_element}}``)."""
    from ..measures.equivariance import equivariance_error
    from ..measures.samples import evaluation_sample
    from ..runs import CHECKPOINTS, checkpoint_file
    from ..symmetry import D4
    from ..training import checkpoint

    d4 = D4()
    mirrors = [g for g in d4.elements if d4.is_reflection(g)]
    index, chosen = evaluation_sample(task, "test", int(settings["evaluation"]["ee_samples"]), seed=0)
    x, _ = task.batch("test", index)
    record: dict[str, Any] = {"group": "D4", "elements": [d4.ELEMENT_NAMES[g] for g in mirrors], "samples": chosen}
    for name in CHECKPOINTS:
        model, ckpt = checkpoint.load_model(run_dir / checkpoint_file(name))
        model.to(task.device)
        record.update({k: ckpt["meta"][k] for k in DESCRIPTION.keys})  # the run keys: the table joins on them
        ee = equivariance_error(model, x, d4, model.in_layout, model.out_layout, elements=mirrors)
        record[name] = {
            "ee": ee["ee"] * task.scale,
            "ee_rel": ee["ee_rel"],
            "ee_by_element": {d4.ELEMENT_NAMES[int(g)]: v * task.scale for g, v in ee["ee_by_element"].items()},
        }
    write_json(run_dir / MIRROR_FILE, record)


TRAINING = common.Training(
    study="exponax", make_task=make_task, spec=spec, splits=("test",), ee_split="test", example=mirror_ee
)


def train_run(
    settings: dict[str, Any],
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    model: str,
    alpha: float,
    flow: str,
    seed: int,
) -> dict[str, Any]:
    """Train one run; ``settings`` is :func:`run_settings` of the study config."""
    if flow != settings["flow"]:
        raise ValueError(f"settings are for flow {settings['flow']!r}, not {flow!r}")
    return common.train_run(TRAINING, settings, store, run_dir, model=model, alpha=alpha, flow=flow, seed=seed)
