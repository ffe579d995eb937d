"""The rotation tutorial as geoscientists run it: a closure learnt on biased data, tested on rotated and mirrored data.

Models learn the sub-filter fluxes of coarse-grained turbulence (:mod:`equidyn.data.tutorial_data`) from coarse
winds whose mean always blows along +x, then are tested on the held-out samples transformed by every element of
D4 — the four rotations and the four mirrors — against the correspondingly transformed truth ([TUT]).
One network predicts every configured output at once (``outputs``, e.g. ``[uv, vector_flux]``: the coding
activity's vector + sign output), and the table reports each output's RMSE and R².

The model rows compare the ways of imposing the symmetry: none (``convnet``), data augmentation with random C4
rotations (``augment: true``), a soft constraint (``convnet_penalty`` with ``penalty`` = the weight of the
equivariance mismatch in the loss) and the hard constraint (escnn ``e2cnn`` for C4, ``d4cnn`` for D4).

**Flows.** ``f0`` is the turbulence without rotation; with ``coriolis.f > 0`` a second flow ``f<f>`` is simulated
on an f-plane, and the models named in ``coriolis.models`` are trained on it too. Coriolis keeps the rotations
about the vertical and breaks the mirrors, so a D4 model imposes a false symmetry there: the tutorial's question
"does Coriolis break this symmetry?" as an experiment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_csv, write_json
from ..lineage import LINEAGE_COLUMNS, lineage_record
from ..runs import BEST_CHECKPOINT, checkpoint_file
from . import common
from .description import Run, StudyDescription

DESCRIPTION = StudyDescription(
    name="tutorial",
    run_pattern="{flow}/{label}/seed{seed}",
    store="data/tutorial/{flow}/prepared.zarr",
    model_key="label",
    evaluations=("rotated",),
    examples=("rotated_example.npz",),
    tables=("tutorial", "tutorial_ceiling"),
)

RUN_KEYS = ("data", "outputs", "training")


# -- flows and runs ---------------------------------------------------------------------------------------------
def flow_name(f: float) -> str:
    """``f0`` for no rotation, ``f2`` / ``f0.5`` for an f-plane with that Coriolis parameter."""
    return f"f{float(f):g}"


def flows(section: dict[str, Any]) -> dict[str, float]:
    """Flow name → Coriolis parameter: always ``f0``; the rotating flow when ``coriolis.f > 0``."""
    out = {"f0": 0.0}
    f = float(section.get("coriolis", {}).get("f", 0.0))
    if f > 0:
        out[flow_name(f)] = f
    return out


def runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every model on ``f0``; ``coriolis.models`` also on the rotating flow (``coriolis.seeds``, default all)."""
    rotating = [name for name in flows(section) if name != "f0"]
    labels = [m["label"] for m in section["models"]]
    on_rotating = section.get("coriolis", {}).get("models", [])
    unknown = sorted(set(on_rotating) - set(labels))
    if unknown:
        raise ValueError(f"tutorial.coriolis.models names {unknown}, not among the models {labels}")
    seeds = section.get("coriolis", {}).get("seeds", section["seeds"])
    grid = [{"flow": "f0", "label": label, "seed": s} for label in labels for s in section["seeds"]]
    grid += [{"flow": fl, "label": label, "seed": s} for fl in rotating for label in on_rotating for s in seeds]
    return grid


def run_settings(section: dict[str, Any], run: Run) -> dict[str, Any]:
    """What determines one run: data, outputs and training settings, the model entry and the flow."""
    entry = common.model_entry(section["models"], run["label"])
    f = flows(section).get(run["flow"])
    if f is None:
        raise ValueError(f"unknown tutorial flow {run['flow']!r}; configured: {sorted(flows(section))}")
    return {**{k: section[k] for k in RUN_KEYS}, "model": entry, "flow": run["flow"], "coriolis": f}


# -- data -------------------------------------------------------------------------------------------------------
def turbulence(settings: dict[str, Any], out: str | os.PathLike, threads: int | None = None) -> str:
    """The tutorial's own offline turbulence of one flow (``settings``: ``turbulence`` and ``coriolis``)."""
    from ..data.turbulence import OfflineTurbulenceSettings, generate_offline

    s = OfflineTurbulenceSettings.from_dict({**settings["turbulence"], "coriolis": float(settings["coriolis"])})
    return generate_offline(s, out, threads=threads)


def builtin(settings: dict[str, Any], turbulence: str | os.PathLike, out: str | os.PathLike) -> None:
    from ..data.tutorial_data import TutorialData, builtin_from_turbulence

    builtin_from_turbulence(turbulence, TutorialData.from_dict(settings["data"]).mean_wind, out)


