"""The claims pass: every claimed property is established, refused, or rejected — never skipped.

Where a claim is written and how it is decided:

* on a **component declaration** (``integrator rk = rk4(...) : symplectic``): the component's
  ``prove`` (analytic rule + numerical probe, bkdsl/verify/probes.py) for the map properties; its
  declared ``sequence_pattern`` / ``flip_symmetric`` / ``output_bound`` / ``lipschitz`` for
  ``causal`` / ``equivariant`` / ``bounded`` / ``lipschitz`` (analytic: a declaration has no shapes
  to probe; the probe runs where a model uses it);
* on a **block or model**: over its dataflow graph (bkdsl/verify/dataflow.py) — for a model with its
  default configuration, for a block at every place a model uses it (or at its defaults when unused;
  a block that is neither is E0307) — and then a probe of the lowered block in float64 with random
  weights (bkdsl/verify/model_probe.py) for the new kinds;
* on a **loss**: no claim applies (E0306).

When the probes run (``confirm``): a claim of the new kinds proven statically — the composition
over the graph, or a declaration's analytic rule — is *confirmed* by its probe when ``confirm`` is
true (``compile``, ``train``, ``check --probe``). ``check`` passes ``confirm=False``: the claim is
then established by the static proof alone ("composition" / "analytic", the detail says the
confirming probe is deferred), and no model is lowered or run (bkdsl/verify/model_probe.py, the
probe machinery, is not even imported, nor is torch: the registry imports only the component modules
a spec names, and those load their torch side lazily — "The lazy registry" in docs/architecture.md;
tests/test_import_weight.py). What ``check`` still decides about the
deferred probe is whether it *could* run (the size budget and input dtypes of
bkdsl/verify/budget.py — E0305, as compile would). A claim that only a probe decides (the map
properties a component's ``prove`` establishes numerically, e.g. ``: symplectic`` on an
integrator) runs its probe at ``check`` too. A refused claim still runs the probe where it shows
where the property leaks (the error path: correctness before speed).

Codes: E0301 not established (no proof, or composition refuses, naming the op); E0302 a probe
refutes it (with its number); E0305 the probe could not run (budget, empty space, exception);
E0306 not applicable; E0307 not checkable; E0308 a bad claim argument; E0310 a confirming probe
contradicts a static proof — a component declares a dependence pattern (``sequence``,
``flip_equivariant``, ``output_bound_value``, ``lipschitz_value``) its implementation does not
have: a bug in that component, named in the diagnostic, not in the spec.

The pass is pure: :func:`decide_claims` returns :class:`Decision` values; :func:`establish_claims`
and :func:`check_claims` are its two views.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from bkdsl.registry import PROPERTIES, Component, InferCtx, Proof
from bkdsl.semantics.types import DimUnifier, ValueType
from bkdsl.diagnostics import BkError, Diagnostic, Span
from bkdsl.semantics import ir as I
from bkdsl.semantics.elaborate import Elaborator, elaborate_model_call
from bkdsl.syntax import ast as A
from bkdsl.syntax.fmt import _claim as claim_text
from bkdsl.verify import dataflow as D
from bkdsl.verify.budget import PROBE_BUDGET, ProbeError, guard_model_probe, probe_sizes, require_float_inputs

NEW_KINDS = ("causal", "equivariant", "bounded", "lipschitz")


@dataclass
class Decision:
    result: I.ClaimResult
    diagnostic: Diagnostic | None


def _model_probes():
    """bkdsl.verify.model_probe (torch, torch.fx, the lowering), imported when a model probe first
    runs — not at module level, so that a ``check`` whose claims are all decided statically never
    loads the probe machinery.
    (Laziness, not a cycle: model_probe imports nothing of this module.)"""
    from bkdsl.verify import model_probe

    return model_probe


# ------------------------------------------------------------------------------- public views
def decide_claims(prog: I.Program, confirm: bool = True) -> list[Decision]:
    """Every claim decided. ``confirm``: run the confirming probe of each statically proven claim
    (``compile``, ``train``, ``check --probe``); False defers it (``check``)."""
    out: list[Decision] = []
    for d in prog.decls.values():
        asts = d.claim_asts or [A.Claim(n, s) for n, s in d.claims]
        for c in asts:
            out.append(_decide_decl(prog, d, c, confirm))
    for loss in prog.losses.values():
        for c in getattr(loss, "claims", []):
            out.append(_rejected(loss.name, c, "E0306", f"a claim on the loss `{loss.name}` does not apply",
                                 "a loss is a scalar objective, not a map a property could hold for",
                                 "claims belong on blocks, models and component declarations; drop it"))
    for name, tpl in prog.blocks.items():
        if tpl.ast.claims:
            out.extend(_decide_block(prog, name, tpl, confirm))
    return out


def establish_claims(prog: I.Program) -> list[I.ClaimResult]:
    """Every claim with how it was established (or why not) and the probe's numbers."""
    return [d.result for d in decide_claims(prog)]


