"""``--plugin``: a user's optimizer registered from a Python file trains a spec through ``bkdsl train``."""

from __future__ import annotations

import json
import os

import pytest

from bkdsl import registry
from bkdsl.cli import main

LION = '''
import json, os
import torch
from pydantic import BaseModel, Field
import bkdsl


class LionParams(BaseModel):
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0


class LionOptimizer(torch.optim.Optimizer):
    """Lion (Chen et al. 2023): u = sign(β1 m + (1 − β1) g); θ ← θ − lr (u + λ θ); m ← β2 m + (1 − β2) g."""

    steps = 0

    def __init__(self, params, lr, betas, weight_decay):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        LionOptimizer.steps += 1
        for g in self.param_groups:
            b1, b2 = g["betas"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - g["lr"] * g["weight_decay"])
                p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-g["lr"])
                m.mul_(b2).add_(p.grad, alpha=1 - b2)
        with open(os.environ["LION_LOG"], "w") as f:
            json.dump({"steps": LionOptimizer.steps}, f)


@bkdsl.component("lion_test", kind="optimizer")
class Lion(bkdsl.Component):
    Params = LionParams

    def build(self, params):
        return LionOptimizer(params, **self.params.model_dump())
'''

SPEC = '''data ws = woods_saxon(samples = 48, nr = 8, step = 0.5 fm, normalize = minmax)
model m {
  input shape : [B, 2]
  output rho = linear(tanh(linear(shape, 8)), 8)
}
loss l = mse(rho)
train t {
  model = m
  data = ws
  loss = l
  optimizer = lion_test(lr = 1e-3)
  batch = 16
  epochs = 1
}
'''


@pytest.fixture
def lion(tmp_path, monkeypatch):
    (tmp_path / "lion.py").write_text(LION)
    (tmp_path / "s.bk").write_text(SPEC)
    monkeypatch.setenv("LION_LOG", str(tmp_path / "lion.json"))
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path / "cache"))
    yield tmp_path
    registry._REGISTRY.pop("lion_test", None)


def test_a_user_optimizer_trains_a_spec_through_the_plugin(lion):
    rc = main(["--plugin", str(lion / "lion.py"), "train", str(lion / "s.bk"), "--out", str(lion / "run"),
               "--device", "cpu", "--quiet"])
    assert rc == 0
    final = json.loads((lion / "run" / "final.json").read_text())
    assert final["status"] == "completed"
    assert json.loads((lion / "lion.json").read_text())["steps"] >= 3  # 48 × 0.8 samples / 16 per batch


def test_without_the_plugin_the_optimizer_is_unknown_at_check_time(lion, capsys):
    registry._REGISTRY.pop("lion_test", None)
    assert main(["check", str(lion / "s.bk")]) == 1
    assert "lion_test" in capsys.readouterr().err


def test_a_plugin_that_fails_is_a_diagnostic_not_a_crash(tmp_path, capsys):
    (tmp_path / "bad.py").write_text("raise ValueError('nope')\n")
    (tmp_path / "s.bk").write_text("const a = 1\n")
    assert main(["--plugin", str(tmp_path / "bad.py"), "check", str(tmp_path / "s.bk")]) == 1
    assert "E0002" in capsys.readouterr().err
    assert main(["--plugin", "no_such_module_xyz", "check", str(tmp_path / "s.bk")]) == 1
    assert "E0102" in capsys.readouterr().err


def test_an_optimizer_without_build_is_refused_at_registration():
    import bkdsl

    with pytest.raises(TypeError, match="build"):
        bkdsl.component("no_build_test", kind="optimizer")(type("NoBuild", (bkdsl.Component,), {}))
    assert registry.lookup("no_build_test") is None
