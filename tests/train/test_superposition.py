"""Superposition optimizers against their references: PI² (K = 1, σ = 0) is the base step, natural
gradient with the identity Fisher is SGD, the Woodbury solve is the dense solve, distillation with
β = 0 is Adam; fail-closed on non-finite losses and on a bare step()."""

import copy
import math

import pytest
import torch

from bkdsl import registry
from bkdsl.train.superposition import (EnsembleDistill, FunctionalModel, NaturalGradient, PI2Adam, PI2SGD,
                                       natural_direction, particle_weights, teacher_mixture)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 8)
        self.b = torch.nn.Linear(8, 2)

    def forward(self, x):
        return {"y": self.b(torch.tanh(self.a(x)))}


def mse(out, batch):
    v = ((out["y"] - batch["y"]) ** 2).mean()
    return v, {"mse": v}


def _setup(seed=0):
    torch.manual_seed(seed)
    net = Net()
    g = torch.Generator().manual_seed(seed + 1)
    batch = {"x": torch.randn(16, 3, generator=g), "y": torch.randn(16, 2, generator=g)}
    return net, batch


def _step(net, batch, opt, functional):
    opt.zero_grad()
    loss, _ = mse(net(batch["x"]), batch)
    loss.backward()
    if functional:
        opt.step_with(FunctionalModel(net, ["x"], mse), batch)
    else:
        opt.step()


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_pi2_with_one_unperturbed_particle_is_the_plain_step(base):
    net, batch = _setup()
    ref = copy.deepcopy(net)
    cls, ref_cls = (PI2SGD, torch.optim.SGD) if base == "sgd" else (PI2Adam, torch.optim.Adam)
    opt = cls(net.parameters(), lr=1e-2, particles=1, sigma=0.0)
    ref_opt = ref_cls(ref.parameters(), lr=1e-2)
    for _ in range(3):
        _step(net, batch, opt, True)
        _step(ref, batch, ref_opt, False)
    assert _same(net, ref)
    assert torch.equal(opt.last_weights, torch.ones(1))


def test_pi2_moves_toward_the_better_particles():
    net, batch = _setup()
    opt = PI2SGD(net.parameters(), lr=0.0, particles=64, sigma=0.05, temperature=50.0, seed=3)
    before = float(mse(net(batch["x"]), batch)[0].detach())
    for _ in range(20):
        _step(net, batch, opt, True)
    after = float(mse(net(batch["x"]), batch)[0].detach())
    assert after < before                                   # zeroth-order descent without gradients
    w = opt.last_weights
    assert w.shape == (64,) and float(w.sum()) == pytest.approx(1.0, abs=1e-6) and float(w.max()) < 1


def test_particle_weights_fail_closed():
    w = particle_weights(torch.tensor([1.0, float("nan"), 2.0, float("inf")]), 5.0)
    assert w[1] == 0 and w[3] == 0 and float(w.sum()) == pytest.approx(1.0)
    assert bool(torch.isnan(particle_weights(torch.tensor([float("nan")] * 3), 1.0)).all())


def test_pi2_refuses_a_step_where_every_particle_is_non_finite():
    net, batch = _setup()
    bad = dict(batch, y=torch.full_like(batch["y"], float("nan")))
    opt = PI2SGD(net.parameters(), lr=0.0, particles=4, sigma=0.1)
    with pytest.raises(FloatingPointError):
        opt.step_with(FunctionalModel(net, ["x"], mse), bad)


@pytest.mark.parametrize("cls", [PI2SGD, NaturalGradient, EnsembleDistill])
def test_a_bare_step_is_refused(cls):
    net, _ = _setup()
    opt = cls(net.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="step_with"):
        opt.step()


def test_natural_gradient_with_identity_fisher_is_sgd():
    net, batch = _setup()
    ref = copy.deepcopy(net)
    opt = NaturalGradient(net.parameters(), lr=0.05, damping=0.0, fisher="identity", momentum=0.9)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        _step(net, batch, opt, True)
        _step(ref, batch, ref_opt, False)
    assert _same(net, ref)


def test_woodbury_equals_the_dense_damped_solve():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(6, 40, generator=g, dtype=torch.float64)
    v = torch.randn(40, generator=g, dtype=torch.float64)
    dense = torch.linalg.solve(1e-2 * torch.eye(40, dtype=torch.float64) + u.T @ u, v)
    assert torch.allclose(natural_direction(u, v, 1e-2), dense, atol=1e-9)
    with pytest.raises(ValueError):
        natural_direction(u, v, 0.0)


