"""Properties pass: every claimed property is proven or refused.

A claim on a declaration (``integrator rk = rk4(...) : symplectic``) is decided by the component's
``prove`` — analytic rules first, then a numerical probe that can fail (bkdsl/verify/probes.py). A
claim on a block (``block flow(...) : symplectic { ... }``) is decided by composition: the block is a
sequential composition of the ops on its path, so it has a property when every op does
(bkdsl/verify/composition.py gives the algebra: a contraction after an isometry is a contraction, …).
Refusals carry the numbers: E0302 when a probe refutes the claim, E0301 when nothing establishes it.
"""

from __future__ import annotations

from bkdsl.registry import PROPERTIES, Proof
from bkdsl.diagnostics import Diagnostic
from bkdsl.semantics import ir as I


def establish_claims(prog: I.Program) -> list[I.ClaimResult]:
    """Every claim of the program with how it was decided (the report lists them)."""
    return _decide(prog)[0]


def check_claims(prog: I.Program) -> list[Diagnostic]:
    """The refusals among the program's claims (the verification pass)."""
    return _decide(prog)[1]


def _decide(prog: I.Program) -> tuple[list[I.ClaimResult], list[Diagnostic]]:
    """Decide each claim once; reads ``prog``, writes nothing into it."""
    results: list[I.ClaimResult] = []
    diags: list[Diagnostic] = []
    for d in prog.decls.values():
        for prop, span in d.claims:
            comp = d.component
            proof = comp.prove(prop) if comp is not None else None
            if proof is None:
                proof = Proof(False, "none", f"`{comp.name if comp else d.name}` cannot establish `{prop}`")
                diags.append(Diagnostic("E0301", f"`{d.name}` ({comp.name if comp else d.kind}) is not known to be {prop}",
                                        span, label=proof.detail,
                                        help=f"{prop}: {PROPERTIES.get(prop, '')}; drop the claim or use a "
                                             f"component that guarantees it"))
            elif not proof.holds:
                code = "E0302" if "probe" in proof.how else "E0301"
                diags.append(Diagnostic(code, f"`{comp.name}` is not {prop}", span, label=proof.detail,
                                        help=_alternatives(comp.kind, prop)))
            results.append(I.ClaimResult(d.name, prop, proof, span))
    for name, tpl in prog.blocks.items():
        if not tpl.ast.claims:
            continue
        ir = prog.models.get(name)
        for c in tpl.ast.claims:
            if ir is None:
                proof = Proof(False, "none", f"block `{name}` has parameters without defaults; "
                                             "its claims are checked where it is used")
                results.append(I.ClaimResult(name, c.name, proof, c.span))
                continue
            proof = prove_block(ir, c.name)
            results.append(I.ClaimResult(name, c.name, proof, c.span))
            if not proof.holds:
                diags.append(Diagnostic("E0301", f"block `{name}` is not known to be {c.name}", c.span,
                                        label=proof.detail, help=f"{c.name}: {PROPERTIES.get(c.name, '')}"))
    return results, diags


def prove_block(ir: I.BlockIR, prop: str) -> Proof:
    """Composition over the ops of a block (sequential: each node consumes the previous value)."""
    from bkdsl.verify.composition import compose

    parts: list[set[str]] = []
    names: list[str] = []
    for n in ir.nodes:
        if n.op in ("input", "param"):
            continue
        if n.op == "component":
            comp = n.target
            props = {p for p in PROPERTIES if (pr := comp.prove(p)) is not None and pr.holds} if prop else set()
            parts.append(props)
            names.append(comp.name)
        elif n.op == "block":
            sub = {p for p in PROPERTIES if prove_block(n.target, p).holds}
            parts.append(sub)
            names.append(n.target.name)
        else:
            parts.append(set())
            names.append(n.kwargs.get("fn_name", "op"))
    got = compose("sequential", parts) if parts else set()
    if prop in got:
        return Proof(True, "composition", f"sequential composition of {', '.join(names)}")
    bad = [nm for nm, p in zip(names, parts) if prop not in p]
    return Proof(False, "composition", f"not {prop}: {', '.join(bad) or 'the composition'} "
                                       f"{'is' if len(bad) == 1 else 'are'} not")


def _alternatives(kind: str, prop: str) -> str:
    alts = {
        ("integrator", "symplectic"): "use leapfrog, verlet, symplectic_euler, yoshida4 or implicit_midpoint, "
                                      "or drop the claim",
        ("integrator", "reversible"): "use leapfrog, verlet or yoshida4 (time-symmetric), or drop the claim",
        ("binding", "unitary"): "use phasor_bind, or drop the claim",
        ("binding", "commutative"): "circular_conv and phasor_bind commute; matrix bindings do not",
    }
    return alts.get((kind, prop), "drop the claim, or use a component that guarantees it")
