"""Poincaré-ball ops: float32 stability up to ‖x‖ = 1 − 1e-6, and the algebraic laws they must keep."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bkdsl.nn import poincare as pb



radius = st.one_of(st.floats(0.0, 0.999), st.floats(0.999, 1.0 - 1e-6),
                   st.just(1.0 - 1e-6), st.just(0.0))
seed = st.integers(0, 2**31 - 1)
dim = st.integers(1, 16)


def _point(r, d, s, dtype=torch.float32, batch=3):
    """Points of norm r (made in float64, then rounded to dtype) in random directions."""
    g = torch.Generator().manual_seed(s)
    v = torch.randn(batch, d, generator=g, dtype=torch.float64)
    v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-300)
    return (r * v).to(dtype)


def _finite(*ts):
    return all(torch.isfinite(t).all() for t in ts)


def _inside(x, c=1.0):
    return bool((torch.linalg.vector_norm(x.double(), dim=-1) < 1.0 / math.sqrt(c)).all())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(r1=radius, r2=radius, d=dim, s=seed)
def test_all_ops_finite_with_finite_gradients_float32(r1, r2, d, s):
    x = _point(r1, d, s).requires_grad_(True)
    y = _point(r2, d, s + 1).requires_grad_(True)
    m = torch.randn(d, d, generator=torch.Generator().manual_seed(s), dtype=torch.float32)
    m.requires_grad_(True)
    u = (3.0 * _point(1.0, d, s + 2) * (r1 * 20)).requires_grad_(True)  # tangent vectors up to ‖u‖ = 60
    outs = [pb.expmap0(u), pb.logmap0(x), pb.mobius_add(x, y), pb.mobius_matvec(m, x), pb.dist(x, y),
            pb.dist(x, x.detach())]
    assert all(o.dtype == torch.float32 for o in outs)
    assert _finite(*outs)
    for o in (outs[0], outs[2], outs[3]):
        assert _inside(o)
    loss = sum(o.sum() for o in outs)
    grads = torch.autograd.grad(loss, (x, y, m, u))
    assert _finite(*grads)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(r1=radius, r2=radius, d=dim, s=seed)
def test_distance_float32_keeps_its_digits(r1, r2, d, s):
    """Against the same formula in float64 on the same (rounded) inputs: relative error ≤ 1e-6."""
    x, y = _point(r1, d, s), _point(r2, d, s + 1)
    got = pb.dist(x, y).double()
    x64, y64 = x.double(), y.double()
    t = ((x64 - y64) ** 2).sum(-1) / ((1 - (x64 ** 2).sum(-1)) * (1 - (y64 ** 2).sum(-1)))
    want = 2 * torch.asinh(t.sqrt())
    assert ((got - want).abs() <= 1e-6 * want.abs() + 1e-30).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(r1=radius, r2=radius, d=dim, s=seed)
def test_distance_laws(r1, r2, d, s):
    x, y = _point(r1, d, s, torch.float64), _point(r2, d, s + 1, torch.float64)
    dxy = pb.dist(x, y)
    torch.testing.assert_close(dxy, pb.dist(y, x))
    assert (dxy >= 0).all()
    assert (pb.dist(x, x) == 0).all()
    # d(0, x) = 2 artanh ‖x‖
    torch.testing.assert_close(pb.dist(torch.zeros_like(x), x),
                               2 * torch.atanh(torch.linalg.vector_norm(x, dim=-1)), rtol=1e-9, atol=1e-12)
    # isometry: left Möbius translation keeps distances (interior, where float64 keeps 9 digits)
    if max(r1, r2) < 0.99:
        a = _point(0.5, d, s + 7, torch.float64)
        torch.testing.assert_close(pb.dist(pb.mobius_add(a, x), pb.mobius_add(a, y)), dxy,
                                   rtol=1e-8, atol=1e-10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(r=st.floats(0.0, 0.999), d=dim, s=seed)
def test_exp_log_round_trip_and_cancellation(r, d, s):
    x, y = _point(r, d, s), _point(0.7, d, s + 1)
    torch.testing.assert_close(pb.expmap0(pb.logmap0(x)), x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pb.mobius_add(-x, pb.mobius_add(x, y)), y, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(pb.mobius_add(x, -x), torch.zeros_like(x), rtol=0, atol=1e-5)


def test_interior_agrees_with_geoopt():
    x, y = _point(0.6, 8, 1, torch.float64), _point(0.9, 8, 2, torch.float64)
    ball = pb.ball(1.0)
    torch.testing.assert_close(pb.dist(x, y), ball.dist(x, y))
    torch.testing.assert_close(pb.mobius_add(x, y), ball.mobius_add(x, y))
    torch.testing.assert_close(pb.logmap0(x), ball.logmap0(x))
    m = torch.randn(8, 8, dtype=torch.float64)
    torch.testing.assert_close(pb.mobius_matvec(m, x), ball.mobius_matvec(m, x))


def test_curvature_scales_the_ball():
    c = 4.0
    x, y = _point(0.2, 5, 3, torch.float64), _point(0.45, 5, 4, torch.float64)
    ball = pb.ball(c)
    torch.testing.assert_close(pb.dist(x, y, c), ball.dist(x, y))
    assert _inside(pb.expmap0(100 * x, c), c)


def test_geoopt_float32_saturates_where_dist_does_not():
    """Two float32 points at ‖x‖ = 1 − 1e-6 on opposite sides are ≈ 2·log(2/1e-6) ≈ 29 apart."""
    x = torch.zeros(1, 2)
    x[0, 0] = 1.0 - 1e-6
    want = 2 * 2 * math.atanh(float(x[0, 0]))
    assert abs(pb.dist(x, -x).item() - want) < 1e-5 * want
    assert pb.ball(1.0).dist(x, -x).item() < 0.7 * want  # geoopt's artanh clamp at 1 − 1e-7


def test_project_is_identity_inside_and_caps_outside():
    x = torch.tensor([[0.3, 0.4], [3.0, 4.0], [1.0, 0.0]])
    p = pb.project(x)
    torch.testing.assert_close(p[0], x[0])
    norms = torch.linalg.vector_norm(p.double(), dim=-1)
    assert (norms[1:] <= pb.max_norm(torch.float32) + 1e-7).all()
    torch.testing.assert_close(p[1] / norms[1].float(), x[1] / 5.0)
