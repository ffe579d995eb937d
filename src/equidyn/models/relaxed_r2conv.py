"""RSteer's relaxed steerable convolution: escnn's C4-steerable basis with coefficients that may vary per tap.

A module of its own because it subclasses escnn's ``EquivariantModule``, so importing it imports escnn (≈ 2 s):
:mod:`equidyn.models.smoke2d` imports it only when an RSteer is built, so a ConvNet job never pays for escnn.
"""

from __future__ import annotations

import torch
from escnn.nn import EquivariantModule
from torch import nn

from .escnn_init import he_initialised_r2conv


class RelaxedR2Conv(EquivariantModule):  # type: ignore[misc]
    """A steerable convolution whose basis coefficients may differ at each kernel tap (relaxed steerable conv).

    The kernel at tap ``y`` is ``Σ_l w_l(y) Φ_l(y)`` with ``{Φ_l}`` escnn's C4-steerable basis. Constant ``w`` over
    taps gives escnn's ``R2Conv`` exactly. The bias is escnn's equivariant bias (only on trivial sub-representations),
    so it never breaks the symmetry. Filters are expanded on every call and never cached, so perturbing
    ``weights`` in place (sharpness) or substituting them functionally (Hessians) always takes effect.
    """

    def __init__(self, in_type, out_type, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        template = he_initialised_r2conv(in_type, out_type, kernel_size, bias=bias)
        self.in_type, self.out_type = in_type, out_type
        self.kernel_size = kernel_size
        self.expansion = template.basisexpansion  # buffers only: the sampled basis and index maps
        taps = kernel_size * kernel_size
        # Start exactly equivariant: the template's coefficients, repeated at every tap.
        self.weights = nn.Parameter(template.weights.detach().clone()[:, None].repeat(1, taps))
        if template.bias is not None:
            self.bias = nn.Parameter(template.bias.detach().clone())
            self.register_buffer("bias_expansion", template.bias_expansion.detach().clone())
        else:
            self.bias = None

    def expand_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Filter ``(out, in, k, k)`` with tap-dependent coefficients, and the expanded bias."""
        exp = self.expansion
        filt = None
        for pair in exp._representations_pairs:
            key = exp._escape_pair(pair)
            block = getattr(exp, f"block_expansion_{key}")
            lo, hi = exp._weights_ranges[pair]
            coeff = self.weights[lo:hi].view(-1, block.dimension(), exp.S)
            # (b, o, i, S) basis sampled at the taps; coefficients (k, b, S) chosen per tap
            expanded = torch.einsum("boip,kbp->koip", block.sampled_basis, coeff)
            n_out, n_in = exp._out_count[pair[1]], exp._in_count[pair[0]]
            o, i = expanded.shape[1], expanded.shape[2]
            expanded = expanded.view(n_out, n_in, o, i, exp.S).transpose(1, 2)
            in_idx = getattr(exp, f"in_indices_{key}")
            out_idx = getattr(exp, f"out_indices_{key}")
            if filt is None:
                filt = expanded.new_zeros(exp._output_size, exp._input_size, exp.S)
            if exp._contiguous[pair]:
                filt[out_idx[0] : out_idx[1], in_idx[0] : in_idx[1]] = expanded.reshape(out_idx[2], in_idx[2], exp.S)
            else:
                filt[out_idx, in_idx] = expanded.reshape(-1, exp.S)
        assert filt is not None
        filt = filt.view(filt.shape[0], filt.shape[1], self.kernel_size, self.kernel_size)
        bias = None if self.bias is None else self.bias_expansion @ self.bias
        return filt, bias

    def tap_weights(self) -> torch.Tensor:
        """Coefficients as ``(n_coefficients, k, k)``, the grid over which the regulariser differentiates."""
        return self.weights.view(-1, self.kernel_size, self.kernel_size)

    def smoothness_penalty(self) -> torch.Tensor:
        """‖∂w/∂m‖₁ + ‖∂w/∂n‖₁: first differences of the coefficients across neighbouring taps."""
        w = self.tap_weights()
        return (w[:, 1:, :] - w[:, :-1, :]).abs().sum() + (w[:, :, 1:] - w[:, :, :-1]).abs().sum()

    def evaluate_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.out_type.size, *input_shape[2:])

    def forward(self, x):  # GeometricTensor -> GeometricTensor
        from escnn.nn import GeometricTensor

        filt, bias = self.expand_parameters()
        y = torch.nn.functional.conv2d(x.tensor, filt, bias=bias, padding=self.kernel_size // 2)
        return GeometricTensor(y, self.out_type)
