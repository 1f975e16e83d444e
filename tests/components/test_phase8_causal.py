"""Causality of the language models, compiled from their specs through the real compiler: changing the
byte at position j must leave the logits at every position < j exactly where they were — with random
weights (several seeds) and after a few training steps. The same check refutes the two-sided
variants (the test can fail), and the parts are checked one by one."""

from __future__ import annotations

import geoopt
import pytest
import torch

import bkdsl
from bkdsl.nn.bk_layers import GreenFunction
from bkdsl.kernels import dispatch
from bkdsl.nn.scattering_attention import ScatteringAttention, block_leading_score, scattering_score
from bkdsl.train.reports import data_dependent_init
from tests.conftest import ROOT

PHASE8 = "phase8(d = 32, layers = 2, heads = 2, experts = 4, blk = 16, hidden = 16, tau = 0.5)"
GPT = "gpt_baseline(d = 32, layers = 2, heads = 2, max_len = 128)"
N = 64
POSITIONS = (1, 9, 16, 17, 31, 47, 63)  # block starts, block interiors, the last position


def _compile(spec: str, model: str, replace: tuple[str, str] | None = None, drop_claim: bool = False
             ) -> torch.nn.Module:
    text = (ROOT / "specs" / spec).read_text()
    if replace:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1])
    if drop_claim:
        assert ") : causal {" in text
        text = text.replace(") : causal {", ") {")
    # a two-sided variant must also opt out of the next-token causality check (E0309) to compile at all
    ov = {"train.model": model, **({"train.allow_acausal": "true"} if replace else {})}
    return bkdsl.compile_source(text, spec, overrides=ov).module


