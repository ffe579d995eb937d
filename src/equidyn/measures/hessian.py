"""Hessian spectra of the training loss: top eigenvalues, trace ± standard error, and an SLQ spectral density.

All three come from Hessian-vector products (HVPs) of ``L(w)``, the sample-weighted mean loss over a fixed, seeded
data subset ([BLOG]), evaluated inside :class:`~equidyn.models.base.functional_eval` (BatchNorm on running
statistics; escnn filters re-expanded from the parameters, so second derivatives flow through the basis
expansion instead of hitting a cached filter).

Why equidyn has its own path instead of calling PyHessian (docs/measures.md has the full argument):

* **HVPs** are reverse-over-reverse (``autograd.grad`` of the gradient with ``create_graph``). ``torch.func``
  forward-over-reverse would be cheaper, but on torch 2.13 it fails on escnn convolutions (escnn hashes tensors
  inside its basis expansion) and on eval-mode BatchNorm, and forward AD does not support ``grid_sample``. A
  block of vectors shares one gradient graph per batch (:meth:`HessianOperator.matmat`), which halves the cost
  of the trace and the SLQ runs.
* **Top eigenvalues** come from Lanczos with full reorthogonalisation, stopped when the top-k Ritz residuals
  ``|β_m s_{m,i}|`` (a rigorous bound on each eigenvalue's error) fall below ``tol·|θ|_max``. PyHessian's
  deflated power iteration stops on the relative change of a Rayleigh quotient, which can stop early and
  return λ₂ > λ₁; it also finds the largest-*magnitude* eigenvalues, while ``eigenvalues`` here are the
  algebraically largest. The same run also reports the other end, **λ_min**, and continues (up to ``max_steps``)
  until its residual meets the same bound: the negative-curvature measure that can be non-zero for a reason,
  with its residual as the error bar (``lambda_min``, ``lambda_min_residual``, ``lambda_min_ratio = λ_min/λ_max``).
* **Trace** is Hutchinson's estimator with Rademacher probes and its standard error (PyHessian returns the raw
  list of samples and stops on a relative-change rule). By default it is *deflated* by the Krylov basis ``Q`` of
  the top-eigenvalue run: ``tr H = Σ_j q_jᵀHq_j + E[zᵀ(I−QQᵀ)H(I−QQᵀ)z]``. This is an exact identity, unbiased,
  and removes the outlier eigenvalues' large contribution to the variance at no extra HVP. If the probe budget
  covers the whole parameter vector the trace is computed exactly from unit vectors.
* **Density** is stochastic Lanczos quadrature (Ritz nodes and weights ``τ = s₀²`` per Rademacher start) in
  lock-step runs; PyHessian's ``density()`` calls ``torch.eig``, which torch 2.13 no longer has.
* **Negative mass** is the *smoothed spectral mass below −ε*, ``(1/n) Σ_i Φ((−ε − λ_i)/σ)`` with ``ε`` and ``σ``
  fixed fractions of ``λ_max`` (defaults 0.06 and 0.02). SLQ estimates ``(1/n) tr f(H)`` without bias only up to
  its quadrature error, which is small for a smooth ``f`` and large for a step: the old definition (weight of
  Ritz nodes below 0) put the step inside the bulk of near-zero eigenvalues, where the node nearest 0 carries
  20-40 % of the weight, and read +5 to +10 SEs too high on tiny ConvNets (tests/test_hessian.py). With the step
  moved below the bulk (``ε = 3σ``) and smoothed over ``σ``, the estimate agrees with the dense value within its
  SE; but a zero eigenvalue still counted ``Φ(−3) = 0.135 %``, so on trained networks (a bulk at 0, λ_min ≈ −5e-4
  λ_max) the mass was that floor and nothing else (issue 21). The floor is now subtracted (a λ ≥ 0 counts 0), and
  an SE is given only from ``MIN_SE_RUNS`` = 5 runs or more (docs/measures.md has the numbers).

PyHessian itself stays as the independent cross-check (:func:`pyhessian_reference`), used by the tests and by
``benchmarks/bench_hessian.py``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..models.base import functional_eval
from ._loss import (
    Batch,
    Criterion,
    batch_loss,
    check_batches,
    flatten,
    n_samples,
    seeded_generator,
    trainable_parameters,
)

__all__ = ["HessianOperator", "hessian_spectrum", "lanczos", "pyhessian_reference", "smoothed_negative_mass"]

#: Defaults of the negative-mass definition, as fractions of λ_max (docs/measures.md).
NEGATIVE_THRESHOLD = 0.06
NEGATIVE_SIGMA = 0.02
#: SLQ runs below which the negative mass has no SE (its spread over 2-4 runs has too few df to publish)
MIN_SE_RUNS = 5


def smoothed_negative_mass(
    eigenvalues: np.ndarray,
    weights: np.ndarray | None,
    threshold: float,
    sigma: float,
    subtract_floor: bool = True,
) -> float:
    """``Σ_i w_i f(λ_i)``: the spectral mass below ``−threshold``, smoothed over ``sigma``, above the floor.

    ``f(λ) = Φ((−threshold − λ)/sigma)`` counts an eigenvalue far below ``−threshold`` as 1; it counts a *zero*
    eigenvalue ``Φ(−threshold/sigma)`` (``Φ(−3) = 0.135 %`` at the defaults), so on a trained network, whose
    spectrum is mostly a bulk at 0, the raw mass is that floor times the bulk and says nothing about negative
    curvature (issue 21: every published value lay in 0.00134–0.00170). With ``subtract_floor`` (the default)
    ``f`` becomes ``max(0, Φ((−threshold − λ)/sigma) − Φ(−threshold/sigma)) / (1 − Φ(−threshold/sigma))``: 0 for
    every λ ≥ 0, still 1 far below ``−threshold``, so a positive semi-definite Hessian has mass 0 exactly.

    With ``weights=None`` every eigenvalue weighs ``1/n`` (the exact value from a dense spectrum); with SLQ Ritz
    nodes and their quadrature weights it is one run's estimate of the same number. Both arguments are absolute
    (the caller scales them by ``λ_max``).
    """
    from scipy.special import ndtr

    lam = np.asarray(eigenvalues, dtype=float)
    if not (threshold >= 0 and sigma > 0):
        raise ValueError(f"need threshold >= 0 and sigma > 0, got {threshold}, {sigma}")
    w = np.full(len(lam), 1.0 / len(lam)) if weights is None else np.asarray(weights, dtype=float)
    f = ndtr((-threshold - lam) / sigma)
    if subtract_floor:
        floor = float(ndtr(-threshold / sigma))
        f = np.maximum(f - floor, 0.0) / (1.0 - floor)
    return float(np.sum(w * f))


class HessianOperator:
    """``v ↦ H v`` for the Hessian of ``L(w)`` over the full trainable-parameter vector.

    Must be used while the model is in the intended mode (``hessian_spectrum`` wraps it in ``functional_eval``).
    ``cache_graphs=True`` keeps every batch's gradient graph alive between products: each HVP then costs one
    second-order backward instead of a forward, a backward and a second-order backward, at the price of holding
    all the subset's activations (several GB for a 600k-parameter model on 256 samples of 64×64).
    ``batched=True`` applies a block of vectors in one vmapped backward; an op without a batching rule makes it
    fall back, once and for good, to one backward per vector. ``vector_chunk`` caps the vectors of one vmapped
    backward: its activation memory is about (samples per batch) × (vectors) × one sample's, which for a 64³
    super-resolution model is tens of GB per sample-vector (docs/benchmarks.md, "Paper-scale execution check"),
    so a study with large samples measures in small batches and chunks; the products do not change.
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[Batch],
        criterion: Criterion,
        cache_graphs: bool = False,
        batched: bool = True,
        vector_chunk: int = 16,
    ) -> None:
        if vector_chunk < 1:
            raise ValueError(f"vector_chunk must be >= 1, got {vector_chunk}")
        self.model = model
        self.vector_chunk = vector_chunk
        self.batches = check_batches(batches)
        self.criterion = criterion
        self.params = trainable_parameters(model)
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1:
            raise TypeError(f"all trainable parameters must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.n_params = sum(p.numel() for p in self.params)
        self.n_samples = n_samples(self.batches)
        self.n_hvp = 0
        self.batched = batched
        self._graphs: list[Tensor] | None = None
        if cache_graphs:
            self._graphs = [self._gradient_graph(b) for b in self.batches]

    def _gradient_graph(self, batch: Batch) -> Tensor:
        """Flat gradient of this batch's share of ``L`` (weight n_b/N), with its graph kept for a 2nd backward."""
        with torch.enable_grad():
            loss = batch_loss(self.model, batch, self.criterion) * (batch[0].shape[0] / self.n_samples)
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True, materialize_grads=True)
        return flatten(grads)

    def gradient(self) -> Tensor:
        """The flat gradient of ``L(w)`` (no graph)."""
        total = torch.zeros(self.n_params, dtype=self.dtype, device=self.device)
        for batch in self.batches:
            total += self._gradient_graph(batch).detach()
        return total

    def matmat(self, vectors: Tensor) -> Tensor:
        """``H`` applied to each row of ``vectors`` (k, n); one gradient graph per batch serves all k rows."""
        if vectors.dim() != 2 or vectors.shape[1] != self.n_params:
            raise ValueError(f"expected (k, {self.n_params}) vectors, got {tuple(vectors.shape)}")
        vectors = vectors.to(dtype=self.dtype, device=self.device)
        if vectors.shape[0] > self.vector_chunk:
            return torch.cat([self.matmat(block) for block in vectors.split(self.vector_chunk)])
        out = torch.zeros_like(vectors)
        k = vectors.shape[0]
        for b, batch in enumerate(self.batches):
            graph = self._graphs[b] if self._graphs is not None else self._gradient_graph(batch)
            if not graph.requires_grad:  # the loss is (at most) linear in the parameters: zero Hessian
                continue
            keep = self._graphs is not None
            if self.batched and k > 1:
                try:
                    out += self._batched_products(graph, vectors)
                    continue
                except (RuntimeError, NotImplementedError):  # an op without a vmap rule: one product at a time
                    self.batched = False
            for i in range(k):
                hv = torch.autograd.grad(
                    graph,
                    self.params,
                    grad_outputs=vectors[i],
                    retain_graph=keep or i < k - 1,
                    allow_unused=True,
                    materialize_grads=True,
                )
                out[i] += flatten(hv)
        self.n_hvp += k
        return out

    def _batched_products(self, graph: Tensor, vectors: Tensor) -> Tensor:
        """All k products in one vmapped backward (``is_grads_batched``): 3-10x faster than k backward calls."""
        hv = torch.autograd.grad(
            graph,
            self.params,
            grad_outputs=vectors,
            retain_graph=True,  # a failed attempt falls back to the loop on the same graph
            allow_unused=True,
            materialize_grads=True,
            is_grads_batched=True,
        )
        return torch.cat([h.reshape(vectors.shape[0], -1) for h in hv], dim=1)

    def matvec(self, vector: Tensor) -> Tensor:
        return self.matmat(vector.reshape(1, -1))[0]


