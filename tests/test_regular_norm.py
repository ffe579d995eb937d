"""One regular batch norm for 2-D and 3-D: equivariant under any permutation of a field's channels and of the grid."""

from __future__ import annotations

import pytest
import torch

from equidyn.models.regular_norm import RegularBatchNorm, RegularBatchNorm2d, RegularBatchNorm3d


@pytest.mark.parametrize("ndim, order", [(2, 4), (3, 48)])
def test_regular_batch_norm_commutes_with_the_group_action(ndim: int, order: int) -> None:
    torch.manual_seed(0)
    fields, size = 3, 5
    norm = RegularBatchNorm(fields, order, ndim)
    with torch.no_grad():
        norm.norm.weight.uniform_(0.5, 2.0)
        norm.norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(2, fields * order, *([size] * ndim)) * 3 + 1
    perm = torch.randperm(order)  # how a group element permutes the channels of every regular field

    def act(t: torch.Tensor) -> torch.Tensor:
        t = t.unflatten(1, (fields, order))[:, :, perm].flatten(1, 2)
        return torch.rot90(t, 1, dims=(-2, -1))  # and moves the grid points

    for mode in ("train", "eval"):
        getattr(norm, mode)()
        torch.testing.assert_close(norm(act(x)), act(norm(x)), rtol=1e-5, atol=1e-5)
    # statistics are per field, not per channel: a per-channel norm would fail the check above
    assert norm.norm.running_mean.shape == (fields,)


def test_the_2d_and_3d_names_are_the_same_layer() -> None:
    assert isinstance(RegularBatchNorm2d(2), RegularBatchNorm) and RegularBatchNorm2d(2).ndim == 2
    assert isinstance(RegularBatchNorm3d(2, 48), RegularBatchNorm) and RegularBatchNorm3d(2, 48).ndim == 3
    with pytest.raises(ValueError, match="expected"):
        RegularBatchNorm2d(2)(torch.zeros(1, 7, 4, 4))
