"""The Program carries what later stages need in named fields; the claims pass does not write into it."""

from __future__ import annotations

import bkdsl
from bkdsl.semantics.elaborate import elaborate_model_call
from bkdsl.semantics.values import Ref
from bkdsl.verify import check_claims, establish_claims

SPEC = '''binding b = phasor_bind() : unitary
model m(w: int = 4) {
  input x : [B, w]
  output y = linear(x, 2)
}
'''


def test_the_scope_is_a_named_field_and_the_module_is_lower_of_elaborate():
    c = bkdsl.compile_source(SPEC, "p.bk")
    assert c.ir.scope.lookup("m").kind == "block"
    assert "_scope" not in vars(c.ir)
    ir = elaborate_model_call(Ref("m"), c.ir.scope, None)
    assert ir.inputs == c.model_ir(c.main_call).inputs
    assert sum(p.numel() for p in c.module.parameters()) == 4 * 2 + 2


def test_the_claims_pass_is_pure():
    c = bkdsl.compile_source(SPEC, "p.bk")
    prog = c.ir
    before = list(prog.claims)
    results = establish_claims(prog)
    assert check_claims(prog) == []
    assert prog.claims == before  # nothing appended by either call
    assert [(r.subject, r.prop, r.proof.holds) for r in results] == [("b", "unitary", True)]
