"""Lie derivative of a field-to-field map along the generators of continuous rotations (Gruver et al., 2023).

For a one-parameter rotation group ``g_t = exp(tJ)`` acting physically on fields, ``(g·f)(p) = ρ(g) f(g⁻¹p)``,
the Lie derivative of a map ``F`` at input ``x`` is

    L F(x) = d/dt [g_t⁻¹ · F(g_t · x)]_{t=0} = DF(x)[A_in x] − A_out F(x),

where ``A = d/dt g_t·`` is the infinitesimal action. It rotates positions *and* components:

* scalar field  ``s``:  ``A s = −(J p)·∇s``;
* vector field ``v``:  ``A v = J v − (J p)·∇v``  (the published code rotated components as scalars, [BLOG]).

``L F(x) = 0`` for every ``x`` iff ``F`` is equivariant to the continuous rotations; its size, relative to
``‖F(x)‖``, measures how far a trained network is from that, also for networks built for C4 only.

How it is computed, and why (docs/measures.md):

* ``DF(x)[u]`` is an exact directional derivative: forward mode (``torch.func.jvp``) where every op supports it,
  otherwise the double-vjp trick (``u ↦ ∂/∂w ⟨∂F/∂x ᵀ w, u⟩``), which needs only reverse mode and so works
  through ``grid_sample``. No step size, no resampling of the input.
* ``∇`` is a finite difference of order 2 (central inside, one-sided second order at the borders; the 3-D
  default) or 4 (the 2-D default). The published first-order scheme left an error as large as a one-pixel shift.
  Differentiating the sampled field, rather than resampling a rotated copy, adds no interpolation error. When
  the output grid is finer than the input grid the two derivatives' errors no longer cancel, and order 4 lowers
  that floor 10-20x (docs/measures.md has the numbers).
* Positions ``p`` are index coordinates centred on the grid centre, in the axis order of the symmetry spine
  (x = last grid axis, then y, then z). ``(J p)·∇`` is invariant under a uniform rescaling of ``p``, so an input
  on 16³ and an output on 64³ sharing the same physical centre need no common unit.
* In 3-D the three generators of SO(3) (rotations about x, y and z) are measured separately; the headline is
  their mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..models.base import functional_eval
from ..symmetry import FieldLayout

#: finite-difference order of the spatial gradient by dimension, when the caller does not choose
DEFAULT_ORDER = {2: 4, 3: 2}

__all__ = ["directional_derivative", "generator_action", "lie_derivative", "rotation_generators"]


def rotation_generators(ndim: int) -> dict[str, Tensor]:
    """The so(ndim) generators ``J`` on physical components ``(x, y[, z])``, keyed by the rotation axis.

    ``exp(θ J_z)`` turns x towards y (counter-clockwise in the spine's frame, matching C4's element 1 at
    θ = π/2); ``J_x`` turns y towards z and ``J_y`` turns z towards x.
    """
    if ndim == 2:
        return {"z": torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)}
    if ndim == 3:
        gens = {}
        for axis, (a, b) in {"x": (1, 2), "y": (2, 0), "z": (0, 1)}.items():
            j = torch.zeros(3, 3, dtype=torch.float64)
            j[b, a], j[a, b] = 1.0, -1.0
            gens[axis] = j
        return gens
    raise ValueError(f"Lie derivative supports ndim 2 or 3, got {ndim}")


def _centred_coordinates(grid: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> list[Tensor]:
    """``[p_x, p_y(, p_z)]`` broadcastable over ``grid``: index minus the grid centre ``(N−1)/2``."""
    nd = len(grid)
    coords = []
    for k in range(nd):  # physical axis k lives on tensor grid axis nd-1-k
        axis = nd - 1 - k
        n = grid[axis]
        shape = [1] * nd
        shape[axis] = n
        coords.append((torch.arange(n, dtype=dtype, device=device) - (n - 1) / 2).view(shape))
    return coords


def _diff4(x: Tensor, dim: int) -> Tensor:
    """Fourth-order first derivative along ``dim``: 5-point central stencil, one-sided 5-point at the borders."""
    n = x.shape[dim]

    def at(i: int, length: int = 1) -> Tensor:
        return x.narrow(dim, i % n if i < 0 else i, length)

    inner = (at(0, n - 4) - 8 * at(1, n - 4) + 8 * at(3, n - 4) - at(4, n - 4)) / 12
    first = (-25 * at(0) + 48 * at(1) - 36 * at(2) + 16 * at(3) - 3 * at(4)) / 12
    second = (-3 * at(0) - 10 * at(1) + 18 * at(2) - 6 * at(3) + at(4)) / 12
    penult = (3 * at(-1) + 10 * at(-2) - 18 * at(-3) + 6 * at(-4) - at(-5)) / 12
    last = (25 * at(-1) - 48 * at(-2) + 36 * at(-3) - 16 * at(-4) + 3 * at(-5)) / 12
    return torch.cat([first, second, inner, penult, last], dim=dim)


def _spatial_gradient(x: Tensor, ndim: int, order: int = 2) -> list[Tensor]:
    """``[∂_x x, ∂_y x(, ∂_z x)]`` with unit index spacing, accurate to ``order`` (2 or 4) everywhere."""
    if order not in (2, 4):
        raise ValueError(f"finite-difference order must be 2 or 4, got {order}")
    need = order + 1
    for axis, n in enumerate(x.shape[-ndim:]):
        if n < need:
            raise ValueError(f"grid axis {axis} has {n} points; an order-{order} derivative needs >= {need}")
    dims = [x.dim() - 1 - k for k in range(ndim)]
    if order == 2:
        return [torch.gradient(x, dim=d, edge_order=2)[0] for d in dims]
    return [_diff4(x, d) for d in dims]


def generator_action(x: Tensor, layout: FieldLayout, generator: Tensor, order: int = 2) -> Tensor:
    """``A x`` for a tensor ``(batch, channels, *grid)`` laid out as ``layout`` (scalar, pseudoscalar and vector
    blocks).

    ``A`` is the derivative at ``t = 0`` of the physical action of ``exp(tJ)``: components rotate by ``J`` and the
    field is advected by ``−(J p)·∇``. A pseudoscalar differs from a scalar only under reflections, which no
    ``exp(tJ)`` is, so it is advected like a scalar. "regular" and "sign" fields carry only a finite group's
    action, so they have no generator and raise.
    """
    ndim = generator.shape[0]
    if x.dim() != 2 + ndim:
        raise ValueError(f"expected a (batch, channels, *grid) tensor with {ndim} grid axes, got {tuple(x.shape)}")
    expected = 0
    for kind, n in layout.blocks:
        if kind not in ("scalar", "pseudoscalar", "vector"):
            raise ValueError(
                f"field kind {kind!r} in layout '{layout}' has no continuous rotation action; "
                "the Lie derivative is defined for 'scalar', 'pseudoscalar' and 'vector' fields only"
            )
        expected += n * (ndim if kind == "vector" else 1)
    if x.shape[1] != expected:
        raise ValueError(f"tensor has {x.shape[1]} channels but layout '{layout}' needs {expected} in {ndim}-D")

    jmat = generator.to(dtype=x.dtype, device=x.device)
    p = _centred_coordinates(tuple(x.shape[-ndim:]), x.dtype, x.device)
    jp = [sum(jmat[k, m] * p[m] for m in range(ndim)) for k in range(ndim)]  # (J p)_k on the grid
    grads = _spatial_gradient(x, ndim, order)
    advect = -sum(jp[k] * grads[k] for k in range(ndim))  # −(J p)·∇x, every channel
    parts, start = [], 0
    for kind, n in layout.blocks:
        if kind in ("scalar", "pseudoscalar"):
            parts.append(advect[:, start : start + n])
            start += n
        else:
            v = x[:, start : start + n * ndim].unflatten(1, (n, ndim))
            rot = torch.einsum("ij,bnj...->bni...", jmat, v).flatten(1, 2)
            parts.append(rot + advect[:, start : start + n * ndim])
            start += n * ndim
    return torch.cat(parts, dim=1)


def _jvp(f: Callable[[Tensor], Tensor], x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    return torch.func.jvp(f, (x,), (u,))


def _double_vjp(f: Callable[[Tensor], Tensor], x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """``(F(x), DF(x)[u])`` by reverse mode twice: ``w ↦ Jᵀw`` is linear in ``w``, so ``∂_w ⟨Jᵀw, u⟩ = J u``."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        y = f(xr)
        w = torch.zeros_like(y, requires_grad=True)
        (jt_w,) = torch.autograd.grad(y, xr, grad_outputs=w, create_graph=True)
        (ju,) = torch.autograd.grad(jt_w, w, grad_outputs=u)
    return y.detach(), ju