def check_claims(prog: I.Program) -> list[Diagnostic]:
    return [d.diagnostic for d in decide_claims(prog) if d.diagnostic is not None]


def claim_diagnostics(decisions: list[Decision]) -> list[Diagnostic]:
    return [d.diagnostic for d in decisions if d.diagnostic is not None]


def check_declarations(prog: I.Program) -> list[Diagnostic]:
    """Parameter combinations a declaration alone refuses (``euler(reversible = true)``: E0201),
    checked whether or not a model uses it."""
    diags = []
    for d in prog.decls.values():
        if d.component is None:
            continue
        try:
            d.component.validate()
        except BkError as e:
            diags.append(e.diagnostic if e.diagnostic.span else
                         Diagnostic(e.diagnostic.code, e.diagnostic.message, d.span, help=e.diagnostic.help))
    return diags


# ------------------------------------------------------------------------------- helpers
def _claim_text(c: A.Claim) -> str:
    return claim_text(c)


def _rejected(subject: str, c: A.Claim, code: str, msg: str, label: str, help: str) -> Decision:
    how = {"E0306": "not applicable", "E0307": "not checked", "E0308": "bad argument"}.get(code, "refused")
    return Decision(I.ClaimResult(subject, _claim_text(c), Proof(False, how, label), c.span),
                    Diagnostic(code, msg, c.span, label=label, help=help))


def _decision(subject: str, c: A.Claim, proof: Proof, what: str) -> Decision:
    res = I.ClaimResult(subject, _claim_text(c), proof, c.span)
    if proof.holds:
        return Decision(res, None)
    if proof.how == DECLARATION_BUG:
        return Decision(res, _declaration_bug(what, c, proof))
    code = {"probe": "E0302", "probe error": "E0305"}.get(proof.how, "E0301")
    return Decision(res, Diagnostic(code, f"{what} is not {_claim_text(c)}", c.span, label=proof.detail,
                                    help=f"{c.name}: {PROPERTIES.get(c.name, '')}; {_help(c.name)}"))


#: ``Proof.how`` of a confirming probe that contradicts a static proof (E0310)
DECLARATION_BUG = "declaration bug"

# What each new kind's static proof reads from a component's declaration (named in E0310).
_DECLARED = {"causal": "sequence", "equivariant": "flip_equivariant", "bounded": "output_bound_value",
             "lipschitz": "lipschitz_value"}


def _declaration_bug(what: str, c: A.Claim, proof: Proof) -> Diagnostic:
    return Diagnostic("E0310", f"{what}: the probe contradicts the static proof of `{_claim_text(c)}` — a component "
                               "declares a property its implementation does not have", c.span, label=proof.detail,
                      help=f"this is a bug in the component named above, not in the spec: correct its "
                           f"`{_DECLARED.get(c.name, 'declaration')}` (bkdsl.registry.Component), or drop the claim "
                           "until it is fixed")


def _help(prop: str) -> str:
    return {
        "causal": "use ops that are pointwise or causal along the axis (a causal resolvent, causal attention), "
                  "or drop the claim",
        "equivariant": "use ops that treat both directions alike (no causal masks, no learned positions)",
        "bounded": "end the model with a bounded op (tanh, sigmoid, the resolvent's G_ii), or raise the bound",
        "lipschitz": "use ops with known constants (activations, isometries), or raise the bound",
    }.get(prop, "drop the claim, or use components that guarantee it")


