"""Issue #13 items 1–2: claims compose over the dataflow graph, probes fail closed, every claim is
established, refused or rejected, and the new kinds causal / equivariant / bounded / lipschitz."""

import math
from pathlib import Path

import pytest
import torch

import bkdsl
from bkdsl import api
from bkdsl.verify import probes
from bkdsl.verify.causality import check_next_token_causality
from bkdsl.verify.claims import establish_claims

SPECS = Path(__file__).parent / "specs"


def errors(name):
    return [d for d in bkdsl.check_file(SPECS / name) if d.is_error]


def codes(name):
    return [(d.code, d.span.line, d.span.col) for d in errors(name)]


def program(name):
    c = api._pipeline((SPECS / name).read_text(), str(SPECS / name), None)
    assert not [d for d in c.diagnostics if d.is_error and d.code not in ("E0301", "E0302", "E0305", "E0306", "E0307", "E0309")]
    return c.ir


# ---------------------------------------------------------------- item 1: sound proofs
def test_binding_of_x_with_itself_is_refused():
    ds = errors("g_ph_xx.bk")
    assert [(d.code, d.span.col) for d in ds] == [("E0301", 11), ("E0301", 20)]  # unitary, reversible
    assert all("2 arguments" in d.label and "neither linear nor injective" in d.label for d in ds)


def test_nested_binding_reusing_x_is_refused():
    (d,) = errors("g_ph_nested.bk")
    assert d.code == "E0301" and "`ph` (phasor_bind) takes the input through 2 arguments" in d.label


def test_binding_with_a_fixed_key_is_unitary():
    assert errors("g_ph_key.bk") == []
    (r,) = establish_claims(program("g_ph_key.bk"))
    assert r.proof.holds and "phasor_bind" in r.proof.detail


def test_identity_model_holds_every_claim():
    assert errors("g_identity.bk") == []
    rs = establish_claims(program("g_identity.bk"))
    assert {(r.prop, r.proof.holds) for r in rs} == {("unitary", True), ("symplectic", True)}
    assert all("identity" in r.proof.detail for r in rs)


def test_identity_on_odd_dimension_is_not_symplectic():
    ds = bkdsl.check_source("model m : symplectic {\n  input x : [B, 3]\n  output x\n}\n")
    assert [d.code for d in ds if d.is_error] == ["E0301"]


def test_claim_on_loss_is_rejected():
    assert codes("g_loss_claim.bk") == [("E0306", 1, 19)]


def test_unused_block_without_defaults_is_rejected_not_skipped():
    assert codes("g_block_unused.bk") == [("E0307", 1, 19)]


def test_block_claim_is_checked_where_used():
    (d,) = errors("g_block_used.bk")
    assert d.code == "E0301" and "`b(n=4)`" in d.message and "linear" in d.label


def test_block_claim_checked_at_defaults_when_unused():
    src = "binding ph = phasor_bind()\nblock b(n: int = 4) : unitary {\n  input x : [B, n]\n  output ph(x, x)\n}\n"
    assert [d.code for d in bkdsl.check_source(src) if d.is_error] == ["E0301"]


def test_euler_reversible_refused_at_check_time():
    assert codes("g_euler_rev.bk") == [("E0201", 1, 16)]


@pytest.mark.parametrize("name", ["g_im_nan.bk", "g_leap_inf.bk"])
def test_non_finite_probe_refuses(name):
    (d,) = errors(name)
    assert d.code == "E0302" and "= nan at the probe" in d.label


def test_size_guard_before_allocation():
    (d,) = errors("g_huge.bk")
    assert d.code == "E0305" and "over the probe budget" in d.label


def test_decl_probe_size_guard():
    src = "model m {\n  input x : [B, 4]\n  output x\n}\n"
    from bkdsl.registry import lookup

    # 16e6 stays under the front end's dimension limit (semantics/limits.py, E0207), so the probe's own
    # budget guard is what refuses it
    comp = lookup("circulant").from_args({"n": 16_000_000})
    assert comp.probe_elements() > probes.PROBE_BUDGET
    ds = bkdsl.check_source(src.replace("model m {", "model m : unitary {").replace("output x", "output circulant(x, 16000000)")
                            .replace("[B, 4]", "[B, 16000000]"))
    (d,) = [d for d in ds if d.is_error]
    assert d.code == "E0301" and "over the probe budget" in d.label


