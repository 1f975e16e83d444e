"""Verification passes: each a function from IR to diagnostics (no hidden state)."""

from __future__ import annotations

from bkdsl.diagnostics import Diagnostic
from bkdsl.semantics.ir import Program


def verify(prog: Program) -> list[Diagnostic]:
    """Run every pass over a resolved program. Shapes, manifolds and units are checked during
    elaboration (each op's ``infer``); the claims pass runs here."""
    from bkdsl.verify.properties import check_claims

    return check_claims(prog)
