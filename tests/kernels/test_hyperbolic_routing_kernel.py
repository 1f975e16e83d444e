"""The fused routing kernel (CPU interpreter) against the float64 reference, and the custom op."""

import pytest
import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels import hyperbolic_routing as kh
from bkdsl.nn import poincare as pb
from bkdsl.nn.hyperbolic_moe import HyperbolicMoE, hyperbolic_route, hyperbolic_route_reference




def _ball_points(n, d, gen, scale=2.0):
    return pb.expmap0(scale * torch.randn(n, d, generator=gen))


def _rel_err(got, want):
    """max |got − want| / |want| (float64 want); where want = 0, got must be 0 to 1e-30."""
    got = got.double()
    err = (got - want).abs()
    pos = want.abs() > 0
    rel = torch.where(pos, err / torch.where(pos, want.abs(), 1.0), err * 1e30)
    return rel.max().item()


def _check_against_reference(x, mu, k, c=1.0, tol=1e-5):
    gate, idx, dist = kh.hyperbolic_route_triton(x, mu, k, c)
    rg, ri, rd = hyperbolic_route_reference(x.double(), mu.double(), k, c)
    # the selected experts' distances are the k smallest (ties may swap indices, not distances)
    assert _rel_err(dist, rd) <= tol
    assert _rel_err(gate, rg) <= tol
    # and they are the distances to the experts named in idx
    d_named = pb.dist(x.double()[:, None, :], mu.double()[idx], c)
    assert _rel_err(dist, d_named) <= tol
    return idx, ri


# (T, E, D, k): D not a multiple of BLOCK_D, T not a multiple of BLOCK_T, E < 16 (padded), k = 1..4
@pytest.mark.parametrize("T,E,D,k", [(70, 6, 40, 2), (33, 64, 64, 4), (5, 3, 7, 1), (64, 17, 33, 3)])
def test_matches_reference_on_random_points(T, E, D, k):
    gen = torch.Generator().manual_seed(T * 1000 + E)
    x, mu = _ball_points(T, D, gen), _ball_points(E, D, gen)
    idx, ri = _check_against_reference(x, mu, k)
    assert (idx == ri).float().mean() > 0.99


def test_boundary_and_near_coincident_points():
    """Centroids at ‖μ‖ = 1 − 1e-6 and 0.5; tokens within 1e-5..1e-3 (relative) of one of them."""
    gen = torch.Generator().manual_seed(7)
    E, D, T = 16, 48, 96
    dirs = torch.randn(E, D, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    radius = torch.tensor([1 - 1e-6] * 8 + [0.5] * 8, dtype=torch.float64)
    mu = (dirs * radius[:, None]).float()
    owner = torch.randint(E, (T,), generator=gen)
    base = mu[owner].double()
    step = torch.logspace(-5, -3, T, dtype=torch.float64)[:, None] * (1 - base.norm(dim=1, keepdim=True))
    x = pb.project((base + step * torch.randn(T, D, generator=gen, dtype=torch.float64)).float())
    x[:4] = mu[owner[:4]]                      # exactly coincident: d = 0, gate = 1
    idx, _ = _check_against_reference(x, mu, 2)
    assert (idx[:, 0] == owner).all()
    gate, _, dist = kh.hyperbolic_route_triton(x[:4], mu, 1)
    assert (dist == 0).all() and (gate == 1).all()


def test_tokens_at_the_boundary_far_from_everything():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 24, generator=gen, dtype=torch.float64)
    x = (x / x.norm(dim=1, keepdim=True) * (1 - 1e-6)).float()
    mu = _ball_points(9, 24, gen)
    _check_against_reference(x, mu, 3)


def test_curvature():
    gen = torch.Generator().manual_seed(5)
    c = 2.5
    x, mu = pb.expmap0(torch.randn(20, 16, generator=gen), c), pb.expmap0(torch.randn(5, 16, generator=gen), c)
    _check_against_reference(x, mu, 2, c)


def test_custom_op_gradients_match_reference_autograd():
    gen = torch.Generator().manual_seed(11)
    x, mu = _ball_points(30, 20, gen), _ball_points(7, 20, gen)
    wg, wd = torch.randn(30, 2, generator=gen), torch.randn(30, 2, generator=gen)
    grads = []
    for mode in ("triton", "reference"):
        xr, mr = x.clone().requires_grad_(True), mu.clone().requires_grad_(True)
        with dispatch.force(mode):
            if mode == "triton":
                gate, idx, dist = torch.ops.bkdsl.hyperbolic_route(xr, mr, 2, 1.0)
            else:
                gate, idx, dist = hyperbolic_route(xr, mr, 2)
        grads.append(torch.autograd.grad((gate * wg).sum() + (dist * wd).sum(), (xr, mr)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_opcheck_and_compile_and_export():
    gen = torch.Generator().manual_seed(2)
    x, mu = _ball_points(12, 8, gen), _ball_points(4, 8, gen)
    torch.library.opcheck(torch.ops.bkdsl.hyperbolic_route.default, (x, mu, 2, 1.0),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))

    def mix(x, mu):
        gate, idx, dist = torch.ops.bkdsl.hyperbolic_route(x, mu, 2, 1.0)
        return (gate / gate.sum(-1, keepdim=True) * dist).sum(-1)

    with dispatch.force("reference"):
        out = torch.compile(mix, fullgraph=True, backend="aot_eager")(x, mu)
        torch.testing.assert_close(out, mix(x, mu))

    class Mix(torch.nn.Module):
        def forward(self, x, mu):
            return mix(x, mu)

    ep = torch.export.export(Mix(), (x, mu))
    assert torch.ops.bkdsl.hyperbolic_route.default in [n.target for n in ep.graph.nodes]


def test_moe_forward_through_the_kernel_matches_reference():
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(0)
    moe = HyperbolicMoE(8, 5, top_k=2)
    x = _ball_points(40, 8, gen)
    with dispatch.force("triton"):
        y_t = moe(x)
    with dispatch.force("reference"):
        y_r = moe(x)
    torch.testing.assert_close(y_t, y_r, rtol=1e-4, atol=1e-5)
