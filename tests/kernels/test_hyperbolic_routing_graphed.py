"""GraphedRoute (the routing op pair as CUDA graphs) refuses what a CUDA graph cannot replay. Its
equality with the eager op is checked on the GPU by bench/issue20.py before it is timed."""

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.kernels.hyperbolic_routing.graphed import GraphedRoute


def test_graphed_route_refuses_cpu_tensors():
    x, mu = torch.rand(8, 4) * 0.1, torch.rand(3, 4) * 0.1
    with pytest.raises(BkError, match="CUDA") as e:
        GraphedRoute(x, mu, 2)
    assert e.value.code == "E0810"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graphed_route_equals_the_eager_op_and_refuses_other_shapes():
    gen = torch.Generator().manual_seed(0)
    x = (0.3 * torch.randn(256, 32, generator=gen)).cuda().requires_grad_(True)
    mu = (0.3 * torch.randn(16, 32, generator=gen)).cuda().requires_grad_(True)
    g = GraphedRoute(x, mu, 2)
    gate, idx, dist = g(x, mu)
    eg, ei, ed = torch.ops.bkdsl.hyperbolic_route(x, mu, 2, 1.0)
    assert torch.equal(idx, ei) and torch.equal(gate, eg) and torch.equal(dist, ed)
    with pytest.raises(BkError, match="backward") as e:
        g(x, mu)                                   # a second recorded forward before the backward
    assert e.value.code == "E0811"
    gx, gmu = torch.autograd.grad(gate.sum() + dist.sum(), (x, mu))
    ex, emu = torch.autograd.grad(eg.sum() + ed.sum(), (x, mu))
    assert torch.equal(gx, ex) and torch.equal(gmu, emu)
    with pytest.raises(BkError, match="captured") as e:
        g(x[:128], mu)
    assert e.value.code == "E0810"