def prepare(settings: dict[str, Any], source: str | os.PathLike, out: str | os.PathLike) -> str:
    from ..data.tutorial_data import TutorialData, prepare

    return prepare(TutorialData.from_dict(settings["data"]), source, list(settings["outputs"]), out)


# -- training ---------------------------------------------------------------------------------------------------
def output_layout(outputs: list[str]) -> str:
    """One network, every output: ``[uv, vector_flux]`` → ``1 sign + 1 vector``."""
    from ..data.tutorial_data import TARGETS

    unknown = sorted(set(outputs) - set(TARGETS))
    if unknown:
        raise ValueError(f"unknown tutorial output(s) {unknown}; available: {sorted(TARGETS)}")
    return " + ".join(TARGETS[o] for o in outputs)


def output_slices(outputs: list[str]) -> dict[str, slice]:
    from ..data.tutorial_data import TARGETS
    from ..symmetry import C4, FieldLayout

    slices, start = {}, 0
    for o in outputs:
        width = C4().channels(FieldLayout.parse(TARGETS[o]))
        slices[o] = slice(start, start + width)
        start += width
    return slices


def _task(settings: dict[str, Any], store: str | os.PathLike):
    """The normalised task (inputs by the wind/scalar scales, each output by its own rms) and its layouts."""
    import torch

    from ..store import open_store
    from ..symmetry import FieldLayout, group_by_name
    from ..training.tasks import C4Augmentation, PairTask

    ds = open_store(store)
    outputs = list(settings["outputs"])
    missing = [o for o in outputs if f"target_{o}" not in ds]
    if missing:
        raise ValueError(f"the prepared tutorial store {store} has no output(s) {missing}")
    in_layout = FieldLayout.parse(ds.attrs["input_layout"])
    n_wind = 2 * dict(in_layout.blocks)["vector"]
    x = torch.from_numpy(ds.inputs.values).clone()
    x[:, :n_wind] /= float(ds.attrs["wind_scale"])
    x[:, n_wind:] /= float(ds.attrs["scalar_scale"])
    y = torch.cat(
        [torch.from_numpy(ds[f"target_{o}"].values) / float(ds.attrs[f"target_{o}_scale"]) for o in outputs], 1
    )
    split = ds.split.values
    out_layout = FieldLayout.parse(output_layout(outputs))
    entry = settings["model"]
    augment = None
    if entry.get("augment", False):
        augment = C4Augmentation(group_by_name(str(entry.get("augment_group", "C4"))), in_layout, out_layout)
    # scale 1: validation RMSE (early stopping) on the normalised outputs, every output weighing the same
    task = PairTask(
        {s: x[split == s] for s in ("train", "valid", "test")},
        {s: y[split == s] for s in ("train", "valid", "test")},
        1.0,
        augment=augment,
    )
    return task, ds, in_layout, out_layout


def make_task(settings: dict[str, Any], store: str | os.PathLike):
    """``(task, prepared store)`` of one run (the study interface; see :mod:`equidyn.studies.description`)."""
    task, ds, _, _ = _task(settings, store)
    return task, ds


def model_spec(settings: dict[str, Any], in_layout, out_layout, n: int):
    entry = settings["model"]
    drop = ("label", "augment", "augment_group", "model", "penalty", "group")
    model_entry = {k: v for k, v in entry.items() if k not in drop} | {"name": entry["model"]}
    if "penalty" in entry:
        model_entry["options"] = {**model_entry.get("options", {}), "penalty_group": entry.get("augment_group", "C4")}
    return common.model_spec(model_entry, str(in_layout), str(out_layout), (n, n), str(entry.get("group", "C4")))


def train_run(
    settings: dict[str, Any],
    store: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    flow: str,
    label: str,
    seed: int,
) -> dict[str, Any]:
    entry = settings["model"]
    if entry["label"] != label or settings["flow"] != flow:
        raise ValueError(f"settings are for {entry['label']!r} on {settings['flow']!r}, not {label!r} on {flow!r}")
    task, ds, in_layout, out_layout = _task(settings, store)
    spec = model_spec(settings, in_layout, out_layout, int(ds.sizes["x"]))
    alpha = float(entry.get("penalty", 0.0))
    keys = {"study": "tutorial", "model": label, "flow": flow, "seed": seed, "alpha": alpha}
    summary = common.train_model(settings, task, spec, run_dir, common.data_sha(ds), keys)
    evaluate_transformed(task, ds, list(settings["outputs"]), Path(run_dir), in_layout, out_layout)
    return summary


