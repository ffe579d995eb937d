# Shared by all rule files. The helpers live in equidyn.workflow (rule files hold rules only); every path and
# checkpoint name comes from the study descriptions (equidyn.studies.description) through it.

from equidyn.runs import CHECKPOINTS
from equidyn.workflow import MEASURE_SECTIONS, Workflow, settings_json

W = Workflow(config)
R = W.R
ENV = "../workflow/envs/equidyn.yaml"


wildcard_constraints:
    model="[a-z0-9_]+",
    alpha="[0-9.e+-]+",
    level="[0-9]+",
    seed="[0-9]+",
    size="[0-9]+",
    fraction="[0-9.e+-]+",
    checkpoint="|".join(CHECKPOINTS),
    label="[a-z0-9_]+",
    target="[a-z_]+",
    study="|".join(W.measured_studies()),