def test_empirical_fisher_step_uses_per_sample_gradients():
    net, batch = _setup()
    opt = NaturalGradient(net.parameters(), lr=1.0, damping=1e-2, fisher="empirical", max_samples=16)
    opt.zero_grad()
    mse(net(batch["x"]), batch)[0].backward()
    g = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).double()
    # reference: per-sample gradients by a Python loop, then the dense solve
    rows = []
    for i in range(16):
        net.zero_grad()
        one = {k: v[i:i + 1] for k, v in batch.items()}
        mse(net(one["x"]), one)[0].backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).double())
    u = torch.stack(rows) / math.sqrt(16)
    expect = torch.linalg.solve(1e-2 * torch.eye(u.shape[1], dtype=torch.float64) + u.T @ u, g)
    net.zero_grad()
    mse(net(batch["x"]), batch)[0].backward()
    before = [p.detach().clone() for p in net.parameters()]
    opt.step_with(FunctionalModel(net, ["x"], mse), batch)
    moved = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, net.parameters())]).double()
    assert torch.allclose(moved, expect, rtol=1e-4, atol=1e-6)


def test_distillation_without_the_kl_term_is_adam():
    net, batch = _setup()
    ref = copy.deepcopy(net)
    opt = EnsembleDistill(net.parameters(), lr=1e-2, particles=4, sigma=0.05, beta=0.0)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    for _ in range(3):
        _step(net, batch, opt, True)
        _step(ref, batch, ref_opt, False)
    assert _same(net, ref)


def test_distillation_term_pulls_toward_the_weighted_teachers():
    net, batch = _setup()
    ref = copy.deepcopy(net)
    opt = EnsembleDistill(net.parameters(), lr=1e-2, particles=8, sigma=0.05, beta=5.0, seed=1)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    _step(net, batch, opt, True)
    _step(ref, batch, ref_opt, False)
    assert not _same(net, ref)


def test_teacher_mixture():
    w = torch.tensor([0.25, 0.75])
    t = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])   # [K, B, C] logits
    p = teacher_mixture(t, w, "categorical")
    assert torch.allclose(p, torch.tensor([[0.25 * 0.5 + 0.75 * 0.75, 0.25 * 0.5 + 0.75 * 0.25]]))
    assert torch.allclose(teacher_mixture(t, w, "gaussian"), 0.75 * t[1])


def test_registry_components_build_the_optimizers():
    net, _ = _setup()
    for name, kw, cls in [("pi2", {"lr": 1e-3}, PI2Adam), ("pi2", {"lr": 1e-3, "base": "sgd"}, PI2SGD),
                          ("natural_gradient", {"lr": 0.1}, NaturalGradient),
                          ("ensemble_distill", {"lr": 1e-3}, EnsembleDistill)]:
        comp = registry.lookup(name, "optimizer").from_args(kw)
        assert isinstance(comp.build(list(net.parameters())), cls)
    from bkdsl.diagnostics import BkError
    with pytest.raises(BkError) as e:
        registry.lookup("natural_gradient", "optimizer").from_args({"lr": 0.1, "damping": 0.0}).build(list(net.parameters()))
    assert e.value.diagnostic.code == "E0201"


def test_pure_pi2_skips_the_backward_pass():
    net, _ = _setup()
    assert PI2SGD(net.parameters(), lr=0.0).needs_backward is False
    assert PI2Adam(net.parameters(), lr=1e-3).needs_backward is True
    assert EnsembleDistill(net.parameters(), lr=1e-3).needs_backward is True


RUNNER_SPEC = """
data ws = woods_saxon(samples = 48, nr = 8, step = 0.5 fm, radius = [3.0, 7.0] fm,
                      diffuseness = [0.45, 0.65] fm, rho0 = 0.16 fm^-3, split = [0.5, 0.25, 0.25],
                      normalize = minmax, seed = 7)
model m(width: int = 8) {
  input shape : [B, 2]
  output rho = linear(tanh(linear(shape, width)), 8)
}
loss fit = mse(rho)
train t {
  model = m()
  data = ws
  loss = fit
  optimizer = OPT
  batch = 8
  steps = 3
  seed = 0
}
"""


@pytest.mark.parametrize("opt", ['pi2(lr = 0.0, particles = 4, sigma = 0.01)',
                                 'natural_gradient(lr = 0.05, damping = 1e-2, fisher = "empirical")',
                                 'ensemble_distill(lr = 1e-3, particles = 2)'])
def test_the_runner_steps_the_functional_optimizers(tmp_path, opt):
    from bkdsl.api import compile_source
    from bkdsl.train.checkpoint import load_checkpoint
    from bkdsl.train.loop import run
    from bkdsl.train.plan import plan_from_compiled

    c = compile_source(RUNNER_SPEC.replace("OPT", opt), "s.bk")
    plan = plan_from_compiled(c, device="cpu")
    torch.manual_seed(0)
    init = plan.build_model().state_dict()
    final = run(plan, tmp_path / "r", quiet=True)
    assert final["status"] == "completed" and final["global_step"] == 3
    w = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.safetensors").weights
    assert any(not torch.equal(init[k], w[k]) for k in init)
