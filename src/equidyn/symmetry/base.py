"""Finite groups of exact grid symmetries and their action on feature tensors.

Every group here acts on a square/cubic grid by *index permutations* (``rot90``, ``flip``, ``permute``) and on the
fibres (vector components, regular channels) by signed permutation matrices, so the action is exact in floating
point and differentiable to any order. Elements are integers ``0 .. order-1``; element 0 is the identity.

Convention (see docs/conventions.md): the action is the *physical* one,
``(g·f)(p) = ρ(g) f(g⁻¹ p)``, with grid axes ``(..., [z,] y, x)`` where x runs along the last axis and y along
the second-to-last, both increasing with the index, and vector components stored in ``(x, y[, z])`` order.
Pseudoscalar fields (vorticity) move like scalars and are multiplied by ``det ρ(g)`` (:mod:`.layout`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np
import torch

from .layout import FieldLayout


class GridGroup(ABC):
    """A finite group acting exactly on ``ndim``-dimensional grids."""

    name: str
    ndim: int

    @property
    @abstractmethod
    def order(self) -> int: ...

    @abstractmethod
    def matrix(self, g: int) -> np.ndarray:
        """The orthogonal (signed permutation) matrix of ``g`` on physical coordinates ``(x, y[, z])``."""

    @abstractmethod
    def transform_grid(self, x: torch.Tensor, g: int) -> torch.Tensor:
        """Spatial part of the action on the trailing ``ndim`` axes: ``out(p) = x(g⁻¹ p)``."""

    def sign(self, g: int) -> float:
        """Character of the one-dimensional ``sign`` representation (subclasses define which one)."""
        raise NotImplementedError(f"{self.name} defines no 'sign' representation")

    @property
    def elements(self) -> range:
        return range(self.order)

    @cached_property
    def _matrices(self) -> np.ndarray:
        return np.stack([self.matrix(g) for g in self.elements])

    @cached_property
    def cayley(self) -> np.ndarray:
        """``cayley[a, b]`` is the element ``a∘b`` (apply b, then a)."""
        mats = self._matrices
        table = np.empty((self.order, self.order), dtype=np.int64)
        for a in self.elements:
            for b in self.elements:
                table[a, b] = self.element_of(mats[a] @ mats[b])
        return table

    def element_of(self, matrix: np.ndarray) -> int:
        hits = np.flatnonzero(np.all(np.abs(self._matrices - matrix) < 1e-9, axis=(1, 2)))
        if hits.size != 1:
            raise ValueError(f"matrix is not an element of {self.name}:\n{matrix}")
        return int(hits[0])

    def compose(self, a: int, b: int) -> int:
        return int(self.cayley[a, b])

    def inverse(self, a: int) -> int:
        return int(np.flatnonzero(self.cayley[a] == 0)[0])

    def regular_matrix(self, g: int) -> np.ndarray:
        """Permutation ``P`` with ``(P f)(h) = f(g⁻¹ h)``: left translation of a function on the group."""
        p = np.zeros((self.order, self.order))
        g_inv = self.inverse(g)
        for h in self.elements:
            p[h, self.compose(g_inv, h)] = 1.0
        return p

    def fiber(self, kind: str, g: int) -> np.ndarray:
        """Matrix by which ``g`` mixes the channels of one field of the given kind."""
        if kind == "scalar":
            return np.ones((1, 1))
        if kind == "sign":
            return np.full((1, 1), self.sign(g))
        if kind == "pseudoscalar":
            return np.full((1, 1), float(round(np.linalg.det(self.matrix(g)))))
        if kind == "vector":
            return self.matrix(g).astype(float)
        if kind == "regular":
            return self.regular_matrix(g)
        raise ValueError(f"unknown field kind {kind!r}")

    def channels(self, layout: FieldLayout) -> int:
        return layout.channels(self.ndim, self.order)

    def act(self, g: int, x: torch.Tensor, layout: FieldLayout) -> torch.Tensor:
        """Apply ``g`` to a feature tensor ``(batch, channels, *grid)`` laid out as ``layout``.

        Exact: a signed permutation of channels followed by an index permutation of the grid.
        """
        if x.shape[1] != self.channels(layout):
            raise ValueError(
                f"tensor has {x.shape[1]} channels but layout '{layout}' needs {self.channels(layout)} for {self.name}"
            )
        parts, start = [], 0
        for kind, n in layout.blocks:
            d = layout.field_dim(kind, self.ndim, self.order)
            block = x[:, start : start + n * d]
            start += n * d
            mat = self.fiber(kind, g)
            if not np.array_equal(mat, np.eye(d)):
                m = torch.as_tensor(mat, dtype=x.dtype, device=x.device)
                block = block.unflatten(1, (n, d))
                block = torch.einsum("ij,bnj...->bni...", m, block).flatten(1, 2)
            parts.append(block)
        return self.transform_grid(torch.cat(parts, dim=1), g)

    def act_about_node(self, g: int, x: torch.Tensor, layout: FieldLayout) -> torch.Tensor:
        """``act`` about grid *node* 0 of a periodic grid instead of about the grid's centre.

        ``(g·f)(p) = ρ(g) f(g⁻¹ p)`` with ``p`` the index position taken modulo the grid size. On a periodic grid
        of even size node ``n/2`` is the same centre (the two differ by a whole period). :meth:`act` turns about
        the centre ``(n − 1)/2``, half a cell away, so the two actions differ by a translation of one cell along
        every axis that ``g`` reverses: that is all this method adds. A periodic solver sampled at nodes (exponax)
        whose samples are later read at the cell centres of a coarser grid needs it (:mod:`equidyn.data.exponax_flows`).
        """
        out = self.act(g, x, layout)
        m = self.matrix(g)
        dims = [-1 - i for i in range(self.ndim) if m[i].sum() < 0]  # coordinate i lives on tensor axis -1-i
        return torch.roll(out, [1] * len(dims), dims) if dims else out

    def act_numpy(self, g: int, x: np.ndarray, layout: FieldLayout, *, about: str = "centre") -> np.ndarray:
        """``act`` (``about="centre"``) or :meth:`act_about_node` (``about="node"``) on a numpy array (exact, dtype
        preserved)."""
        if about not in ("centre", "node"):
            raise ValueError(f"about must be 'centre' or 'node', got {about!r}")
        act = self.act if about == "centre" else self.act_about_node
        return act(g, torch.from_numpy(np.ascontiguousarray(x)), layout).numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, order={self.order})"
