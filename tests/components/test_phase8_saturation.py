"""The Poincaré residual stream of phase8 must start inside the ball (issue #15, docs/phase8.md "Why
phase8 plateaus"): with the former update x = h ⊕ exp₀(f + a) every token sat at ‖x‖ = 1 − 1e-6 (the
float32 boundary) after the first layer, where exp₀ and ⊕ have no gradient left (the experts got a
gradient norm of 2e-4 against 1.9 for the read-out). The spec's default `step` keeps the stream inside;
`step = 1.0` (the old update) must fail the same check, so the test can fail."""

from __future__ import annotations

import pytest
import torch

import bkdsl
from bkdsl.nn.hyperbolic_moe import HyperbolicMoE
from bkdsl.train.reports import data_dependent_init
from tests.conftest import ROOT

SMALL = "d = 64, layers = 2, heads = 4, experts = 4, blk = 32, hidden = 32"


def _stream(step: str | None) -> tuple[float, float]:
    """(largest ‖x‖ after any layer, gradient norm of all experts) at initialisation on bytes of a spec."""
    model_s = f"phase8({SMALL}{', step = ' + step if step else ''})"
    torch.manual_seed(0)
    m = bkdsl.compile_file(ROOT / "specs" / "phase8.bk", overrides={"train.model": model_s}).module
    text = (ROOT / "specs" / "phase8.bk").read_bytes()[:16 * 129]
    w = torch.tensor(list(text), dtype=torch.long).view(16, 129)
    data_dependent_init(m, lambda mm: mm(w[:, :-1]))
    norms: list[float] = []
    for name, mod in m.named_modules():
        if type(mod).__name__ == "BkLayer":
            mod.register_forward_hook(lambda mod, a, o: norms.append(float(o.detach().norm(dim=-1).max())))
    logits = m(w[:, :-1])["logits"]
    torch.nn.functional.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1)).backward()
    g2 = sum(float(p.grad.pow(2).sum()) for mod in m.modules() if isinstance(mod, HyperbolicMoE)
             for p in mod.experts.parameters() if p.grad is not None)
    assert norms, "no BkLayer outputs seen"
    return max(norms), g2 ** 0.5


def test_default_stream_stays_inside_the_ball_and_experts_learn():
    top, g = _stream(None)
    assert top < 1 - 1e-3, f"residual stream at the boundary: max ‖x‖ = {top}"
    assert g > 1e-2, f"experts get no gradient: {g}"


def test_old_update_saturates():
    top, g = _stream("1.0")
    assert top > 1 - 1e-5
    assert g < 1e-2
