"""Published numbers equidyn compares against, each in one place, by equidyn model name (docs/references.md).

Tables put them next to equidyn's own results; the 3-D models are sized to the BLOG's parameter counts. Plain data:
no imports, so any layer may read it.
"""

from __future__ import annotations

#: [W22] Table 1, rotation rows: RMSE on (test-future, test-domain).
W22_RMSE: dict[str, tuple[float, float]] = {
    "mlp": (1.38, 1.34),
    "convnet": (1.21, 1.10),
    "e2cnn": (1.05, 0.76),
    "rpp": (0.96, 0.83),
    "combo": (1.07, 0.82),
    "clcnn": (0.96, 0.84),
    "lift": (0.82, 0.68),
    "rgroup": (0.82, 0.73),
    "rsteer": (0.80, 0.67),
}

# The super-resolution papers quote test MAE ×1e-1; stored here in plain units, as (mean, sd) over seeds.
#: [W24] Exp. 5.5 test MAE.
W24_MAE: dict[str, tuple[float, float]] = {"cnn3d": (0.122, 0.004), "gcnn3d": (0.112, 0.002), "rgcnn3d": (0.100, 0.001)}
#: [BLOG] reproduction of [W24], test MAE.
BLOG_MAE: dict[str, tuple[float, float]] = {
    "cnn3d": (0.0992, 0.003),
    "gcnn3d": (0.0928, 0.004),
    "rgcnn3d": (0.0915, 0.004),
}
#: [BLOG] parameter counts of the three 3-D models.
BLOG_PARAMS: dict[str, int] = {"cnn3d": 132_795, "gcnn3d": 123_801, "rgcnn3d": 130_175}
