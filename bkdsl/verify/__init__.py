"""Verification: passes over a resolved program, each ``check_x(program) -> list[Diagnostic]``.

None mutates its input. Shapes, dtypes and manifolds are inferred while elaborating (each op's
``infer``) and checked again against the data by the plan pass; the passes run here, in order:

* :func:`~bkdsl.verify.claims.check_declarations` — claims written where no claim applies;
* the claims pass (:mod:`bkdsl.verify.claims`) — every claimed property proven or refused;
* :func:`~bkdsl.verify.causality.check_next_token_causality` — a next-token loss needs a causal model;
* :func:`~bkdsl.verify.plan.check_train_plan` — every train block checked as the runner would before
  its first step (schema, components, units, the data's headers, model ↔ data shapes).
"""

from __future__ import annotations

from bkdsl.diagnostics import Diagnostic
from bkdsl.semantics.ir import ClaimResult, Program
from bkdsl.verify.causality import check_next_token_causality
from bkdsl.verify.claims import check_claims, check_declarations, claim_diagnostics, decide_claims, establish_claims
from bkdsl.verify.plan import check_train_plan

PASSES = (check_declarations, check_claims, check_next_token_causality, check_train_plan)


def verify_with_claims(prog: Program, confirm: bool = True) -> tuple[list[Diagnostic], list[ClaimResult]]:
    """Every pass, and each claim's result (for the report), deciding each claim once. ``confirm``:
    run the confirming probes of statically proven claims (``compile``, ``train``, ``check --probe``);
    ``check`` passes False: no model is lowered or run when every claim is decided statically
    (bkdsl/verify/claims.py, "When the probes run")."""
    decisions = decide_claims(prog, confirm)
    diags = check_declarations(prog) + claim_diagnostics(decisions)
    diags += check_next_token_causality(prog, confirm) + check_train_plan(prog)
    return diags, [d.result for d in decisions]


def verify(prog: Program, confirm: bool = True) -> list[Diagnostic]:
    """Run every pass over a resolved program; the diagnostics of all passes, in pass order
    (``confirm``: as in :func:`verify_with_claims`)."""
    return verify_with_claims(prog, confirm)[0]


__all__ = ["PASSES", "check_claims", "check_declarations", "check_next_token_causality", "check_train_plan",
           "establish_claims", "verify", "verify_with_claims"]
