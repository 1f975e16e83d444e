"""Hyperbolic MoE: routing reference, k-means initialisation, manifold membership under training."""

import geoopt
import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.nn import poincare as pb
from bkdsl.nn.hyperbolic_moe import (HyperbolicMoE, distance_gates, einstein_midpoint, hyperbolic_kmeans,
                                     hyperbolic_route_reference, route_backward)




def _points(n, d, seed, scale=1.5, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return pb.expmap0(scale * torch.randn(n, d, generator=g, dtype=dtype))


def test_route_reference_picks_nearest_and_gates_are_exp_minus_d():
    x, mu = _points(50, 6, 0), _points(7, 6, 1)
    gate, idx, dist = hyperbolic_route_reference(x, mu, 3)
    full = pb.dist(x[:, None, :], mu[None, :, :])
    torch.testing.assert_close(dist, full.sort(1).values[:, :3])
    torch.testing.assert_close(gate, torch.exp(-dist))
    assert (dist[:, :-1] <= dist[:, 1:]).all()
    with pytest.raises(BkError):
        hyperbolic_route_reference(x, mu, 8)


@pytest.mark.parametrize("seed", range(3))
def test_route_backward_closed_form_matches_autograd(seed):
    x, mu = _points(25, 5, seed, dtype=torch.float64), _points(6, 5, seed + 10, dtype=torch.float64)
    x.requires_grad_(True)
    mu.requires_grad_(True)
    gate, idx, dist = hyperbolic_route_reference(x, mu, 2)
    g = torch.Generator().manual_seed(seed)
    wg, wd = torch.randn(25, 2, generator=g, dtype=torch.float64), torch.randn(25, 2, generator=g, dtype=torch.float64)
    want = torch.autograd.grad((gate * wg).sum() + (dist * wd).sum(), (x, mu))
    got = route_backward(x.detach(), mu.detach(), idx, wg, wd)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_einstein_midpoint_laws():
    x = _points(1, 4, 2, dtype=torch.float64)
    torch.testing.assert_close(einstein_midpoint(x, torch.ones(1, 1)), x)
    sym = torch.cat([x, -x])                     # symmetric pair → the origin
    torch.testing.assert_close(einstein_midpoint(sym, torch.ones(1, 2)), torch.zeros(1, 4, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    # the midpoint of two points lies on their geodesic, equidistant from both
    y = _points(1, 4, 3, dtype=torch.float64)
    m = einstein_midpoint(torch.cat([x, y]), torch.ones(1, 2))
    torch.testing.assert_close(pb.dist(m, x), pb.dist(m, y))
    torch.testing.assert_close(pb.dist(m, x) + pb.dist(m, y), pb.dist(x, y))


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(4)
    centers = pb.expmap0(3.0 * torch.randn(4, 5, generator=g, dtype=torch.float64))
    pts = torch.cat([pb.mobius_add(c.expand(30, 5), pb.expmap0(0.05 * torch.randn(30, 5, generator=g,
                                                                                     dtype=torch.float64)))
                     for c in centers])
    mu = hyperbolic_kmeans(pts, 4, iters=10, generator=torch.Generator().manual_seed(0))
    assert mu.shape == (4, 5)
    nearest = pb.dist(centers[:, None, :], mu[None, :, :]).min(1).values
    assert (nearest < 0.1).all()


def test_moe_forward_stays_on_ball_and_reports_load():
    torch.manual_seed(0)
    moe = HyperbolicMoE(6, 4, top_k=2)
    x = _points(3 * 10, 6, 5).reshape(3, 10, 6)
    y = moe(x)
    assert y.shape == x.shape
    assert (torch.linalg.vector_norm(y.double(), dim=-1) < 1).all()
    lb = moe.load_balance()
    torch.testing.assert_close(lb["fraction"].sum(), torch.tensor(1.0))
    assert lb["max_over_mean"] >= 1.0 and 0 <= lb["idle"] < 4


def test_init_from_batch_puts_centroids_on_the_data():
    torch.manual_seed(0)
    moe = HyperbolicMoE(5, 3, top_k=1)
    x = _points(90, 5, 6)
    moe.init_from_batch(x, iters=5, generator=torch.Generator().manual_seed(1))
    ok, reason = moe.manifold.check_point_on_manifold(moe.centroids, explain=True)
    assert ok, reason
    moe(x)
    assert moe.load_balance()["idle"] == 0


@pytest.mark.parametrize("top_k", [2, 1])
def test_centroids_stay_on_the_ball_under_riemannian_adam(top_k):
    torch.manual_seed(0)
    moe = HyperbolicMoE(4, 3, top_k=top_k)
    opt = geoopt.optim.RiemannianAdam(moe.parameters(), lr=5e-2)
    x = _points(32, 4, 8, scale=3.0)
    target = _points(32, 4, 9)
    start = moe.centroids.detach().clone()
    for _ in range(60):
        opt.zero_grad()
        loss = pb.dist(moe(x), target).pow(2).mean()
        loss.backward()
        assert torch.isfinite(moe.centroids.grad).all()
        opt.step()
    assert moe.manifold.check_point_on_manifold(moe.centroids)
    assert (torch.linalg.vector_norm(moe.centroids.double(), dim=-1) < 1).all()
    assert not torch.allclose(moe.centroids.detach(), start)  # they did move


def test_distance_gates_softmax_of_minus_d_over_t_and_raw_for_one():
    d = torch.tensor([[0.3, 0.7], [1.0, 1.0]])
    w = distance_gates(d, 0.5)
    e = torch.exp(-d / 0.5)
    torch.testing.assert_close(w, e / e.sum(-1, keepdim=True))
    torch.testing.assert_close(distance_gates(d[:, :1], 0.5), e[:, :1])


@pytest.mark.parametrize("metric", ["poincare", "euclidean"])
def test_gate_gradients_reach_the_centroids(metric):
    """The top-2 renormalised gate is differentiable in the distances: the centroids get a gradient of
    the size of the loss's, not the 1e-12 of a top-1 normalised gate (identically 1)."""
    torch.manual_seed(3)
    moe = HyperbolicMoE(6, 4, top_k=2, temperature=0.5, metric=metric)
    x = _points(64, 6, 4, scale=2.0)
    moe.init_from_batch(x, iters=3, generator=torch.Generator().manual_seed(0))
    out = moe(x)
    pb.logmap0(out).pow(2).sum().backward()
    g = moe.centroids.grad
    assert g is not None and torch.isfinite(g).all()
    assert g.abs().max() > 1e-4, g.abs().max()
    # the gates themselves carry it: with the experts frozen to a constant, only the gates depend on μ
    w, idx, dist = moe.route(x.reshape(-1, 6))
    moe.centroids.grad = None
    (w * torch.arange(2.0)).sum().backward()
    assert moe.centroids.grad.abs().max() > 1e-4


@pytest.mark.parametrize("metric", ["poincare", "euclidean"])
def test_centroids_move_under_training_and_travel_is_reported(metric):
    torch.manual_seed(5)
    moe = HyperbolicMoE(4, 3, top_k=2, metric=metric)
    x = _points(48, 4, 11, scale=2.0)
    moe.init_from_batch(x, iters=3, generator=torch.Generator().manual_seed(0))
    assert moe.centroid_travel().abs().max() == 0
    opt = geoopt.optim.RiemannianAdam(moe.parameters(), lr=1e-2)
    target = _points(48, 4, 12)
    for _ in range(5):
        opt.zero_grad()
        pb.dist(moe(x), target).pow(2).mean().backward()
        opt.step()
    travel = moe.centroid_travel()
    assert travel.shape == (3,) and torch.isfinite(travel).all() and (travel > 1e-4).all(), travel


def test_load_balance_max_over_min_refuses_an_idle_expert():
    moe = HyperbolicMoE(4, 3, top_k=1)
    moe.load.copy_(torch.tensor([0.5, 0.5, 0.0]))
    assert moe.load_balance()["max_over_min"] == float("inf")
    moe.load.copy_(torch.tensor([0.5, 0.25, 0.25]))
    assert moe.load_balance()["max_over_min"] == pytest.approx(2.0)


def test_bad_temperature_and_metric_are_coded_errors():
    with pytest.raises(BkError) as e:
        HyperbolicMoE(4, 3, temperature=0.0)
    assert e.value.code == "E0201"
    with pytest.raises(BkError):
        HyperbolicMoE(4, 3, metric="cosine")
