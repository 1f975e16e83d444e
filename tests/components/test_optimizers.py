"""Optimizer components build their torch/geoopt optimizers from the schema's defaults (one place)."""

from __future__ import annotations

import geoopt
import pytest
import torch

from bkdsl import registry
from bkdsl.components.optimizers import STABILIZE
from bkdsl.diagnostics import BkError
from bkdsl.train.optim import build_optimizer


def _model():
    return torch.nn.Linear(3, 2)


@pytest.mark.parametrize("name, cls, wd", [("sgd", torch.optim.SGD, 0.0), ("adam", torch.optim.Adam, 0.0),
                                           ("adamw", torch.optim.AdamW, 1e-2),
                                           ("riemannian_sgd", geoopt.optim.RiemannianSGD, 0.0),
                                           ("riemannian_adam", geoopt.optim.RiemannianAdam, 0.0)])
def test_builtin_optimizers_build_through_the_registry(name, cls, wd):
    comp = registry.lookup(name, "optimizer")
    assert isinstance(comp.from_args({"lr": 1e-3}), registry.Optimizer)
    opt = build_optimizer(name, {"lr": 1e-3}, _model())
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["weight_decay"] == wd
    if name.startswith("riemannian"):
        assert opt._stabilize == STABILIZE


def test_bad_parameters_and_unknown_names_are_diagnostics():
    with pytest.raises(BkError) as e:
        build_optimizer("adam", {"lr": -1.0}, _model())
    assert e.value.diagnostic.code == "E0201"
    with pytest.raises(BkError) as e:
        build_optimizer("adamm", {"lr": 1e-3}, _model())
    assert e.value.diagnostic.code == "E0609" and "adam" in e.value.diagnostic.help


def test_a_euclidean_optimizer_is_refused_for_manifold_parameters():
    m = _model()
    m.ball = geoopt.ManifoldParameter(torch.zeros(2, 2), manifold=geoopt.PoincareBall())
    with pytest.raises(BkError) as e:
        build_optimizer("adamw", {"lr": 1e-3}, m)
    assert e.value.diagnostic.code == "E0608" and "riemannian_adam" in e.value.diagnostic.help
    assert type(build_optimizer("riemannian_adam", {"lr": 1e-3}, m)) is geoopt.optim.RiemannianAdam
