"""The next-token rule: a model trained to predict token t + 1 from tokens ≤ t must be causal.

A data source declares which of its fields are next-token targets (``next_token_fields``:
``text_bytes``' ``targets[t] = tokens[t + 1]``). A train block whose loss reads such a field trains
next-token prediction; if its model does not establish ``causal`` along the sequence axis (N of the
``[B, N]`` token input) — by composition over the graph and the perturbation probe, exactly as the
claim ``: causal`` is decided (bkdsl/verify/claims.py) — the model can read the answer at position
t + 1 and the loss measures nothing. That is refused (E0309) unless the train block opts out with
``allow_acausal = true`` (e.g. a masked-LM experiment that knows what it does).
"""

from __future__ import annotations

from typing import Any

from bkdsl.registry import Proof, lookup
from bkdsl.diagnostics import BkError, Diagnostic
from bkdsl.semantics import ir as I
from bkdsl.semantics.elaborate import elaborate_model_call
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.syntax import ast as A
from bkdsl.verify.claims import decide_model_claim


def _names(e: Any) -> set[str]:
    """Every bare name an expression reads."""
    out: set[str] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, A.Name):
            out.add(x.id)
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        elif hasattr(x, "__dataclass_fields__"):
            stack.extend(getattr(x, f) for f in x.__dataclass_fields__ if f != "span")
    return out


def _next_token_fields(prog: I.Program, data: Any) -> tuple[str, ...]:
    name = data.path if isinstance(data, Ref) else None
    src = prog.data[name].source if isinstance(name, str) and name in prog.data else data
    if not isinstance(src, CallValue):
        return ()
    cls = lookup(src.name, "data")
    return tuple(getattr(cls, "next_token_fields", ())) if cls is not None else ()


def _loss_expr(prog: I.Program, loss: Any) -> Any:
    if isinstance(loss, Ref) and loss.path in prog.losses:
        return prog.losses[loss.path].expr
    if isinstance(loss, CallValue) and loss.name in prog.losses:
        return prog.losses[loss.name].expr
    return None


def check_next_token_causality(prog: I.Program, confirm: bool = True) -> list[Diagnostic]:
    """E0309 for each train block that trains next-token prediction on a model not established causal
    (``confirm``: with the confirming probe, as the claim pass; False at ``check``)."""
    diags: list[Diagnostic] = []
    scope = prog.scope
    for t in prog.trains.values():
        if t.get("allow_acausal") is True:
            continue
        fields = _next_token_fields(prog, t.get("data"))
        expr = _loss_expr(prog, t.get("loss"))
        read = _names(expr) & set(fields) if expr is not None else set()
        if not read or t.get("model") is None or scope is None:
            continue
        span = t.entries["model"].span or t.span
        ir: I.BlockIR | None = None
        try:
            ir = elaborate_model_call(t.get("model"), scope, span)
            proof = decide_model_claim(prog, ir, A.Claim("causal", span), confirm)
        except BkError as e:
            proof = Proof(False, "not checked", e.diagnostic.message)
        if proof.holds:
            continue
        diags.append(Diagnostic(
            "E0309", f"train `{t.name}` fits next-token targets (`{'`, `'.join(sorted(read))}`) with model "
                     f"`{ir.name if ir is not None else '?'}`, which is not established causal",
            span, label=proof.detail,
            help="make every op on the token path pointwise or causal (causal attention, a causal resolvent), "
                 "or opt out with `allow_acausal = true` in the train block"))
    return diags