def test_probes_fail_closed():
    assert not probes.probe_symplectic(lambda x: x * float("inf"), 2).ok
    assert math.isnan(probes.probe_symplectic(lambda x: x * float("nan"), 2).value)
    assert not probes.probe_reversible(lambda x: x * float("inf"), lambda y: y, 3).ok
    assert not probes.probe_commutative(lambda x, y: x * y * float("nan"), 3).ok
    assert not probes.probe_contractive(lambda x: x * float("nan"), 3).ok
    with pytest.raises(probes.ProbeError):
        probes.probe_symplectic(lambda x: x, 0)  # an empty phase space
    with pytest.raises(probes.ProbeError):
        probes.probe_unitary(lambda x: x, 10 ** 9)  # refused before torch.randn allocates it
    with pytest.raises(probes.ProbeError):
        probes.probe_reversible(lambda x: x, lambda x: x, 3, n=0)


def test_exception_inside_probe_is_a_refusal():
    from bkdsl.verify.claims import _safe

    def boom():
        raise RuntimeError("shape mismatch in probe")

    p = _safe(boom)
    assert not p.holds and p.how == "probe error" and "RuntimeError" in p.detail


def test_every_claim_is_in_the_report():
    c = bkdsl.compile_file(SPECS / "g_ph_key.bk") if not errors("g_ph_key.bk") else None
    assert c is not None and "| `m` | unitary | yes | composition |" in c.report


# ---------------------------------------------------------------- item 2: new claim kinds
def test_causal_and_flip_established_with_probe():
    assert errors("g_causal_ok.bk") == []
    rs = {r.prop: r.proof for r in establish_claims(program("g_causal_ok.bk"))}
    assert rs["causal"].holds and rs["causal"].how == "composition+probe" and "max|Δy_i|" in rs["causal"].detail
    assert rs["equivariant(flip(N))"].holds and "max|f(Px) − P f(x)|" in rs["equivariant(flip(N))"].detail


def test_bidirectional_resolvent_refused_naming_op_and_position():
    (d,) = errors("g_causal_bad.bk")
    assert d.code == "E0301" and "`g` (bk_resolvent) is bidirectional" in d.label
    assert "moved when input position" in d.label


def test_causal_probe_refutes_a_hidden_leak():
    """The probe alone: a map whose output at t reads t + 1."""
    fn = lambda d: {"y": torch.roll(d["x"], -1, dims=1)}  # noqa: E731
    a = {"x": torch.randn(2, 8, 3, dtype=torch.float64)}
    b = {"x": torch.randn(2, 8, 3, dtype=torch.float64)}
    r = probes.probe_causal(fn, a, b, {"x": 1}, {"y": 1}, [1, 3, 5])
    assert not r.ok and "input position" in r.what
    ok = probes.probe_causal(lambda d: {"y": d["x"].cumsum(1)}, a, b, {"x": 1}, {"y": 1}, [1, 3, 5])
    assert ok.ok


def test_unknown_axis_is_a_coded_diagnostic():
    src = "model m : causal(T) {\n  input x : [B, N, 4]\n  output x\n}\n"
    assert [d.code for d in bkdsl.check_source(src) if d.is_error] == ["E0308"]


def test_bounded_resolvent_analytic_and_probe():
    (d,) = errors("g_bounded.bk")
    assert d.code == "E0301" and (d.span.line, d.span.col) == (6, 13) and "1/Im z = 2" in d.label
    rs = {(r.subject, r.prop): r.proof for r in establish_claims(program("g_bounded.bk"))}
    assert rs[("g", "bounded(norm <= 2.0)")].holds and rs[("g", "bounded(norm <= 2.0)")].how == "analytic+probe"
    assert rs[("ok", "bounded(norm <= 2.0)")].how == "composition+probe"
    assert rs[("ok", "equivariant(flip(N))")].holds  # z-parity of the resolvent: G(Ph) = P G(h) P


