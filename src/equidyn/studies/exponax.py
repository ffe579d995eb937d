"""exponax's periodic 2-D turbulence (issue 24), the data part: one store per flow, its symmetry check, the table.

The config section ``exponax`` names its flows (``decaying``, ``kolmogorov``), each with ``physics``, ``initial``
and ``sampling`` (:mod:`equidyn.data.exponax_flows`); the flow is the key, so a section cannot call Kolmogorov flow
"decaying". The training study on these stores, which the study catalog lists as ``exponax``, is
:mod:`equidyn.studies.exponax_study`; the data alone are the target ``exponax_data_all``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..atomic import write_csv, write_json
from ..lineage import LINEAGE_COLUMNS

log = logging.getLogger(__name__)

#: the table's name (``results/<name>/tables/exponax_data_equivariance.csv``)
TABLE = "exponax_data_equivariance"


def flow_settings(settings: dict[str, Any], flow: str) -> tuple[Any, Any, Any]:
    """``(FlowPhysics, InitialVorticity, Sampling)`` of one flow's section, the flow taken from its key."""
    from ..data.exponax_flows import settings_of

    physics = settings.get("physics", {})
    if physics.get("flow", flow) != flow:
        raise ValueError(f"exponax.flows.{flow}.physics.flow is {physics['flow']!r}: the key names the flow")
    return settings_of({**settings, "physics": {**physics, "flow": flow}})


def generate(settings: dict[str, Any], flow: str, out: str | os.PathLike) -> dict[str, Any]:
    """Simulate one flow's trajectories into the store ``out`` (``exponax.flows.<flow>`` as ``settings``)."""
    from ..data.exponax_flows import generate

    return generate(*flow_settings(settings, flow), out)


def symmetry(store: str | os.PathLike, out: str | os.PathLike, trajectories: list[int] | None = None) -> dict:
    """The store's symmetry check (simulate-then-act against act-then-simulate, per D4 element) as JSON."""
    from ..data.exponax_flows import store_symmetry_check

    record = store_symmetry_check(store, trajectories)
    write_json(out, record)
    log.info("%s: data EE (D4, rel) %.3g; kept %s", record["flow"], record["data_ee_d4_rel"], record["kept"])
    return record


#: the table's per-flow columns, before the per-element ones and the lineage
TABLE_COLUMNS = (
    "flow",
    "group",
    "n_trajectories",
    "n_frames",
    "frame_dt",
    "data_ee_c4",
    "data_ee_c4_rel",
    "data_ee_d4",
    "data_ee_d4_rel",
    "data_ee_c4_rel_first_frame",
    "data_ee_d4_rel_first_frame",
    "kept",
    "broken",
)


def data_table(symmetry_files: list[str], out: str | os.PathLike, settings: dict[str, Any]):
    """``exponax_data_equivariance.csv``: one row per flow, its data EE and each element's relative difference
    (``rel_l1_<element>``); ``settings`` (the ``exponax`` section) give its ``config_sha``."""
    import pandas as pd

    from ..lineage import config_sha, git_rev
    from .common import read_json

    rows, elements = [], []
    for path in symmetry_files:
        record = read_json(path)
        row = {key: record[key] for key in TABLE_COLUMNS if key in record}
        row["n_trajectories"] = len(record["trajectories"])
        row["kept"] = " ".join(record["kept"]) or "none"
        row["broken"] = " ".join(record["broken"]) or "none"
        # in the group's element order (the JSON's keys are sorted by name)
        for name, element in sorted(record["by_element"].items(), key=lambda item: item[1]["element"]):
            row[f"rel_l1_{name}"] = element["rel_l1"]
            elements += [f"rel_l1_{name}"] if f"rel_l1_{name}" not in elements else []
        row["data_sha"] = record["data_sha"]
        rows.append(row)
    df = pd.DataFrame(rows).sort_values("flow")
    df["config_sha"] = config_sha(settings)
    df["git_rev"] = git_rev()
    df = df[[*TABLE_COLUMNS, *elements, *LINEAGE_COLUMNS]]
    write_csv(df, out)
    return df
