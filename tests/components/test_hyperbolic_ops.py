"""The hyperbolic ops in specs: Lorentz values typed and accepted where ops declare them, the curvature
check of the isometry, the Stiefel map's isometric claim, and the ops that help texts name exist."""

from __future__ import annotations

import torch

import bkdsl
from bkdsl.registry import lookup

HEAD = """manifold lor = lorentz(k = 2.0)
manifold ball = poincare(c = 0.5)
manifold st = stiefel()
"""

MODEL = HEAD + """
model hyp {
  input x : [B, 4]
  z = expmap0(lor, x)
  z = mobius_linear(z, 3)
  p = lorentz_to_poincare(z, ball)
  q = mobius_scalar_mul(p, 2.0)
  back = poincare_to_lorentz(q, lor)
  output t = logmap0(lor, back)
  output d = lorentz_dist(z, back)
  output v = lorentz_transp0(back, logmap0(lor, back))
}
"""


def errors(src):
    return [d for d in bkdsl.check_source(src) if d.is_error]


def test_lorentz_model_types_builds_and_runs():
    c = bkdsl.compile_source(MODEL)
    sig = c.model_signature(c.main_call)
    assert sig.outputs["t"].shape == ("B", 3) and sig.outputs["t"].manifold is None
    assert sig.outputs["d"].shape == ("B",) and sig.outputs["v"].shape == ("B", 4)
    torch.manual_seed(0)
    out = c.module(x=torch.randn(5, 4, dtype=torch.float64).float())
    assert all(torch.isfinite(v).all() for v in out.values())
    assert out["d"].shape == (5,)


def test_euclidean_op_refuses_a_lorentz_value():
    src = HEAD + "model m {\n  input x : [B, 4]\n  z = expmap0(lor, x)\n  output y = linear(z, 2)\n}\n"
    (d,) = errors(src)
    assert d.code == "E0402" and "lor" in d.message and "logmap0(lor" in d.help


def test_ball_op_refuses_a_lorentz_value_with_a_hint():
    src = HEAD + "model m {\n  input x : [B, 4]\n  z = expmap0(lor, x)\n  output y = mobius_add(z, z)\n}\n"
    (d,) = errors(src)
    assert d.code == "E0402" and "lorentz_to_poincare" in d.help


def test_isometry_needs_matching_curvatures():
    src = HEAD.replace("c = 0.5", "c = 1.0") + \
        "model m {\n  input x : [B, 4]\n  output p = lorentz_to_poincare(expmap0(lor, x), ball)\n}\n"
    (d,) = errors(src)
    assert d.code == "E0402" and "c = 1/k = 0.5" in d.message


def test_lorentz_dist_refuses_ball_points():
    src = HEAD + "model m {\n  input x : [B, 4]\n  p = expmap0(ball, x)\n  output d = lorentz_dist(p, p)\n}\n"
    (d,) = errors(src)
    assert d.code == "E0402" and "Lorentz" in d.message


STIEFEL = HEAD + """
model rot : isometric {
  input x : [B, 4]
  param W : [6, 4] on st
  output y = stiefel_map(x, W)
}
"""


def test_stiefel_map_isometric_claim_proven():
    c = bkdsl.compile_source(STIEFEL)
    (claim,) = [r for r in c.ir.claims if r.subject == "rot"]
    assert claim.proof.holds and "stiefel_map" in claim.proof.detail
    comp = next(n.target for n in c.model_ir(c.main_call).nodes if n.op == "component")
    proof = comp.prove("isometric")
    assert proof.how == "analytic+probe" and "WᵀW = I" in proof.detail
    w = dict(c.module.named_parameters())["W"].detach().double()
    assert (w.T @ w - torch.eye(4, dtype=torch.float64)).abs().max() < 1e-6


def test_stiefel_map_needs_a_stiefel_parameter():
    src = STIEFEL.replace("[6, 4] on st", "[6, 4]")
    (d,) = errors(src)
    assert d.code == "E0402" and "stiefel" in d.message


def test_ops_named_by_help_texts_exist():
    for name in ("mobius_scalar_mul", "mobius_add", "logmap0", "expmap0", "mobius_linear"):
        assert lookup(name) is not None, name
