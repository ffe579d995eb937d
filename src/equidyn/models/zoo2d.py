"""The rest of the 2-D model zoo (W22 Table 1): importing this module registers every model below by name.

* ``rgroup`` — relaxed C4 group convolution (:mod:`equidyn.models.rgroup`);
* ``mlp``, ``rpp``, ``combo``, ``clcnn``, ``lift`` — the W22 baselines (:mod:`equidyn.models.baselines2d`).

``convnet``, ``e2cnn`` and ``rsteer`` live in :mod:`equidyn.models.smoke2d`. docs/models2d.md describes all of
them, why their equivariant parts are exact, and their defaults.
"""

from __future__ import annotations

from .baselines2d import CLCNN, MLP, Combo, Lift, LocallyConnected2d, Rpp
from .rgroup import RegularBatchNorm2d, RegularLift, RegularProjection, RelaxedGroupConv2d, RGroup

__all__ = [
    "CLCNN",
    "MLP",
    "Combo",
    "Lift",
    "LocallyConnected2d",
    "RGroup",
    "RegularBatchNorm2d",
    "RegularLift",
    "RegularProjection",
    "RelaxedGroupConv2d",
    "Rpp",
]
