"""Optimizers (manifold safety); schedules are tested in tests/components/test_schedules.py."""

import math

import geoopt
import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.train.optim import build_optimizer, load_optimizer_state, optimizer_state


class HypModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ball = geoopt.PoincareBall(c=1.0)
        g = torch.Generator().manual_seed(0)
        self.x = geoopt.ManifoldParameter(self.ball.expmap0(0.3 * torch.randn(8, 4, generator=g)), manifold=self.ball)
        st = geoopt.Stiefel()
        self.W = geoopt.ManifoldParameter(st.random(6, 3), manifold=st)
        self.lin = torch.nn.Linear(4, 4)

    def brockett(self):  # −tr(WᵀAW): its minimiser on the Stiefel manifold is the top-3 eigenspace of A
        A = torch.diag(torch.arange(1.0, 7.0))
        return -(self.W.T @ A @ self.W).diagonal().sum()

    def loss(self):
        target = self.ball.expmap0(torch.full((8, 4), 0.6))  # far out: pushes points toward the boundary
        return self.ball.dist(self.x, target).sum() + self.brockett() + self.lin(self.x).pow(2).mean()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_euclidean_optimizer_with_manifold_params_is_E0608(name):
    with pytest.raises(BkError) as e:
        build_optimizer(name, {"lr": 1e-2}, HypModel())
    assert e.value.code == "E0608" and "riemannian" in e.value.diagnostic.help
    assert "`x`" in e.value.diagnostic.message


def test_euclidean_optimizer_is_fine_without_manifold_params():
    assert isinstance(build_optimizer("adam", {"lr": 1e-2}, torch.nn.Linear(2, 2)), torch.optim.Adam)


@pytest.mark.parametrize("name,lr", [("riemannian_sgd", 0.02), ("riemannian_adam", 0.02)])
def test_riemannian_steps_keep_every_manifold_parameter_on_its_manifold(name, lr):
    m = HypModel()
    opt = build_optimizer(name, {"lr": lr, "momentum": 0.9} if name.endswith("sgd") else {"lr": lr}, m)
    for _ in range(800):  # many steps: drift would accumulate without stabilisation
        opt.zero_grad()
        m.loss().backward()
        opt.step()
    for p in (m.x, m.W):
        ok, why = p.manifold.check_point_on_manifold(p.detach(), explain=True, atol=1e-5, rtol=1e-5)
        assert ok, why
    assert float(m.x.detach().norm(dim=-1).max()) < 1.0


def test_optimizer_state_round_trips_without_pickle():
    m = HypModel()
    opt = build_optimizer("riemannian_adam", {"lr": 1e-2}, m)
    for _ in range(3):
        opt.zero_grad()
        m.loss().backward()
        opt.step()
    tensors, meta = optimizer_state(opt)
    import json

    meta = json.loads(json.dumps(meta))  # it is plain JSON
    m2 = HypModel()
    m2.load_state_dict(m.state_dict())
    opt2 = build_optimizer("riemannian_adam", {"lr": 1e-2}, m2)
    load_optimizer_state(opt2, meta, tensors)
    for o, mm in ((opt, m), (opt2, m2)):
        o.zero_grad()
        mm.loss().backward()
        o.step()
    assert torch.equal(m.x, m2.x) and torch.equal(m.W, m2.W)
