"""`teleport = dyson_teleport(...)` in a train block: attached by the runner, checked by `check`."""

import torch

from bkdsl.api import check_source, compile_source
from bkdsl.train.loop import run
from bkdsl.train.plan import plan_from_compiled
from bkdsl.train.teleport import stack_modules

SPEC = """
data ws = woods_saxon(samples = 48, nr = 8, step = 0.5 fm, radius = [3.0, 7.0] fm,
                      diffuseness = [0.45, 0.65] fm, rho0 = 0.16 fm^-3, split = [0.5, 0.25, 0.25],
                      normalize = minmax, seed = 7)
block dense(w: int) {
  input x : [B, w]
  output tanh(linear(x, w))
}
model deep(width: int = 8, depth: int = 6) {
  input shape : [B, 2]
  h = repeat(dense(width), depth)(tanh(linear(shape, width)))
  output rho = linear(h, 8)
}
loss fit = mse(rho)
train t {
  model = deep()
  data = ws
  loss = fit
  optimizer = sgd(lr = 0.1)
  TELEPORT
  batch = 8
  steps = 4
  seed = 0
}
"""


def _final(tmp_path, name, teleport):
    c = compile_source(SPEC.replace("TELEPORT", teleport), "t.bk")
    plan = plan_from_compiled(c, device="cpu")
    run(plan, tmp_path / name, quiet=True)
    from bkdsl.train.checkpoint import load_checkpoint

    return load_checkpoint(tmp_path / name / "checkpoints" / "last.safetensors").weights


def test_strength_zero_trains_exactly_like_no_teleport(tmp_path):
    a = _final(tmp_path, "plain", "")
    b = _final(tmp_path, "zero", 'teleport = dyson_teleport(over = "dense", strength = 0.0)')
    c = _final(tmp_path, "on", 'teleport = dyson_teleport(over = "dense", strength = 0.5)')
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)      # and a positive strength changes the run


def test_stack_modules_orders_the_copies():
    c = compile_source(SPEC.replace("TELEPORT", ""), "t.bk")
    m = c.module
    mods = stack_modules(m, "dense")
    assert mods == [m.dense] + [getattr(m, f"dense_{i}") for i in range(1, 6)]


def test_unknown_stack_is_refused_with_the_submodules_named(tmp_path):
    c = compile_source(SPEC.replace("TELEPORT", 'teleport = dyson_teleport(over = "dens", strength = 0.5)'), "t.bk")
    plan = plan_from_compiled(c, device="cpu")
    try:
        run(plan, tmp_path / "bad", quiet=True)
    except Exception as e:  # BkError
        d = e.diagnostic
        assert d.code == "E0609" and "dens" in d.message and "dense" in (d.help or "")
    else:
        raise AssertionError("a teleport over a missing stack must be refused")


def test_check_refuses_bad_teleport_parameters():
    diags = check_source(SPEC.replace("TELEPORT", 'teleport = dyson_teleport(over = "dense", strength = -1)'), "t.bk")
    assert any(d.code == "E0201" and "strength" in d.message for d in diags)
    diags = check_source(SPEC.replace("TELEPORT", 'teleport = adam(lr = 1.0)'), "t.bk")
    assert any(d.code == "E0609" for d in diags)
