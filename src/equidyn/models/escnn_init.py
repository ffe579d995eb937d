"""escnn's ``R2Conv`` with its He initialisation computed once per layer shape and process.

escnn's ``generalized_he_init`` spends almost all of a steerable network's build time (≈ 2 s per 90-field
regular→regular layer, 13 s for the paper's E2CNN) computing per-coefficient variances that depend only on the
layer's basis, not on the random draw. A job builds the same layers many times — three small builds to size the
model to its budget, the model it trains, and one rebuild per checkpoint it evaluates — and the hidden layers of
one network share their basis. escnn offers to cache the variances (``cache=True``, keyed by the basis' structure);
we take it, so each distinct layer's variances are computed once per process. The random draw is the same call at
the same point of construction as escnn's default, so a seed gives bit-identical weights (tested).
"""

from __future__ import annotations

from typing import Any


def he_initialised_r2conv(in_type: Any, out_type: Any, kernel_size: int, bias: bool = True) -> Any:
    """``enn.R2Conv(in_type, out_type, kernel_size, padding=kernel_size // 2)``, its He variances cached."""
    from escnn import nn as enn
    from escnn.nn.init import generalized_he_init

    conv = enn.R2Conv(in_type, out_type, kernel_size, padding=kernel_size // 2, bias=bias, initialize=False)
    generalized_he_init(conv.weights.data, conv.basisexpansion, cache=True)
    return conv