def _const(e: Any, prog: I.Program, span: Span | None) -> float:
    """A claim's numeric argument: a number, a constant's name, or arithmetic of those."""
    if isinstance(e, A.Num):
        return float(e.value)
    if isinstance(e, A.Name) and isinstance(prog.consts.get(e.id), (int, float)) \
            and not isinstance(prog.consts.get(e.id), bool):
        return float(prog.consts[e.id])
    if isinstance(e, A.Neg):
        return -_const(e.operand, prog, span)
    if isinstance(e, A.BinOp) and e.op in "+-*/":
        a, b = _const(e.left, prog, span), _const(e.right, prog, span)
        try:
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else math.inf}[e.op]
        except OverflowError:
            return math.inf
    raise BkError("E0308", "a claim's bound must be a number or a numeric constant", span=getattr(e, "span", None) or span,
                  help="e.g. `bounded(norm <= 10.0)`, `lipschitz(<= L)` with `const L = 2.0`")


def _bound(c: A.Claim, prog: I.Program) -> float:
    if not isinstance(c.arg, A.ClaimBound):
        raise BkError("E0308", f"`{c.name}` needs a bound: `{c.name}({'norm ' if c.name == 'bounded' else ''}<= c)`",
                      span=c.span, help=PROPERTIES[c.name])
    if c.arg.measure not in (None, "norm"):
        raise BkError("E0308", f"`{c.name}` bounds the norm; `{c.arg.measure}` is not a measure it knows",
                      span=c.span, help=f"write `{c.name}(norm <= c)`")
    v = _const(c.arg.bound, prog, c.span)
    if not (v > 0 and math.isfinite(v)):
        raise BkError("E0308", f"`{c.name}` needs a finite positive bound, got {v}", span=c.span,
                      help="a bound c > 0")
    return v


def _axis_arg(c: A.Claim) -> Any:
    """None (default axis), a dimension name, or an axis index."""
    arg = c.arg
    if c.name == "equivariant":
        if not (isinstance(arg, A.Call) and isinstance(arg.func, A.Name) and arg.func.id == "flip"
                and len(arg.args) <= 1 and not arg.kwargs):
            raise BkError("E0308", "`equivariant` takes a symmetry: `equivariant(flip(z))`", span=c.span,
                          help="flip(axis) reverses one sequence axis (the z-parity of the thesis)")
        arg = arg.args[0] if arg.args else None
    if arg is None:
        return None
    if isinstance(arg, A.Name):
        return arg.id
    if isinstance(arg, A.Num) and isinstance(arg.value, int):
        return arg.value
    raise BkError("E0308", f"`{c.name}` takes an axis: a dimension name such as `N` or an index",
                  span=c.span, help=f"e.g. `{c.name}(N)` for an input [B, N, d]")


