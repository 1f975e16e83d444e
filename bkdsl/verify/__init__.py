"""Verification: passes over a resolved program, each ``check_x(program) -> list[Diagnostic]``.

None mutates its input. Shapes, dtypes and manifolds are inferred while elaborating (each op's
``infer``) and checked again against the data by the plan pass; the passes run here are

* :func:`~bkdsl.verify.properties.check_claims` — every claimed property proven or refused;
* :func:`~bkdsl.verify.plan.check_train_plan` — every train block checked as the runner would before
  its first step (schema, components, units, the data's headers, model ↔ data shapes).
"""

from __future__ import annotations

from bkdsl.diagnostics import Diagnostic
from bkdsl.semantics.ir import Program
from bkdsl.verify.plan import check_train_plan
from bkdsl.verify.properties import check_claims, establish_claims

PASSES = (check_claims, check_train_plan)


def verify(prog: Program) -> list[Diagnostic]:
    """Run every pass over a resolved program; the diagnostics of all passes, in pass order."""
    diags: list[Diagnostic] = []
    for check in PASSES:
        diags += check(prog)
    return diags


__all__ = ["PASSES", "check_claims", "check_train_plan", "establish_claims", "verify"]
