"""Verification passes: each a function from IR to diagnostics (no hidden state)."""

from __future__ import annotations

from bkdsl.diagnostics import Diagnostic
from bkdsl.semantics.ir import Program


def verify(prog: Program) -> list[Diagnostic]:
    """Run every pass over a resolved program. Shapes, manifolds and units are checked during
    elaboration (each op's ``infer``); the declaration and claims passes run here. The claims pass is
    pure; its results are stored on ``prog.claims`` here, for `bkdsl compile`'s report (until the
    pipeline keeps them beside the program)."""
    from bkdsl.verify.claims import check_declarations, claim_diagnostics, decide_claims

    diags = check_declarations(prog)
    decisions = decide_claims(prog)
    prog.claims = [d.result for d in decisions]
    return diags + claim_diagnostics(decisions)
