"""RSteer's relaxed steerable convolution: escnn's C4-steerable basis with coefficients that may vary per tap.

A module of its own because it subclasses escnn's ``EquivariantModule``, so importing it imports escnn (≈ 2 s):
:mod:`equidyn.models.smoke2d` imports it only when an RSteer is built, so a ConvNet job never pays for escnn.

**Only effective coefficients are parameters.** escnn's basis element ``Φ_l`` is exactly zero at some taps (the
centre tap for every element of non-zero angular frequency, the taps off its ring for a ring-supported one), so a
coefficient ``w_l(y)`` at such a tap multiplies zero: it changes no filter, adds a zero eigenvalue to every Hessian
and inflates the parameter count that budgets compare (at hidden width 1 with one vector in and out: 104 of
432 coefficients multiply an exact zero, 56 more a value below 1e-6 of the largest, i.e. rounding). Those inert
coefficients are not parameters here: ``weights`` holds the *active* ``(l, y)`` pairs only (``active`` marks them,
``tap_weights()`` scatters them back onto the tap grid with zeros elsewhere), and the smoothness penalty compares
neighbouring taps only where both are active. Constant coefficients over the active taps are still exactly
escnn's ``R2Conv`` (tested).
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
        active = self._active_taps(template.weights.numel())
        self.register_buffer("active", active)
        self.register_buffer("active_index", torch.nonzero(active.flatten()).flatten())
        # the coefficient each entry of ``weights`` belongs to (row-major over (coefficient, tap), as ``constant``)
        self.register_buffer("active_coefficient", torch.nonzero(active)[:, 0])
        # Start exactly equivariant: the template's coefficients, repeated at every tap where they act.
        self.weights = nn.Parameter(self.constant(template.weights.detach().clone()))
        if template.bias is not None:
            self.bias = nn.Parameter(template.bias.detach().clone())
            self.register_buffer("bias_expansion", template.bias_expansion.detach().clone())
        else:
            self.bias = None

    def _active_taps(self, n_coefficients: int) -> torch.Tensor:
        """``(n_coefficients, taps)`` bool: whether coefficient ``c``'s basis element is non-zero at the tap."""
        exp = self.expansion
        active = torch.zeros(n_coefficients, exp.S, dtype=torch.bool)
        for pair in exp._representations_pairs:
            block = getattr(exp, f"block_expansion_{exp._escape_pair(pair)}")
            basis = block.sampled_basis.detach().abs()  # (b, o, i, S)
            scale = float(basis.max()) if basis.numel() else 0.0
            nonzero = basis.amax(dim=(1, 2)) > 1e-6 * scale  # (b, S); escnn's zeros are exact, this is slack
            lo, hi = exp._weights_ranges[pair]
            active[lo:hi] = nonzero.repeat((hi - lo) // block.dimension(), 1)
        return active

    @property
    def n_coefficients(self) -> int:
        return self.active.shape[0]

    def constant(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``weights`` for coefficients constant over taps (an exact steerable conv): ``(n,) → (n_active,)``."""
        return coefficients[:, None].expand(-1, self.active.shape[1])[self.active]

    def tied_projection(self, values: torch.Tensor) -> torch.Tensor:
        """The orthogonal projection of a ``weights``-shaped vector onto the tied (equivariant) subspace: each
        coefficient's entries replaced by their mean over the taps where it acts."""
        n = self.active.shape[0]
        counts = torch.bincount(self.active_coefficient, minlength=n).clamp_min(1).to(values.dtype)
        means = values.new_zeros(n).index_add(0, self.active_coefficient, values) / counts
        return means[self.active_coefficient]

    def full_weights(self) -> torch.Tensor:
        """Coefficients on every (coefficient, tap), ``(n_coefficients, taps)``, zero where the basis is zero."""
        flat = self.weights.new_zeros(self.active.numel()).index_put((self.active_index,), self.weights)
        return flat.view(self.active.shape)

    def expand_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Filter ``(out, in, k, k)`` with tap-dependent coefficients, and the expanded bias."""
        exp = self.expansion
        weights = self.full_weights()
        filt = None
        for pair in exp._representations_pairs:
            key = exp._escape_pair(pair)
            block = getattr(exp, f"block_expansion_{key}")
            lo, hi = exp._weights_ranges[pair]
            coeff = weights[lo:hi].view(-1, block.dimension(), exp.S)
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
        """Coefficients as ``(n_coefficients, k, k)`` (zero at inert taps), the grid the regulariser differentiates."""
        return self.full_weights().view(-1, self.kernel_size, self.kernel_size)

    def set_tap_weights(self, grid: torch.Tensor) -> None:
        """Set ``weights`` from a ``(n_coefficients, k, k)`` grid; entries at inert taps are ignored."""
        with torch.no_grad():
            self.weights.copy_(grid.reshape(self.active.shape)[self.active])

    def smoothness_penalty(self) -> torch.Tensor:
        """‖∂w/∂m‖₁ + ‖∂w/∂n‖₁: first differences of the coefficients across neighbouring taps where both act."""
        w = self.tap_weights()
        m = self.active.view_as(w)
        rows = ((w[:, 1:, :] - w[:, :-1, :]).abs() * (m[:, 1:, :] & m[:, :-1, :])).sum()
        cols = ((w[:, :, 1:] - w[:, :, :-1]).abs() * (m[:, :, 1:] & m[:, :, :-1])).sum()
        return rows + cols

    def evaluate_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.out_type.size, *input_shape[2:])

    def forward(self, x):  # GeometricTensor -> GeometricTensor
        from escnn.nn import GeometricTensor

        filt, bias = self.expand_parameters()
        y = torch.nn.functional.conv2d(x.tensor, filt, bias=bias, padding=self.kernel_size // 2)
        return GeometricTensor(y, self.out_type)
