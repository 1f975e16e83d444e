"""Hyperbolic MoE: routing reference, k-means initialisation, manifold membership under training."""

import geoopt
import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.nn import poincare as pb
from bkdsl.nn.hyperbolic_moe import (HyperbolicMoE, einstein_midpoint, hyperbolic_kmeans,
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


@pytest.mark.parametrize("top_k,normalize", [(2, True), (1, False)])
def test_centroids_stay_on_the_ball_under_riemannian_adam(top_k, normalize):
    torch.manual_seed(0)
    moe = HyperbolicMoE(4, 3, top_k=top_k, normalize=normalize)
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
