# Helpers shared by all rule files: result paths, settings passed to jobs, per-class resources.

import json

from equidyn.lineage import config_sha
from equidyn.studies.levels import run_settings as levels_run_settings
from equidyn.studies.rotation import run_settings as rotation_run_settings
from equidyn.studies.superres import run_settings as superres_run_settings
from equidyn.studies.tutorial import run_settings as tutorial_run_settings

EQUIDYN = "python -m equidyn.cli"
ENV = "../workflow/envs/equidyn.yaml"
NAME = config["name"]


def R(path):
    """Path of a result of this study: results/<name>/<path>."""
    return f"results/{NAME}/{path}"


def settings_json(section):
    """A config section as compact JSON: what a job receives, and what its params rerun-trigger compares."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))


def alpha_str(alpha):
    """Path-safe, round-trippable alpha (0, 1e-06, 0.0001, 0.01, 1): the same as equidyn.studies.common."""
    text = f"{float(alpha):g}"
    return text if float(text) == float(alpha) else repr(float(alpha))


def res(kind, key, default=None):
    return config["resources"][kind].get(key, default)


wildcard_constraints:
    model="[a-z0-9_]+",
    alpha="[0-9.e+-]+",
    level="[0-9]+",
    seed="[0-9]+",
    checkpoint="epoch3|best",
    label="[a-z0-9_]+",
    target="[a-z_]+",