def directional_derivative(
    f: Callable[[Tensor], Tensor], x: Tensor, u: Tensor, method: str = "auto"
) -> tuple[Tensor, Tensor, str]:
    """``(F(x), DF(x)[u], method used)``: ``"jvp"`` (forward mode), ``"vjp"`` (double vjp) or ``"auto"``.

    ``"auto"`` tries forward mode and falls back to the double vjp when an op has no forward-mode formula
    (``grid_sample`` in torch 2.13); a genuine error reappears from the fallback.
    """
    if method == "jvp":
        y, d = _jvp(f, x, u)
        return y.detach(), d.detach(), "jvp"
    if method == "vjp":
        y, d = _double_vjp(f, x, u)
        return y, d, "vjp"
    if method != "auto":
        raise ValueError(f"method must be 'auto', 'jvp' or 'vjp', got {method!r}")
    try:
        y, d = _jvp(f, x, u)
        return y.detach(), d.detach(), "jvp"
    except (NotImplementedError, RuntimeError):
        y, d = _double_vjp(f, x, u)
        return y, d, "vjp"


def lie_derivative(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    in_layout: FieldLayout,
    out_layout: FieldLayout,
    ndim: int,
    *,
    method: str = "auto",
    order: int | None = None,
    return_fields: bool = False,
    batch_size: int | None = None,
) -> dict:
    """Relative Lie derivative ``‖L F(x_i)‖ / ‖F(x_i)‖`` along the rotation generator(s), per sample.

    ``f`` maps ``(batch, C_in, *grid_in)`` to ``(batch, C_out, *grid_out)``; an ``nn.Module`` is evaluated inside
    :class:`~equidyn.models.base.functional_eval` (BatchNorm on running statistics, so samples do not interact).
    Norms run over all channels and grid points of a sample. ``order`` of the finite differences: ``None`` takes 4
    in 2-D (on 32² plumes the order-2 floor is a few percent, order 4 is 10× lower) and 2 in 3-D.

    ``batch_size`` samples go through ``f`` at a time (default: all at once); the values are per sample, so it
    changes memory only (a 64³ O_h GCNN holds GBs of activations per sample).

    Returns ``lie_derivative`` (the headline: mean over samples, and in 3-D over the three generators),
    ``per_sample`` (headline per sample), ``per_generator`` ({axis: mean over samples}),
    ``per_generator_per_sample``, ``method`` (how ``DF`` was computed) and, if ``return_fields``, the unnormalised
    fields ``L F(x)`` keyed by axis.
    """
    if ndim not in (2, 3):
        raise ValueError(f"Lie derivative supports ndim 2 or 3, got {ndim}")
    if not x.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got {x.dtype}")
    x = x.detach()
    gens = rotation_generators(ndim)
    if order is None:
        order = DEFAULT_ORDER[ndim]

    def run() -> dict:
        parts: dict[str, list[Tensor]] = {axis: [] for axis in gens}
        field_parts: dict[str, list[Tensor]] = {axis: [] for axis in gens}
        used = set()
        step = batch_size or x.shape[0]
        for offset in range(0, x.shape[0], step):
            xb = x[offset : offset + step]
            y_ref: Tensor | None = None
            for axis, jmat in gens.items():
                u = generator_action(xb, in_layout, jmat, order)
                y, dy, how = directional_derivative(f, xb, u, method)
                used.add(how)
                if y_ref is None:
                    y_ref = y
                    norms = torch.linalg.vector_norm(y.flatten(1).double(), dim=1)
                    if torch.any(norms == 0) or not torch.all(torch.isfinite(norms)):
                        bad = (offset + torch.nonzero((norms == 0) | ~torch.isfinite(norms)).flatten()).tolist()
                        raise ValueError(f"‖F(x)‖ is zero or not finite for samples {bad}; cannot normalise")
                lf = dy - generator_action(y_ref, out_layout, jmat, order)
                parts[axis].append(torch.linalg.vector_norm(lf.flatten(1).double(), dim=1) / norms)
                if return_fields:
                    field_parts[axis].append(lf)
        results = {axis: torch.cat(p) for axis, p in parts.items()}
        fields = {axis: torch.cat(p) for axis, p in field_parts.items()} if return_fields else {}
        per_gen_sample = {a: r.cpu().tolist() for a, r in results.items()}
        per_sample = torch.stack(list(results.values())).mean(0)
        out = {
            "lie_derivative": float(per_sample.mean()),
            "per_sample": per_sample.cpu().tolist(),
            "per_generator": {a: float(r.mean()) for a, r in results.items()},
            "per_generator_per_sample": per_gen_sample,
            "method": "+".join(sorted(used)),
            "n_samples": int(x.shape[0]),
            "order": order,
        }
        if return_fields:
            out["fields"] = fields
        return out

    if isinstance(f, nn.Module):
        with functional_eval(f):
            result = run()
    else:
        result = run()
    if not all(math.isfinite(v) for v in result["per_sample"]):
        raise FloatingPointError("the Lie derivative is not finite; check the model's outputs")
    return result
