"""``residual`` and ``rescale`` models: ``s·f(x/s) + baseline(x)`` for every architecture.

The skip must (1) be exactly the baseline the tables compare with, (2) keep a strictly equivariant model exactly
equivariant (C4 in 2-D, all 48 elements of O_h in 3-D), (3) survive a checkpoint round trip and functional calls
(the Hessian measures), and (4) leave the identity of runs without it unchanged. Rescaling must make the model
exactly positively homogeneous (the point of it: test frames larger than any training frame look alike) without
costing equivariance.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.func import functional_call

from equidyn.measures.equivariance import equivariance_error
from equidyn.models.base import ModelSpec, last_frame
from equidyn.models.registry import build_model
from equidyn.models.superres3d import paper_spec
from equidyn.models.trivial import InterpolatedInput, Persistence
from equidyn.symmetry import C4, FieldLayout
from equidyn.symmetry.octahedral import Octahedral


def spec2d(name: str, residual: bool | str, frames: int = 2, rescale: bool = False) -> ModelSpec:
    return ModelSpec(
        name=name,
        in_layout=FieldLayout.parse(f"{frames} vector"),
        out_layout=FieldLayout.parse("1 vector"),
        hidden=4,
        layers=3,
        grid=(12, 12),
        residual="last" if residual is True else residual or "",
        rescale=rescale,
    )


def _pair(make_spec) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same weights with and without the skip."""
    torch.manual_seed(0)
    plain = build_model(make_spec(False)).eval()
    skip = build_model(make_spec(True)).eval()
    skip.load_state_dict(plain.state_dict())
    return plain, skip


@pytest.mark.parametrize("name", ["convnet", "e2cnn", "rsteer"])
def test_the_skip_is_the_persistence_baseline(name: str) -> None:
    plain, skip = _pair(lambda r: spec2d(name, r))
    x = torch.randn(3, 4, 12, 12)
    with torch.no_grad():
        diff = skip(x) - plain(x)
    torch.testing.assert_close(diff, Persistence(2)(x), rtol=0, atol=1e-6)


def test_the_3d_skip_is_the_interpolated_input_baseline() -> None:
    plain, skip = _pair(lambda r: replace(paper_spec("cnn3d"), hidden=2, residual="last" if r else ""))
    x = torch.randn(2, 9, 3, 3, 3)
    with torch.no_grad():
        diff = skip(x) - plain(x)
    torch.testing.assert_close(diff, InterpolatedInput(4)(x), rtol=0, atol=1e-6)


def test_a_residual_e2cnn_stays_exactly_c4_equivariant() -> None:
    _, model = _pair(lambda r: spec2d("e2cnn", r))
    x = torch.randn(4, 4, 12, 12)
    ee = equivariance_error(model, x, C4(), model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-2


def test_a_residual_gcnn_stays_equivariant_to_all_of_oh() -> None:
    _, model = _pair(lambda r: replace(paper_spec("gcnn3d"), hidden=1, residual="last" if r else ""))
    group = Octahedral(with_reflections=True)
    vec3, vec1 = FieldLayout.parse("3 vector"), FieldLayout.parse("1 vector")
    x = torch.randn(1, 9, 3, 3, 3)
    with torch.no_grad():
        fx = model(x)
        scale = float(fx.abs().max())
        moved = [model(group.act(g, x, vec3)) - group.act(g, fx, vec1) for g in group.elements]
    errs = [float(m.abs().max()) / scale for m in moved]
    assert len(errs) == 48 and max(errs) <= 1e-5, max(errs)


@pytest.mark.parametrize("g", range(8))
def test_last_frame_commutes_with_d4_on_a_coarse_to_fine_grid(g: int) -> None:
    from equidyn.symmetry.d4 import D4

    group, layout = D4(), FieldLayout.parse("1 vector")
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    up = last_frame(x, 2, (20, 20))
    torch.testing.assert_close(last_frame(group.act(g, x, layout), 2, (20, 20)), group.act(g, up, layout))


def test_functional_call_and_checkpoint_spec_keep_the_skip() -> None:
    plain, model = _pair(lambda r: spec2d("convnet", r))
    x = torch.randn(2, 4, 12, 12)
    params = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    with torch.no_grad():
        zeroed = functional_call(model, {**dict(model.named_buffers()), **params}, (x,))
        # with every weight zero the network part is a constant; the skip still carries the last frame
        constant = functional_call(plain, {**dict(plain.named_buffers()), **params}, (x,))
    torch.testing.assert_close(zeroed - constant, x[:, -2:])
    rebuilt = ModelSpec.from_dict(model.spec.to_dict())
    assert rebuilt.residual and build_model(rebuilt).spec.residual


def test_runs_without_the_skip_keep_their_identity() -> None:
    assert "residual" not in spec2d("convnet", False).to_dict()
    assert spec2d("convnet", True).to_dict()["residual"] == "last"


def test_a_skip_needs_whole_output_frames_in_the_input() -> None:
    bad = replace(spec2d("convnet", True), in_layout=FieldLayout.parse("1 vector + 1 scalar"))
    with pytest.raises(ValueError, match="residual"):
        build_model(bad)
    with pytest.raises(ValueError, match="residual 'linear' needs"):
        build_model(spec2d("convnet", "linear", frames=1))
    with pytest.raises(ValueError, match="must be one of"):
        build_model(spec2d("convnet", "quadratic"))


def test_the_linear_skip_is_exact_on_a_linear_drift_and_equivariant() -> None:
    plain, model = _pair(lambda r: spec2d("e2cnn", "linear" if r else "", frames=3))
    x0, dx = torch.randn(2, 2, 12, 12), torch.randn(2, 2, 12, 12)
    x = torch.cat([x0, x0 + dx, x0 + 2 * dx], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x) - plain(x), x0 + 3 * dx)
    ee = equivariance_error(model, torch.randn(4, 6, 12, 12), C4(), model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5


@pytest.mark.parametrize("residual", [False, True])
def test_a_rescaled_model_is_positively_homogeneous(residual: bool) -> None:
    torch.manual_seed(0)
    model = build_model(spec2d("convnet", residual, rescale=True)).eval()
    x = torch.randn(3, 4, 12, 12, dtype=torch.float64)
    model.double()
    with torch.no_grad():
        torch.testing.assert_close(model(7.5 * x), 7.5 * model(x))
        # and it is not the plain model: the network saw x / rms(x)
        plain = build_model(spec2d("convnet", residual)).double().eval()
        plain.load_state_dict(model.state_dict())
        assert not torch.allclose(plain(x), model(x))
        # an all-zero input stays finite
        assert torch.isfinite(model(torch.zeros_like(x))).all()


def test_a_rescaled_residual_rsteer_at_initialisation_stays_exactly_c4_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model(spec2d("rsteer", True, rescale=True)).eval()
    x = torch.randn(4, 4, 12, 12)
    ee = equivariance_error(model, x, C4(), model.in_layout, model.out_layout)
    assert ee["ee_rel"] <= 1e-5 and ee["output_mean_abs"] > 1e-2
    assert ModelSpec.from_dict(model.spec.to_dict()).rescale
