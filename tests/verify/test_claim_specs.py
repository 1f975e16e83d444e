"""For every property kind: a false claim refused with the right code and location, a true one passing."""

from pathlib import Path

import pytest

import bkdsl

SPECS = Path(__file__).parent / "specs"

# file → (code, line, column of the claim) for the refusals; None: the spec checks cleanly
CASES = {
    "unitary_true.bk": None, "unitary_false.bk": ("E0302", 2, 33),
    "isometric_true.bk": None, "isometric_false.bk": ("E0302", 2, 29),
    "contractive_true.bk": None, "contractive_false.bk": ("E0302", 2, 33),
    "symplectic_true.bk": None, "symplectic_false.bk": ("E0302", 3, 55),
    # E0201 (explicit leapfrog needs a separable H: what `train` refuses, now at check time) + E0301
    "symplectic_nonseparable.bk": [("E0201", 3, 19), ("E0301", 3, 51)],
    "reversible_true.bk": None, "reversible_false.bk": ("E0302", 3, 55),
    "commutative_true.bk": None, "commutative_false.bk": ("E0302", 2, 32),
    "block_true.bk": None, "block_false.bk": ("E0301", 6, 14),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_claim(name):
    diags = [d for d in bkdsl.check_file(SPECS / name) if d.is_error]
    want = CASES[name]
    if want is None:
        assert diags == [], [d.render() for d in diags]
        return
    want = want if isinstance(want, list) else [want]
    assert [(d.code, d.span.line, d.span.col) for d in diags] == want
    code = want[-1][0]
    if code == "E0302":  # a probe refusal carries its numbers and tolerance
        assert "at the probe (tolerance" in diags[0].label


def test_refusal_numbers_for_rk4():
    (d,) = [d for d in bkdsl.check_file(SPECS / "symplectic_false.bk") if d.is_error]
    assert "max|JᵀΩJ − Ω| = " in d.label and "tolerance 1e-09" in d.label


def test_compile_report_lists_every_claim():
    c = bkdsl.compile_file(SPECS / "symplectic_true.bk")
    claims = {(r.subject, r.prop): r.proof for r in c.ir.claims}
    assert {("leap", "symplectic"), ("y4", "symplectic"), ("mid", "symplectic")} <= set(claims)
    assert all(p.holds and p.how == "analytic+probe" for p in claims.values())
    assert "max|JᵀΩJ − Ω|" in c.report  # `bkdsl compile`'s report states how each claim was established
