"""bkdsl.nn.lorentz in float64 against the formulas it states: membership, exp/log inverse, distance,
parallel transport, the Lorentz ↔ Poincaré isometry, Möbius scalar multiplication and linear, the
Stiefel map; manifold membership after Riemannian optimizer steps (hypothesis)."""

from __future__ import annotations

import math

import geoopt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bkdsl.nn import lorentz as L
from bkdsl.nn import poincare as P

KS = [1.0, 0.5, 2.0]


def _pts(k, n=16, d=3, scale=1.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = scale * torch.randn(n, d, generator=g, dtype=torch.float64)
    return v, L.expmap0(v, k)


@pytest.mark.parametrize("k", KS)
def test_expmap0_on_hyperboloid_and_logmap0_inverse(k):
    v, x = _pts(k)
    assert x.shape == (16, 4) and (x[:, 0] > 0).all()
    assert (L.minkowski_inner(x, x) + k).abs().max() < 1e-11
    assert (L.logmap0(x, k) - v).abs().max() < 1e-12
    # the closed form: x = (√k cosh(‖v‖/√k), √k sinh(‖v‖/√k) v/‖v‖)
    r = v.norm(dim=-1, keepdim=True)
    ref = torch.cat([math.sqrt(k) * torch.cosh(r / math.sqrt(k)), math.sqrt(k) * torch.sinh(r / math.sqrt(k)) * v / r], -1)
    assert (x - ref).abs().max() < 1e-12


@pytest.mark.parametrize("k", KS)
def test_distance_formula_and_origin(k):
    v, x = _pts(k, seed=1)
    _, y = _pts(k, seed=2)
    ref = math.sqrt(k) * torch.acosh(-L.minkowski_inner(x, y) / k)
    assert (L.dist(x, y, k) - ref).abs().max() < 1e-12
    o = L.expmap0(torch.zeros(1, 3, dtype=torch.float64), k)
    assert (L.dist(o, x, k) - v.norm(dim=-1)).abs().max() < 1e-11   # d(o, exp_o(v)) = ‖v‖


@pytest.mark.parametrize("k", KS)
def test_parallel_transport_formula_and_norm(k):
    _, x = _pts(k, seed=3)
    w = torch.randn(16, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    u = L.transp0(x, w, k)
    o = torch.zeros_like(x)
    o[:, 0] = math.sqrt(k)
    lw = torch.cat([torch.zeros_like(w[:, :1]), w], -1)
    ref = lw + (L.minkowski_inner(x, lw) / (k - L.minkowski_inner(o, x)))[:, None] * (o + x)
    assert (u - ref).abs().max() < 1e-10
    assert L.minkowski_inner(u, x).abs().max() < 1e-10                          # tangent at x
    assert (L.minkowski_inner(u, u) - (w * w).sum(-1)).abs().max() < 1e-10      # norm preserved
    _, y = _pts(k, seed=5)
    back = L.transp(y, x, L.transp(x, y, u, k), k)
    # transport is invertible; geoopt's transp goes through logmap(x, y), which loses digits between far
    # points (‖u‖ ~ 20 here), hence a relative tolerance
    assert ((back - u).abs() / (1 + u.abs())).max() < 1e-6


@pytest.mark.parametrize("k", KS)
def test_lorentz_poincare_isometry_round_trip(k):
    _, x = _pts(k, seed=6, scale=3.0)
    _, y = _pts(k, seed=7, scale=3.0)
    px, py = L.to_poincare(x, k), L.to_poincare(y, k)
    assert (px.norm(dim=-1) < math.sqrt(k)).all()                               # inside 𝔻_{1/k}
    # round trip; x₀ ~ 7e3 here, and 1/(1 − c‖p‖²) amplifies the rounding of p by as much
    assert (L.from_poincare(px, k) - x).abs().max() / x.abs().max() < 1e-10
    d_ball = P.dist(px, py, c=1.0 / k)
    assert (d_ball - L.dist(x, y, k)).abs().max() < 1e-9                        # isometry


def test_geoopt_lorentz_to_poincare_is_not_an_isometry_for_k_not_1():
    """Why the map is written here: geoopt's lands on the unit ball whatever k."""
    from geoopt.manifolds.lorentz.math import lorentz_to_poincare

    k = 4.0
    _, x = _pts(k, seed=8)
    _, y = _pts(k, seed=9)
    g = lorentz_to_poincare(x, torch.tensor(k, dtype=torch.float64))
    gy = lorentz_to_poincare(y, torch.tensor(k, dtype=torch.float64))
    assert (P.dist(g, gy, c=1.0 / k) - L.dist(x, y, k)).abs().max() > 1e-2


@pytest.mark.parametrize("c", [1.0, 0.5])
def test_mobius_scalar_mul(c):
    g = torch.Generator().manual_seed(10)
    x = P.expmap0(0.7 * torch.randn(8, 3, generator=g, dtype=torch.float64), c=c)
    o = torch.zeros_like(x)
    for r in (0.5, 2.0, -1.0):
        y = L.mobius_scalar_mul(x, r, c)
        tol = 1e-10 if c == 1.0 else 1e-5   # geoopt's PoincareBall keeps c in float32
        assert (P.dist(o, y, c=c) - abs(r) * P.dist(o, x, c=c)).abs().max() < tol
        # the closed form tanh(r artanh(√c‖x‖)) x / (√c‖x‖)
        n = x.norm(dim=-1, keepdim=True)
        ref = torch.tanh(r * torch.atanh(math.sqrt(c) * n)) * x / (math.sqrt(c) * n)
        assert (y - ref).abs().max() < tol
    assert (L.mobius_scalar_mul(x, 1.0, c) - x).abs().max() < 1e-6


@pytest.mark.parametrize("model,curv", [("poincare", 1.0), ("lorentz", 1.0), ("lorentz", 2.0)])
def test_mobius_linear_formula(model, curv):
    torch.manual_seed(0)
    lin = L.MobiusLinear(3, 2, model, curv).double()
    v = torch.randn(5, 3, dtype=torch.float64)
    if model == "poincare":
        x = P.expmap0(0.5 * v, c=curv)
        ref = P.expmap0(P.logmap0(x, c=curv) @ lin.weight.T + lin.bias, c=curv)
        assert (P.ball(curv).projx(lin(x)) - lin(x)).abs().max() < 1e-12   # inside the ball
    else:
        x = L.expmap0(v, curv)
        ref = L.expmap0(L.logmap0(x, curv) @ lin.weight.T + lin.bias, curv)
        assert (L.minkowski_inner(lin(x), lin(x)) + curv).abs().max() < 1e-10
    assert (lin(x) - ref).abs().max() < 1e-12


def test_stiefel_map_is_isometric():
    w = torch.linalg.qr(torch.randn(7, 4, dtype=torch.float64))[0]
    x = torch.randn(10, 4, dtype=torch.float64)
    assert (L.stiefel_map(x, w).norm(dim=-1) - x.norm(dim=-1)).abs().max() < 1e-12


MANIFOLDS = {
    "lorentz": lambda: (geoopt.Lorentz(k=1.0), (6, 4)),
    "poincare": lambda: (geoopt.PoincareBall(c=1.0), (6, 3)),
    "stiefel": lambda: (geoopt.Stiefel(), (5, 3)),
    "sphere": lambda: (geoopt.Sphere(), (6, 2)),
}


def _member(man, x) -> float:
    """The largest violation of the manifold's defining equation."""
    if isinstance(man, geoopt.Lorentz):
        return float((L.minkowski_inner(x, x) + 1).abs().max())
    if isinstance(man, geoopt.PoincareBall):
        return float(torch.clamp(x.norm(dim=-1) - 1, min=0).max())
    if isinstance(man, geoopt.Stiefel):
        return float((x.T @ x - torch.eye(x.shape[1], dtype=x.dtype)).abs().max())
    return float((x.norm(dim=-1) - 1).abs().max())


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(sorted(MANIFOLDS)), lr=st.floats(1e-3, 0.1), seed=st.integers(0, 2 ** 16),
       opt=st.sampled_from(["adam", "sgd"]))
def test_membership_after_optimizer_steps(name, lr, seed, opt):
    """Every declared manifold's parameter stays on it under Riemannian Adam / SGD on a random linear loss
    ⟨p, t⟩ / numel (bounded Euclidean gradient: a squared distance to a far target makes the hyperboloid's
    Riemannian gradient grow like x₀ and RiemannianSGD overflow cosh at lr ≥ 0.25 — a step-size limit,
    not a membership failure)."""
    man, shape = MANIFOLDS[name]()
    g = torch.Generator().manual_seed(seed)
    init = torch.randn(*shape, generator=g, dtype=torch.float64)
    if isinstance(man, geoopt.Lorentz):
        init = L.expmap0(0.5 * init[:, 1:], 1.0)
    elif isinstance(man, geoopt.PoincareBall):
        init = P.expmap0(0.3 * init, c=1.0)
    p = geoopt.ManifoldParameter(man.projx(init), manifold=man)
    target = torch.randn(*shape, generator=g, dtype=torch.float64)
    o = (geoopt.optim.RiemannianAdam if opt == "adam" else geoopt.optim.RiemannianSGD)([p], lr=lr)
    for _ in range(5):
        o.zero_grad()
        ((p * target).sum() / p.numel()).backward()
        o.step()
    assert torch.isfinite(p).all()
    assert _member(man, p.detach()) < 1e-8