def _leak(model: torch.nn.Module, seed: int) -> tuple[float, float]:
    """(largest change of the logits before j, smallest largest-change at or after j) over POSITIONS."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (3, N), generator=g)
    model.eval()
    with torch.no_grad(), dispatch.force("reference"):
        y0 = model(x)["logits"]
        before, after = 0.0, float("inf")
        for j in POSITIONS:
            x2 = x.clone()
            x2[:, j] = (x2[:, j] + 1 + torch.randint(0, 254, (3,), generator=g)) % 256
            dy = (model(x2)["logits"] - y0).abs()
            assert torch.isfinite(dy).all()
            before = max(before, float(dy[:, :j].max()))
            after = min(after, float(dy[:, j:].max()))
    return before, after


def _train_a_few_steps(model: torch.nn.Module, steps: int = 4) -> None:
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (4, N + 1), generator=g)
    with dispatch.force("reference"):
        data_dependent_init(model, lambda m: m(batch[:, :-1]))
        opt = geoopt.optim.RiemannianAdam(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(steps):
            opt.zero_grad()
            logits = model(batch[:, :-1])["logits"]
            torch.nn.functional.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1)).backward()
            opt.step()


@pytest.mark.parametrize("spec,model", [("phase8.bk", PHASE8), ("gpt_baseline.bk", GPT)])
@pytest.mark.parametrize("seed", [0, 1])
def test_logits_before_j_do_not_move_random_weights(spec, model, seed):
    torch.manual_seed(seed)
    before, after = _leak(_compile(spec, model), seed)
    assert before == 0.0, f"{spec}: byte j moved an earlier logit by {before:.3g}"
    assert after > 1e-4, "the perturbation must move the logits from j on (else the test proves nothing)"


@pytest.mark.parametrize("spec,model", [("phase8.bk", PHASE8), ("gpt_baseline.bk", GPT)])
def test_logits_before_j_do_not_move_after_training_steps(spec, model):
    torch.manual_seed(2)
    m = _compile(spec, model)
    _train_a_few_steps(m)
    before, after = _leak(m, 5)
    assert before == 0.0, f"{spec} after training: byte j moved an earlier logit by {before:.3g}"
    assert after > 1e-4


@pytest.mark.parametrize("spec,model,replace", [
    ("phase8.bk", PHASE8, ("bk_resolvent(z = 0.1i, causal = true)", "bk_resolvent(z = 0.1i, causal = false)")),
    ("phase8.bk", PHASE8, ("block = blk,\n    causal = true", "block = blk,\n    causal = false")),
    ("gpt_baseline.bk", GPT, ("heads = heads, causal = true)", "heads = heads, causal = false)")),
])
def test_the_check_refutes_two_sided_variants(spec, model, replace):
    """A two-sided op in the model: the compiler refuses the spec's `: causal` claim (E0301; the next-token
    causality pass, E0309, may refuse the same model), and with the claim dropped (and the next-token check
    opted out of) the perturbation check finds the leak at run time."""
    text = (ROOT / "specs" / spec).read_text().replace(replace[0], replace[1])
    diags = bkdsl.check_source(text, spec, overrides={"train.model": model})
    assert any(d.code in ("E0301", "E0309") and "causal" in d.message for d in diags), [d.code for d in diags]
    torch.manual_seed(0)
    before, _ = _leak(_compile(spec, model, replace, drop_claim=True), 0)
    assert before > 1e-4, f"the two-sided variant {replace[1]!r} should leak"


def test_retarded_green_function_reads_only_the_past():
    torch.manual_seed(0)
    gf = GreenFunction(8, 0.1j, 1.0, causal=True)
    h = torch.randn(2, 20, 8, requires_grad=True)
    g = gf(h)
    for i in (0, 7, 19):
        (grad,) = torch.autograd.grad(g[:, i].abs().sum(), h, retain_graph=True)
        assert grad[:, i + 1:].abs().max() == 0 if i < 19 else True
        assert grad[:, i].abs().max() > 0
    two_sided = GreenFunction(8, 0.1j, 1.0, causal=False)
    two_sided.load_state_dict(gf.state_dict())
    (grad,) = torch.autograd.grad(two_sided(h)[:, 3].abs().sum(), h)
    assert grad[:, 4:].abs().max() > 0  # the two-sided one reads the future


def test_causal_scattering_score_uses_the_running_mean():
    g = torch.polar(torch.rand(2, 30) + 0.1, torch.rand(2, 30))
    s = scattering_score(g, causal=True)
    a = g.abs()
    torch.testing.assert_close(s[:, 9], a[:, 9] / a[:, :10].mean(-1))
    g2 = g.clone()
    g2[:, 10:] *= 50
    assert torch.equal(scattering_score(g2, causal=True)[:, :10], s[:, :10])
    assert not torch.equal(scattering_score(g2)[:, :10], scattering_score(g)[:, :10])  # the sequence mean leaks
    assert (scattering_score(torch.zeros(1, 4, dtype=torch.complex64), causal=True) == 0).all()


def test_causal_scattering_attention_ignores_later_tokens_of_the_query_block():
    """The block rule's σ_I = max over block I read the later tokens of i's own block; gating each
    block at its first token removes that path (a large |G_j| no longer opens blocks for i < j)."""
    torch.manual_seed(0)
    att = ScatteringAttention(16, 2, tau=1.5, block=8, causal=True)
    h = torch.randn(2, 32, 16)
    g = torch.polar(torch.full((2, 32), 0.5), torch.rand(2, 32))
    g2 = g.clone()
    g2[:, 21] *= 40  # inside block 2 (16..23), after queries 16..20
    h2 = h.clone()
    h2[:, 21] += 1.0
    with torch.no_grad(), dispatch.force("reference"):
        o1, o2 = att(h, g), att(h2, g2)
        assert torch.equal(o1[:, :21], o2[:, :21])
        # the block max, which the rule read before, does change for queries 16..20; the leading score not
        s1 = scattering_score(g, causal=True)
        s2 = scattering_score(g2, causal=True)
        lead1, lead2 = block_leading_score(s1, 8), block_leading_score(s2, 8)
        assert torch.equal(lead1[:, :21], lead2[:, :21])
        assert s2[:, 16:24].amax(-1).gt(s1[:, 16:24].amax(-1)).all()