def _safe(fn, *args) -> Proof:
    """Run a decision; a probe that cannot run or raises is refused with the reason (E0305)."""
    try:
        return fn(*args)
    except BkError:
        raise
    except ProbeError as e:
        return Proof(False, "probe error", str(e))
    except (MemoryError, RuntimeError, ValueError, ArithmeticError, TypeError, IndexError, KeyError) as e:
        return Proof(False, "probe error", f"the probe raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


# ------------------------------------------------------------------------------- declarations
def _decide_decl(prog: I.Program, d: I.DeclIR, c: A.Claim, confirm: bool = True) -> Decision:
    comp = d.component
    what = f"`{d.name}` ({comp.name if comp else d.kind})"
    if comp is None:
        return _rejected(d.name, c, "E0306", f"a claim on the {d.kind} `{d.name}` does not apply",
                         f"a {d.kind} declaration is not a map", "drop the claim")
    if c.name == "commutative" and comp.kind != "binding":
        return _rejected(d.name, c, "E0306", f"`commutative` does not apply to the {comp.kind} `{d.name}`",
                         "commutativity is a property of a binary binding op", "drop the claim")
    try:
        if c.name in NEW_KINDS:
            proof = _safe(_decl_new_kind, comp, c, prog, confirm)
        else:
            proof = _safe(_decl_map_property, comp, c.name)
    except BkError as e:
        return Decision(I.ClaimResult(d.name, _claim_text(c), Proof(False, "bad argument", e.diagnostic.message), c.span),
                        e.diagnostic)
    res = I.ClaimResult(d.name, _claim_text(c), proof, c.span)
    if proof.holds:
        return Decision(res, None)
    if proof.how == DECLARATION_BUG:
        return Decision(res, _declaration_bug(what, c, proof))
    code = {"probe": "E0302", "probe error": "E0305"}.get(proof.how, "E0301")
    msg = f"`{comp.name}` is not {c.name}" if code == "E0302" else f"{what} is not known to be {_claim_text(c)}"
    return Decision(res, Diagnostic(code, msg, c.span, label=proof.detail, help=_alternatives(comp.kind, c.name)))


def _alternatives(kind: str, prop: str) -> str:
    alts = {
        ("integrator", "symplectic"): "use leapfrog, verlet, symplectic_euler, yoshida4 or implicit_midpoint, "
                                      "or drop the claim",
        ("integrator", "reversible"): "use leapfrog, verlet or yoshida4 (time-symmetric), or drop the claim",
        ("binding", "unitary"): "use phasor_bind, or drop the claim",
        ("binding", "commutative"): "circular_conv and phasor_bind commute; matrix bindings do not",
    }
    return alts.get((kind, prop), f"{prop}: {PROPERTIES.get(prop, '')}; " + _help(prop))


def _decl_map_property(comp: Component, prop: str) -> Proof:
    size = comp.probe_elements()
    if not size <= PROBE_BUDGET:
        return Proof(False, "probe error", f"the probe of `{comp.name}` would allocate ~{float(size):.3g} "
                                           f"elements, over the budget of {PROBE_BUDGET:.3g}")
    proof = comp.prove(prop)
    if proof is None:
        return Proof(False, "none", f"`{comp.name}` cannot establish `{prop}`")
    if not proof.holds and "probe" in proof.how:
        return Proof(False, "probe", proof.detail)
    return proof


# The probe input of a declaration claim: every input of the component typed [B, N, PROBE_FEATURES].
PROBE_FEATURES = 4


def one_op_block(comp: Component) -> I.BlockIR | None:
    """A model applying (a copy of) ``comp`` to inputs [B, N, 4] — what a declaration's probe runs;
    None when the component does not accept such inputs (it is then decided analytically only)."""
    if not comp.inputs:
        return None
    c = copy.copy(comp)  # infer may record sizes on the component: keep the declaration's own
    ins = [ValueType(("B", "N", PROBE_FEATURES), "float", None, None) for _ in comp.inputs]
    try:
        out = c.infer(ins, InferCtx(DimUnifier(), None, {}))
    except Exception:  # a component that needs other input types: no generic probe
        return None
    if not isinstance(out, ValueType):
        return None
    nodes = [I.Node(n, "input", None, [], t) for n, t in zip(comp.inputs, ins)]
    nodes.append(I.Node("y", "component", c, [I.NodeRef(n) for n in comp.inputs], out))
    return I.BlockIR(comp.decl_name or comp.name, True, {}, dict(zip(comp.inputs, ins)), {"out": "y"},
                     nodes, [], [])


def _decl_new_kind(comp: Component, c: A.Claim, prog: I.Program, confirm: bool = True) -> Proof:
    proof = _decl_new_kind_analytic(comp, c, prog)
    ir = one_op_block(comp) if proof.holds or c.name == "causal" else None
    if ir is None:
        return proof
    if not proof.holds:  # show where it leaks
        probed = _safe(_block_new_kind, prog, ir, A.Claim("causal", c.span))
        leak = probed.detail.split("; probe: ", 1)[1] if "; probe: " in probed.detail else None
        return Proof(False, "analytic", proof.detail + (f"; probe: {leak}" if leak else ""))
    probe_claim = {"causal": A.Claim("causal", c.span),
                   "equivariant": A.Claim("equivariant", c.span, A.Call(A.Name("flip"), [], []))}.get(c.name, c)
    probed = _safe(_block_new_kind, prog, ir, probe_claim, confirm, False)
    if probed.how == "composition+probe":
        return Proof(True, "analytic+probe", f"{proof.detail}; {probed.detail.split('; ', 1)[-1]}")
    if probed.how == "composition" and probed.holds:  # the probe deferred (check)
        return Proof(True, "analytic", f"{proof.detail}; {DEFERRED}")
    if probed.how == DECLARATION_BUG:
        return Proof(False, DECLARATION_BUG, f"`{comp.name}` declares {_declares(comp, c.name)}, but its probe: "
                                             f"{probed.detail}")
    return probed


def _decl_new_kind_analytic(comp: Component, c: A.Claim, prog: I.Program) -> Proof:
    if c.name == "causal":
        _axis_arg(c)
        pat = comp.sequence_pattern()
        ok = pat in ("pointwise", "causal")
        return Proof(ok, "analytic", f"`{comp.name}` is {pat} along sequence axes")
    if c.name == "equivariant":
        _axis_arg(c)
        ok = comp.flip_symmetric()
        return Proof(ok, "analytic", f"`{comp.name}` {'commutes' if ok else 'is not known to commute'} with a flip "
                                     f"of the sequence axis ({comp.sequence_pattern()})")
    if c.name == "bounded":
        cval = _bound(c, prog)
        b = comp.output_bound()
        if b is None:
            return Proof(False, "analytic", f"`{comp.name}` has no known bound on its output")
        return Proof(b[0] <= cval, "analytic", f"{b[1]}; claimed ≤ {cval:g}")
    cval = _bound(c, prog)
    lc = comp.lipschitz()
    if lc is None:
        return Proof(False, "analytic", f"`{comp.name}` has no known Lipschitz constant")
    return Proof(lc[0] <= cval, "analytic", f"{lc[1]}; claimed ≤ {cval:g}")


# ------------------------------------------------------------------------------- blocks
def _instances(prog: I.Program, name: str) -> list[I.BlockIR]:
    seen: dict[str, I.BlockIR] = {}

    def walk(ir: I.BlockIR) -> None:
        if ir.name == name:
            seen.setdefault(ir.qualname + repr([t.to_json() for t in ir.inputs.values()]), ir)
        for n in ir.nodes:
            if n.op == "block":
                walk(n.target)

    for m in _roots(prog):
        walk(m)
    return list(seen.values())


def _roots(prog: I.Program) -> list[I.BlockIR]:
    """The elaborated models: those with default configs, and each train block's `model = m(...)`."""
    roots = list(prog.models.values())
    scope = prog.scope
    for t in prog.trains.values():
        call = t.get("model")
        if call is None or scope is None:
            continue
        try:
            roots.append(elaborate_model_call(call, scope, t.entries["model"].span))
        except BkError:
            continue  # the train block's own checks report it
    return roots


def _decide_block(prog: I.Program, name: str, tpl: Any, confirm: bool = True) -> list[Decision]:
    what = "model" if tpl.ast.is_model else "block"
    insts = _instances(prog, name)
    if not insts:
        if all(f.default is not None for f in (tpl.ast.formals or [])):
            try:
                insts = [Elaborator().elaborate(tpl, {}, None, tpl.ast.span)]
            except BkError as e:
                return [Decision(I.ClaimResult(name, _claim_text(c), Proof(False, "not checked", e.diagnostic.message),
                                               c.span), e.diagnostic) for c in tpl.ast.claims]
        else:
            return [_rejected(name, c, "E0307", f"the claim on {what} `{name}` cannot be checked",
                              "it has parameters without defaults and no model uses it",
                              "give its parameters defaults, or use it in a model (it is checked there)")
                    for c in tpl.ast.claims]
    out = []
    for c in tpl.ast.claims:
        for ir in insts:
            subject = ir.qualname if len(insts) > 1 or ir.config else name
            if c.name == "commutative":
                out.append(_rejected(subject, c, "E0306", f"`commutative` does not apply to the {what} `{name}`",
                                     "commutativity is a property of a binary binding op, not of a map",
                                     "drop the claim"))
                continue
            try:
                proof = decide_model_claim(prog, ir, c, confirm)
            except BkError as e:
                out.append(Decision(I.ClaimResult(subject, _claim_text(c), Proof(False, "bad argument",
                                                                                 e.diagnostic.message), c.span),
                                    e.diagnostic))
                continue
            out.append(_decision(subject, c, proof, f"{what} `{subject}`"))
    return out


def decide_model_claim(prog: I.Program, ir: I.BlockIR, c: A.Claim, confirm: bool = True) -> Proof:
    """Decide one claim on an elaborated block or model (what ``: c`` on it would establish);
    ``confirm``: run the confirming probe of a static proof (False: defer it, see the module doc)."""
    if c.name in NEW_KINDS:
        return _safe(_block_new_kind, prog, ir, c, confirm)
    manifolds = {k: d.component for k, d in prog.decls.items() if d.kind == "manifold" and d.component is not None}
    v = D.output_hyperbolic(ir, manifolds) if c.name == "hyperbolic" else D.map_property(ir, c.name)
    return Proof(v.holds, "composition", v.detail)


def _input_axes(ir: I.BlockIR, axis: Any, c: A.Claim) -> dict[str, int | None]:
    axes: dict[str, int | None] = {}
    for k, t in ir.inputs.items():
        shape = list(t.shape or ()) if hasattr(t, "shape") else []
        if axis is None:
            axes[k] = 1 if len(shape) >= 2 else None  # the N of [B, N, ...]
        elif isinstance(axis, str):
            axes[k] = shape.index(axis) if axis in shape else None
        else:
            axes[k] = axis if 0 <= axis < len(shape) else None
    if not any(v is not None for v in axes.values()):
        shown = "; ".join(f"{k} : [{', '.join(map(str, getattr(t, 'shape', None) or ()))}]" for k, t in ir.inputs.items())
        raise BkError("E0308", f"no input of `{ir.name}` has the axis {axis if axis is not None else 'N of [B, N, ...]'}",
                      span=c.span, help=f"inputs: {shown}; name a dimension of one of them, e.g. `{c.name}(N)`")
    return axes


def _axis_name(ir: I.BlockIR, axes: dict[str, int | None]) -> str | None:
    for k, ax in axes.items():
        if ax is not None:
            d = ir.inputs[k].shape[ax]
            return d if isinstance(d, str) else None
    return None


def _block_new_kind(prog: I.Program, ir: I.BlockIR, c: A.Claim, confirm: bool = True, localize: bool = True) -> Proof:
    """``localize``: when the confirming probe contradicts the static proof, probe each trusted
    component alone to name the one whose declaration is wrong (off for those one-op probes)."""
    MP = None if not confirm else _model_probes()  # noqa: N806 (the module, as the name it had)
    if c.name in ("causal", "equivariant"):
        axes = _input_axes(ir, _axis_arg(c), c)
        flow = D.axis_flow(ir, axes)
        axis_name = _axis_name(ir, axes)
        if c.name == "causal":
            lost = [o for o, ax in flow.out_axes.items() if ax is None]
            if lost:
                return Proof(False, "composition", f"output `{lost[0]}` has no position along the axis "
                                                  f"(an op pooled or reshaped it), so it cannot be causal")
            if flow.pattern not in ("pointwise", "causal"):  # refused; the probe shows where it leaks
                probe = _probe_or_error(_model_probes().causal_probe, prog, ir, axes, flow.out_axes, axis_name)
                leak = f"; probe: {probe.detail}" if probe.how == "probe" else ""
                return Proof(False, "composition", f"{D.node_label(flow.culprit) if flow.culprit else 'an op'} "
                                                   f"is {flow.pattern} along the axis{leak}")
            rule = "the ops on every path are pointwise or causal"
            if MP is None:
                return _deferred(rule, ir, probe_sizes(axis_name))
            probe = _probe_or_error(MP.causal_probe, prog, ir, axes, flow.out_axes, axis_name)
            return _with_probe(rule, probe, prog, ir, c, localize)
        if not flow.flip_ok:
            return Proof(False, "composition", f"{D.node_label(flow.flip_culprit) if flow.flip_culprit else 'an op'} "
                                               f"does not commute with a flip of the axis")
        rule = "every op on every path commutes with the flip"
        if MP is None:
            return _deferred(rule, ir, probe_sizes(axis_name))
        probe = _probe_or_error(MP.flip_probe, prog, ir, axes, flow.out_axes, axis_name)
        return _with_probe(rule, probe, prog, ir, c, localize)
    cval = _bound(c, prog)
    if c.name == "bounded":
        b, why = D.output_bound(ir)
        if b is None or b > cval:
            return Proof(False, "composition", why if b is None else f"{why}; claimed ≤ {cval:g}")
        rule = f"{why} ≤ {cval:g}"
        if MP is None:
            return _deferred(rule, ir, {})
        return _with_probe(rule, _probe_or_error(MP.bound_probe, prog, ir, cval), prog, ir, c, localize)
    L, bad = D.lipschitz_bound(ir)
    if not L <= cval:
        why = (f"{D.node_label(bad)} has no known Lipschitz constant" if bad is not None and L == math.inf
               else f"the composed constant is {L:g} > {cval:g}")
        return Proof(False, "composition", why)
    rule = f"the composed constant is ≤ {L:g} ≤ {cval:g}"
    if MP is None:
        return _deferred(rule, ir, {}, float_inputs=True)
    return _with_probe(rule, _probe_or_error(MP.lipschitz_probe, prog, ir, cval), prog, ir, c, localize)


#: the detail of a statically proven claim whose confirming probe was deferred (``check``)
DEFERRED = "the confirming probe runs at compile and train (`bkdsl check --probe` runs it now)"


def _deferred(rule: str, ir: I.BlockIR, sizes: dict[str, int], float_inputs: bool = False) -> Proof:
    """A static proof whose probe is deferred — after checking, without torch, that the probe could
    run (the budget; float inputs for the Lipschitz probe): else E0305 now, as compile would."""
    try:
        if float_inputs:
            require_float_inputs(ir)
        guard_model_probe(ir, sizes)
    except ProbeError as e:
        return Proof(False, "probe error", str(e))
    return Proof(True, "composition", f"{rule}; {DEFERRED}")


def _probe_or_error(fn, *args) -> Proof:
    return _safe(fn, *args)


def _with_probe(rule: str, probe: Proof, prog: I.Program, ir: I.BlockIR, c: A.Claim,
                localize: bool = True) -> Proof:
    """The static proof ``rule`` confirmed by ``probe`` — or, when the probe contradicts it, the
    component whose declaration the proof trusted wrongly (E0310)."""
    if probe.how == "probe error":
        return probe
    if not probe.holds:
        if not localize:
            return Proof(False, DECLARATION_BUG, probe.detail)
        return Proof(False, DECLARATION_BUG, f"{_culprits(prog, ir, c)}; the probe of the model: {probe.detail} "
                                             f"(although {rule})")
    return Proof(True, "composition+probe", f"{rule}; {probe.detail}")


def _declares(comp: Component, prop: str) -> str:
    """What ``comp`` declares that the static proof of ``prop`` used, in words."""
    if prop == "causal":
        return f"itself {comp.sequence_pattern()} along sequence axes (`sequence`)"
    if prop == "equivariant":
        return "that it commutes with a flip of the sequence axis"
    if prop == "bounded":
        return f"|y| ≤ {comp.output_bound()[0]:g}" if comp.output_bound() else "a bound on its output"
    return f"a Lipschitz constant {comp.lipschitz()[0]:g}" if comp.lipschitz() else "a Lipschitz constant"


def _components(ir: I.BlockIR) -> list[Component]:
    out: list[Component] = []
    for n in ir.nodes:
        if n.op == "component" and isinstance(n.target, Component):
            out.append(n.target)
        elif n.op == "block":
            out.extend(_components(n.target))
    return out


def _culprits(prog: I.Program, ir: I.BlockIR, c: A.Claim) -> str:
    """Which component's declaration is wrong: each component of the block that the static proof
    trusted is probed alone (on inputs [B, N, 4]); the first whose own probe refutes its declaration
    is named. When none does alone, every trusted component is listed."""
    trusted, seen = [], set()
    for comp in _components(ir):
        key = (comp.name, repr(comp.params))
        if key in seen:
            continue
        seen.add(key)
        if c.name in ("bounded", "lipschitz"):
            claim_ok = (comp.output_bound() if c.name == "bounded" else comp.lipschitz()) is not None
        else:
            claim_ok = _decl_new_kind_analytic(comp, A.Claim(c.name, c.span, _generic_arg(c)), prog).holds
        if not claim_ok:
            continue
        trusted.append(comp)
        one = one_op_block(comp)
        if one is None:
            continue
        arg = _generic_arg(c)
        if c.name in ("bounded", "lipschitz"):
            v = (comp.output_bound() if c.name == "bounded" else comp.lipschitz())[0]
            arg = A.ClaimBound("norm" if c.name == "bounded" else None, A.Num(v * (1 + 1e-9), repr(v)), c.span)
        own = _safe(_block_new_kind, prog, one, A.Claim(c.name, c.span, arg), True, False)
        if own.how == DECLARATION_BUG:
            return f"`{comp.decl_name or comp.name}` ({comp.name}) declares {_declares(comp, c.name)}, but its " \
                   f"probe alone: {own.detail}"
    names = ", ".join(f"`{x.name}`" for x in trusted) or "none found"
    return f"one of the components the proof trusted declares {c.name} wrongly (probed alone, none failed: {names})"


def _generic_arg(c: A.Claim) -> Any:
    """The claim's argument for a one-op probe on [B, N, 4] (the default axis; the same bound)."""
    if c.name == "equivariant":
        return A.Call(A.Name("flip"), [], [])
    return c.arg if c.name in ("bounded", "lipschitz") else None