def test_bounded_probe_refutes():
    fn = lambda d: {"y": 3 * torch.tanh(d["x"])}  # noqa: E731
    r = probes.probe_bounded(fn, [{"x": 10 * torch.randn(4, 5, dtype=torch.float64)}], 1.0)
    assert not r.ok and r.value > 1
    with pytest.raises(probes.ProbeError):
        probes.probe_bounded(fn, [], float("nan"))


def test_lipschitz_composition_and_probe():
    (d,) = errors("g_lip.bk")
    assert d.code == "E0301" and "1 > 0.5" in d.label
    fn = lambda d: {"y": 2 * d["x"]}  # noqa: E731
    x = {"x": torch.randn(4, 3, dtype=torch.float64)}
    y = {"x": x["x"] + 0.1}
    assert not probes.probe_lipschitz(fn, [(x, y)], 1.0).ok
    assert probes.probe_lipschitz(fn, [(x, y)], 2.0).ok


def test_next_token_rule():
    bad = check_next_token_causality(program("g_next_token_bad.bk"))
    assert [d.code for d in bad] == ["E0309"] and "bidirectional" in bad[0].label
    assert check_next_token_causality(program("g_next_token_optout.bk")) == []
    assert check_next_token_causality(program("g_next_token_ok.bk")) == []


def test_claim_with_argument_round_trips_through_the_formatter():
    from bkdsl.syntax.fmt import format_module
    from bkdsl.syntax.parser import parse

    text = (SPECS / "g_bounded.bk").read_text()
    m, _ = parse(text, "x.bk")
    m2, _ = parse(format_module(m), "x.bk")
    assert m2 == m and "bounded(norm <= 2.0)" in format_module(m)


def test_hyperbolic_block_decided_by_the_output_op():
    ok = ("manifold ball = poincare(c = 1.0)\nmodel m : hyperbolic {\n  input x : [B, 4]\n"
          "  output expmap0(ball, x)\n}\n")
    bad = ok.replace("output expmap0(ball, x)", "output logmap0(ball, expmap0(ball, x))")
    assert [d for d in bkdsl.check_source(ok) if d.is_error] == []
    assert [d.code for d in bkdsl.check_source(bad) if d.is_error] == ["E0301"]


def test_declaration_claims_of_the_new_kinds():
    src = ("propagator g = bk_resolvent(z = 0.5i) : equivariant(flip(N)), causal\n"
           "binding ph = phasor_bind() : causal\n")
    c = api._pipeline(src, "x.bk", None)
    (d,) = [d for d in c.diagnostics if d.is_error]
    assert d.code == "E0301" and "bidirectional" in d.label and "moved when input position" in d.label
    rs = {(r.subject, r.prop): r.proof for r in c.ir.claims}
    assert rs[("g", "equivariant(flip(N))")].how == "analytic+probe"
    assert rs[("ph", "causal")].holds and rs[("ph", "causal")].how == "analytic+probe"


def test_size_guard_counts_an_embedding_table():
    src = "model m : causal {\n  input t : [B, N] int\n  output embedding(t, 1000000000, 4)\n}\n"
    (d,) = [d for d in bkdsl.check_source(src) if d.is_error]
    assert d.code == "E0305" and "over the probe budget" in d.label


def test_an_op_mixing_the_feature_axis_mixes_a_sequence_axis_placed_there():
    src = "model m : causal(1) {\n  input x : [B, 8]\n  output layernorm(x)\n}\n"
    (d,) = [d for d in bkdsl.check_source(src) if d.is_error]
    assert d.code == "E0301" and "`layernorm` is global" in d.label
    ok = "model m : causal(1) {\n  input x : [B, 8]\n  output tanh(x)\n}\n"
    assert [d for d in bkdsl.check_source(ok) if d.is_error] == []


def test_model_claim_checked_at_the_train_blocks_config():
    src = """binding ph = phasor_bind()
model m(n: int) : unitary {
  input x : [B, n]
  output ph(x, x)
}
data d = text_bytes(seq_len = 16, max_bytes = 4000)
loss l = cross_entropy(out, targets)
train t {
  model = m(n = 4)
  data = d
  loss = l
  optimizer = adam(lr = 1e-3)
  allow_acausal = true
}
"""
    ds = [d for d in bkdsl.check_source(src) if d.is_error and d.code.startswith("E03")]
    assert [d.code for d in ds] == ["E0301"] and "m(n=4)" in ds[0].message