def evaluate_transformed(task, ds, outputs: list[str], run_dir: Path, in_layout, out_layout) -> dict[str, Any]:
    """Per output, test RMSE (physical units) and R² of the best checkpoint on the test split transformed by each
    D4 element (rotations 0..3, mirrors 4..7), and the maps of the first test sample for the figure."""
    import numpy as np
    import torch

    from ..data.tutorial_data import r2_score
    from ..symmetry import D4
    from ..training import checkpoint

    group = D4()
    model, ckpt = checkpoint.load_model(run_dir / checkpoint_file(BEST_CHECKPOINT))
    model.eval()
    x, y = task.inputs["test"].cpu(), task.targets["test"].cpu()
    slices = output_slices(outputs)
    scales = {o: float(ds.attrs[f"target_{o}_scale"]) for o in outputs}
    rows, maps_truth, maps_pred = [], [], []
    with torch.no_grad():
        for g in group.elements:
            xg, yg = group.act(g, x, in_layout), group.act(g, y, out_layout)
            pred = torch.cat([model(xg[i : i + 256]) for i in range(0, len(xg), 256)])
            for o, sl in slices.items():
                p, t = pred[:, sl].double().numpy(), yg[:, sl].double().numpy()
                rows.append(
                    {
                        "output": o,
                        "element": g,
                        "transform": "reflection" if group.is_reflection(g) else "rotation",
                        "rotation": 90 * (g % 4),
                        "rmse": float(np.sqrt(((p - t) ** 2).mean())) * scales[o],
                        "r2": r2_score(p, t),
                    }
                )
            unscale = torch.cat([torch.full((sl.stop - sl.start,), scales[o]) for o, sl in slices.items()])
            maps_truth.append((yg[0] * unscale[:, None, None]).numpy())
            maps_pred.append((pred[0] * unscale[:, None, None]).numpy())
    result = {
        **ckpt["meta"],
        "checkpoint_epoch": ckpt["epoch"],
        "outputs": outputs,
        "gradient_model_r2": ds.attrs.get("gradient_model_r2"),
        "gradient_model_r2_fitted": ds.attrs.get("gradient_model_r2_fitted"),
        "transforms": rows,
    }
    write_json(run_dir / "eval_rotated.json", result)
    with atomic_path(run_dir / "rotated_example.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            element=np.array(list(group.elements)),
            truth=np.stack(maps_truth),
            prediction=np.stack(maps_pred),
            outputs=np.array(outputs),
            first_channel=np.array([slices[o].start for o in outputs]),
        )
    return result


# -- tables -----------------------------------------------------------------------------------------------------
#: ``tutorial.csv`` columns, in order (stable: the claims table of equidyn.stats reads model/rotation/seed/rmse/r2)
TABLE_COLUMNS = ("flow", "model", "output", "transform", "rotation", "element", "seed", "rmse", "r2")


def table(eval_files: list[str], stores: list[str], out: str | os.PathLike, ceiling_out: str | os.PathLike):
    """``tutorial.csv``: one row per (flow, model, output, D4 element, seed); and the ceiling table."""
    ceiling(stores, ceiling_out)
    import pandas as pd

    rows = []
    for path in eval_files:
        r = common.read_json(path)
        for t in r["transforms"]:
            rows.append(
                {
                    "flow": r["flow"],
                    "model": r["model"],
                    **{k: t[k] for k in ("output", "transform", "rotation", "element")},
                    "seed": r["seed"],
                    "rmse": t["rmse"],
                    "r2": t["r2"],
                    **{k: r[k] for k in LINEAGE_COLUMNS},
                }
            )
    df = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *LINEAGE_COLUMNS])
    df = df.sort_values(["flow", "output", "model", "seed", "element"]).reset_index(drop=True)
    write_csv(df, out)
    return df


def ceiling(stores: list[str], out: str | os.PathLike):
    """``tutorial_ceiling.csv``: per flow, the a-priori R² of the gradient model on ⟨u′v′⟩ (test split)."""
    import pandas as pd

    from ..store import open_store

    rows = []
    for path in stores:
        ds = open_store(path)
        rows.append(
            {
                "flow": Path(path).parent.name,
                "coriolis": ds.attrs.get("coriolis", 0.0),
                "coarsening_factor": ds.attrs.get("coarsening_factor"),
                "gradient_model_r2": ds.attrs.get("gradient_model_r2", float("nan")),
                "gradient_model_r2_fitted": ds.attrs.get("gradient_model_r2_fitted", float("nan")),
                "gradient_model_coefficient": ds.attrs.get("gradient_model_coefficient", float("nan")),
                # lineage: the data settings the store was prepared with
                **lineage_record(json.loads(ds.attrs.get("settings", "{}")), ds.attrs["content_sha256"]),
            }
        )
    df = pd.DataFrame(rows)
    write_csv(df, out)
    return df