@dataclass
class LanczosRun:
    """One Lanczos run: tridiagonal ``T`` (``alphas`` on the diagonal, ``betas[:-1]`` off it) and the last β."""

    alphas: np.ndarray
    betas: np.ndarray  # betas[j] = ‖w_j‖ after step j; betas[-1] is the residual scale of the last step

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), their quadrature weights ``s₀²`` and residual norms ``|β_m s_{m-1}|``."""
        t = np.diag(self.alphas) + np.diag(self.betas[:-1], 1) + np.diag(self.betas[:-1], -1)
        theta, s = np.linalg.eigh(t)
        return theta, s[0] ** 2, np.abs(self.betas[-1] * s[-1])


def lanczos(
    matmat: Callable[[Tensor], Tensor],
    starts: Tensor,
    max_steps: int,
    stop: Callable[[LanczosRun], bool] | None = None,
    check_every: int = 5,
) -> tuple[list[LanczosRun], Tensor]:
    """Independent Lanczos runs from the rows of ``starts`` (b, n), advanced in lock-step through ``matmat``.

    Full reorthogonalisation (twice, "twice is enough") against each run's own basis keeps the Ritz values free
    of ghost copies in float32. A run ends on breakdown (invariant subspace: its Ritz values are then exact
    eigenvalues) or when ``stop(run)`` is true (checked every ``check_every`` steps). Returns the runs and the
    basis tensor ``(b, max_steps, n)``; run ``r`` uses ``basis[r, :runs[r].steps]``.
    """
    b, n = starts.shape
    m_max = min(max_steps, n)
    basis = torch.empty((b, m_max, n), dtype=starts.dtype, device=starts.device)
    basis[:, 0] = starts / torch.linalg.vector_norm(starts, dim=1, keepdim=True)
    alphas = np.zeros((b, m_max))
    betas = np.zeros((b, m_max))
    steps = np.zeros(b, dtype=int)
    active = list(range(b))
    eps = torch.finfo(starts.dtype).eps
    for j in range(m_max):
        w = matmat(basis[active, j])
        finished = []
        for row, r in enumerate(active):
            q, wr = basis[r, j], w[row]
            alpha = float(torch.dot(wr, q))
            wr = wr - alpha * q
            if j > 0:
                wr = wr - betas[r, j - 1] * basis[r, j - 1]
            past = basis[r, : j + 1]
            for _ in range(2):
                wr = wr - past.T @ (past @ wr)
            beta = float(torch.linalg.vector_norm(wr))
            alphas[r, j], betas[r, j], steps[r] = alpha, beta, j + 1
            scale = max(np.abs(alphas[r, : j + 1]).max(), betas[r, : j + 1].max(), 1e-300)
            run = LanczosRun(alphas[r, : j + 1].copy(), betas[r, : j + 1].copy())
            breakdown = beta <= 10 * eps * scale  # the next direction would be rounding noise
            if breakdown:
                betas[r, j] = 0.0
            if breakdown or j + 1 == m_max or (stop is not None and (j + 1) % check_every == 0 and stop(run)):
                finished.append(r)
            else:
                basis[r, j + 1] = wr / beta
        active = [r for r in active if r not in finished]
        if not active:
            break
    runs = [LanczosRun(alphas[r, : steps[r]].copy(), betas[r, : steps[r]].copy()) for r in range(b)]
    return runs, basis


def _rademacher(gen: torch.Generator, k: int, n: int) -> Tensor:
    return torch.randint(0, 2, (k, n), generator=gen, dtype=torch.int8).to(torch.float64) * 2 - 1


def _top_eigenvalues(op: HessianOperator, gen: torch.Generator, top_k: int, tol: float, max_steps: int):
    start = torch.randn(1, op.n_params, generator=gen, dtype=torch.float64).to(op.dtype).to(op.device)

    def converged(run: LanczosRun) -> bool:
        if run.steps < top_k:
            return False
        theta, _, res = run.ritz()
        bound = tol * np.abs(theta).max()
        # the top k, and λ_min at the other end (to the same absolute bound), or max_steps: λ_min's residual says
        return bool(np.all(res[-top_k:] <= bound) and res[0] <= bound)

    runs, basis = lanczos(op.matmat, start, max_steps=max(max_steps, top_k), stop=converged)
    run = runs[0]
    theta, _, res = run.ritz()
    exhausted = run.betas[-1] == 0.0 or run.steps == op.n_params  # Krylov space invariant: values exact
    ok = exhausted or bool(np.all(res[-top_k:] <= tol * np.abs(theta).max()))
    return run, theta, res, ok, basis[0, : run.steps]


def _trace(
    op: HessianOperator, gen: torch.Generator, n_probes: int, deflation: Tensor | None, alphas: np.ndarray, chunk: int
) -> tuple[float, float, str]:
    n = op.n_params
    if n_probes >= n:  # the probes would cost as much as the exact trace: compute it from unit vectors
        total = 0.0
        for s in range(0, n, chunk):
            eye = torch.zeros((min(chunk, n - s), n), dtype=op.dtype, device=op.device)
            eye[torch.arange(eye.shape[0]), torch.arange(s, s + eye.shape[0])] = 1
            total += float(torch.einsum("kn,kn->", op.matmat(eye).double(), eye.double()))
        return total, 0.0, "exact"
    samples = []
    for s in range(0, n_probes, chunk):
        z = _rademacher(gen, min(chunk, n_probes - s), n).to(op.dtype).to(op.device)
        if deflation is not None:
            z = z - (z @ deflation.T) @ deflation
        samples.append(torch.einsum("kn,kn->k", op.matmat(z).double(), z.double()))
    values = torch.cat(samples).cpu().numpy()
    base = float(alphas.sum()) if deflation is not None else 0.0
    se = float(values.std(ddof=1) / math.sqrt(len(values)))
    return base + float(values.mean()), se, "hutchinson-deflated" if deflation is not None else "hutchinson"


def _density(
    nodes: list[np.ndarray], weights: list[np.ndarray], sigma_rel: float, points: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaussian-broadened SLQ density on a grid wide enough (±6σ) that it integrates to 1."""
    all_nodes = np.concatenate(nodes)
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    sigma = sigma_rel * (hi - lo) if hi > lo else sigma_rel * max(abs(hi), 1.0)
    grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, points)
    values = np.zeros_like(grid)
    for th, tw in zip(nodes, weights, strict=True):
        kern = np.exp(-0.5 * ((grid[:, None] - th[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        values += kern @ tw / len(nodes)
    return grid, values, sigma


def hessian_spectrum(
    model: nn.Module,
    batches: Sequence[Batch],
    criterion: Criterion,
    top_k: int,
    n_hutchinson: int,
    n_slq: int,
    slq_steps: int,
    seed: int,
    *,
    tol: float = 1e-4,
    max_steps: int = 200,
    deflate_trace: bool = True,
    cache_graphs: bool = False,
    density_sigma: float = 0.01,
    density_points: int = 1024,
    negative_threshold: float = NEGATIVE_THRESHOLD,
    negative_sigma: float = NEGATIVE_SIGMA,
    chunk: int = 16,
) -> dict:
    """Top-k eigenvalues, trace ± SE and the SLQ spectral density of ``L(w)`` on a fixed data subset.

    Randomness (Lanczos start, Hutchinson probes, SLQ starts, in that order) comes from one generator seeded by
    ``seed`` alone. The model's parameters, gradients, buffers and modes are left as they were.

    Returns a JSON-ready dict with ``lambda_max``; ``eigenvalues`` (top-k, descending) with ``eigen_residuals``
    (each eigenvalue is within its residual of a true eigenvalue) and ``converged``; ``lambda_min`` (smallest
    Ritz value of the same run, which continues until its residual meets ``tol·|θ|_max`` or ``max_steps``: an upper
    bound on the true λ_min, and within ``lambda_min_residual`` of an eigenvalue) and ``lambda_min_ratio``
    (``λ_min/λ_max``; NaN if ``λ_max ≤ 0``); ``ritz_values`` and
    ``ritz_residuals`` (all Ritz pairs of that run, ascending: the converged ones at both ends also give the
    largest-|λ| eigenvalues that PyHessian targets); ``trace``, ``trace_se``, ``trace_method``;
    ``negative_mass`` (mean over SLQ runs of :func:`smoothed_negative_mass` with ``ε = negative_threshold·λ_max``
    and ``σ = negative_sigma·λ_max``, floor subtracted; NaN if ``λ_max ≤ 0``), ``negative_mass_se`` (SE over
    runs; NaN below ``MIN_SE_RUNS`` runs) and ``negative_mass_definition``;
    ``density`` = {``nodes``, ``weights`` (per run), ``grid``, ``values``, ``sigma``}; and bookkeeping
    (``n_params``, ``n_samples``, ``n_hvp``, ``lanczos_steps``, ``seed``).
    """
    for name, value, low in (("top_k", top_k, 1), ("n_hutchinson", n_hutchinson, 2), ("n_slq", n_slq, 1)):
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if slq_steps < 2:
        raise ValueError(f"slq_steps must be >= 2, got {slq_steps}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if not (negative_threshold >= 0 and negative_sigma > 0):
        raise ValueError(
            f"need negative_threshold >= 0 and negative_sigma > 0, got {negative_threshold}, {negative_sigma}"
        )

    with functional_eval(model):
        op = HessianOperator(model, batches, criterion, cache_graphs=cache_graphs, vector_chunk=chunk)
        if top_k > op.n_params:
            raise ValueError(f"top_k={top_k} exceeds the number of parameters ({op.n_params})")
        gen = seeded_generator(seed)

        run, theta, res, ok, krylov = _top_eigenvalues(op, gen, top_k, tol, max_steps)
        if not ok:
            warnings.warn(
                f"Lanczos did not converge to tol={tol} for the top {top_k} eigenvalues in {run.steps} steps "
                f"(residuals {res[-top_k:][::-1].tolist()}); raise max_steps",
                RuntimeWarning,
                stacklevel=2,
            )
        trace, trace_se, method = _trace(op, gen, n_hutchinson, krylov if deflate_trace else None, run.alphas, chunk)
        del krylov

        starts = _rademacher(gen, n_slq, op.n_params).to(op.dtype).to(op.device)
        slq_runs, basis = lanczos(op.matmat, starts, max_steps=slq_steps)
        del basis
        nodes, weights = zip(*[r.ritz()[:2] for r in slq_runs], strict=True)
        grid, values, sigma = _density(list(nodes), list(weights), density_sigma, density_points)
        scale = float(theta[-1])  # λ_max
        if scale > 0:
            eps, sig = negative_threshold * scale, negative_sigma * scale
            neg = np.array([smoothed_negative_mass(th, w, eps, sig) for th, w in zip(nodes, weights, strict=True)])
        else:  # no positive curvature: the scale of the definition is undefined
            eps = sig = float("nan")
            neg = np.full(len(nodes), float("nan"))
        n_hvp = op.n_hvp
        del op

    return {
        "lambda_max": float(theta[-1]),
        "eigenvalues": theta[::-1][:top_k].tolist(),
        "eigen_residuals": res[::-1][:top_k].tolist(),
        "converged": ok,
        "lanczos_steps": run.steps,
        "lambda_min": float(theta[0]),
        "lambda_min_residual": float(res[0]),
        "lambda_min_ratio": float(theta[0] / theta[-1]) if theta[-1] > 0 else float("nan"),
        "ritz_values": theta.tolist(),
        "ritz_residuals": res.tolist(),
        "trace": trace,
        "trace_se": trace_se,
        "trace_method": method,
        "negative_mass": float(neg.mean()),
        "negative_mass_se": (float(neg.std(ddof=1) / math.sqrt(len(neg))) if len(neg) >= MIN_SE_RUNS else float("nan")),
        "negative_mass_definition": (
            f"smoothed spectral mass below -eps above the floor of a zero eigenvalue: "
            f"mean_i max(0, Phi((-eps - lambda_i)/sigma) - Phi(-eps/sigma)) / (1 - Phi(-eps/sigma)), "
            f"eps = {negative_threshold:g} lambda_max, sigma = {negative_sigma:g} lambda_max"
        ),
        "negative_threshold": eps,
        "negative_sigma": sig,
        "density": {
            "nodes": [th.tolist() for th in nodes],
            "weights": [w.tolist() for w in weights],
            "grid": grid.tolist(),
            "values": values.tolist(),
            "sigma": sigma,
        },
        "n_params": sum(p.numel() for p in trainable_parameters(model)),
        "n_samples": n_samples(check_batches(batches)),
        "n_hvp": n_hvp,
        "seed": seed,
        "tol": tol,
    }


class _ModePinned(nn.Module):
    """Delegates to ``inner`` but ignores ``train()/eval()``: PyHessian's forced ``model.eval()`` would make
    escnn cache its filters (then HVPs see no parameter dependence), so the caller's mode is kept instead."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True) -> _ModePinned:
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)


def pyhessian_reference(
    model: nn.Module,
    batches: Sequence[Batch],
    criterion: Criterion,
    top_k: int,
    n_trace: int,
    seed: int,
    tol: float = 1e-3,
    max_iter: int = 100,
    return_vectors: bool = False,
) -> dict:
    """PyHessian 0.1's top-k eigenvalues (deflated power iteration) and Hutchinson trace, as a cross-check.

    Runs under ``functional_eval`` with PyHessian's ``model.eval()`` neutralised, on CPU, with the global RNG
    seeded by ``seed`` inside a forked RNG state. ``trace`` draws exactly ``n_trace`` probes (its early-stop rule
    is disabled) and is returned as mean ± SE. ``return_vectors`` adds its eigenvectors (flat, CPU) so a caller
    can check their residuals. Gradients it leaves on the parameters are cleared. Only
    ``eigenvalues()`` and ``trace()`` are used: ``density()`` calls the removed ``torch.eig``.
    """
    from pyhessian import hessian as PyHessian

    batches = check_batches(batches)
    params = trainable_parameters(model)
    saved_grads = [p.grad for p in params]
    with functional_eval(model), torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # PyHessian calls loss.backward(create_graph=True); torch warns about the grad cycle, which we clear below
        warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
        torch.manual_seed(seed)
        try:
            comp = PyHessian(_ModePinned(model), criterion, dataloader=batches, cuda=False)
            eigenvalues, vectors = comp.eigenvalues(maxIter=max_iter, tol=tol, top_n=top_k)
            samples = np.asarray(comp.trace(maxIter=n_trace, tol=float("-inf")), dtype=float)
        finally:
            for p, g in zip(params, saved_grads, strict=True):
                p.grad = g
    out = {
        "eigenvalues": [float(e) for e in eigenvalues],
        "trace": float(samples.mean()),
        "trace_se": float(samples.std(ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 else float("nan"),
        "n_trace": len(samples),
    }
    if return_vectors:
        out["eigenvectors"] = [flatten([t.detach() for t in v]).cpu() for v in vectors]
    return out
