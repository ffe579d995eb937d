"""The level study's EE figure shows a 95 % CI over seeds, not ± sd (the statistics standard)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from equidyn.figures.levels import ee_vs_data_ee


def test_ee_vs_data_ee_draws_95_percent_intervals(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    rows = [
        {"model": m, "alpha": a, "checkpoint": c, "level": lvl, "data_ee": d, "seed": s,
         "ee": (1e-7 if m == "e2cnn" else d * 0.5) * (1 + 0.2 * rng.standard_normal()),
         "git_rev": "abc", "config_sha": "cfg", "data_sha": "d"}
        for m, a in (("e2cnn", 0.0), ("rsteer", 0.01), ("rsteer", 1.0))
        for c in ("epoch3", "best")
        for lvl, d in ((0, 0.0), (3, 0.3), (9, 0.9))
        for s in range(5)
    ]  # fmt: skip
    levels = tmp_path / "levels.csv"
    pd.DataFrame(rows).to_csv(levels, index=False)
    data = tmp_path / "data.csv"
    pd.DataFrame({"level": [0, 3, 9], "data_ee": [0.0, 0.3, 0.9]}).to_csv(data, index=False)

    drawn = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, yerr=None, **kw):
        drawn.append((np.asarray(y), np.asarray(yerr)))
        return original(self, x, y, yerr=yerr, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    ee_vs_data_ee(levels, data, tmp_path / "fig.pdf")
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    sub = pd.DataFrame(rows)
    g = sub[(sub.model == "rsteer") & (sub.alpha == 1.0) & (sub.checkpoint == "best") & (sub.level == 9)]["ee"]
    half = 2.776 * g.std(ddof=1) / np.sqrt(5)  # t(0.975, 4 dof)
    assert any(np.isclose(err[1][-1], half, rtol=1e-3) for _, err in drawn)  # upper bar = the CI half width
