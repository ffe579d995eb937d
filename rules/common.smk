# Shared by all rule files. The helpers live in equidyn.workflow (rule files hold rules only).

from equidyn.workflow import MEASURE_SECTIONS, Workflow, settings_json

W = Workflow(config)
R = W.R
ENV = "../workflow/envs/equidyn.yaml"


wildcard_constraints:
    model="[a-z0-9_]+",
    alpha="[0-9.e+-]+",
    level="[0-9]+",
    seed="[0-9]+",
    checkpoint="epoch3|best",
    label="[a-z0-9_]+",
    target="[a-z_]+",
    study="levels|rotation|superres",
    run="[a-z0-9_]+/alpha[0-9.e+-]+(/level[0-9]+)?/seed[0-9]+",
