"""Claims over the dataflow graph of a block: how each op depends on each of its inputs.

A block claim speaks about the map from the block's inputs to its output. The graph (``BlockIR``
nodes, SSA) is walked from the inputs: a value *depends* on the input when a path reaches it. Then

* **map properties** (unitary, isometric, contractive, symplectic, reversible, hyperbolic —
  bkdsl/verify/composition.py) hold for f_n ∘ … ∘ f_1 when the dependent values form a *chain*: every
  op takes the input through exactly one argument, and that argument is one in which the op is proven
  to have the property (``Component.claim_inputs``: a binding is unitary in y ↦ bind(x₀, y), not in its
  key). ``ph(x, x)`` takes x twice: x ↦ ph(x, x) is neither linear nor injective, so it is refused;
  so is ``ph(ph(k, x), x)``. The empty chain (``output x``) is the identity and holds every claim.
* **sequence patterns** (``causal``, ``equivariant(flip(z))``) compose by the worst pattern on any
  path from the input to the output (pointwise < causal < bidirectional < global); the axis is
  followed by its dimension name through each op's type, and an op that loses or slices it mixes it.
* **Lipschitz constants** compose by L(f ∘ g) ≤ L(f) L(g) and L(f + g) ≤ L(f) + L(g);
  **sup-norm bounds** come from the op that produces the output.

Each walk returns its verdict and the node that decided it (for the diagnostic's text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bkdsl.registry import SEQUENCE_PATTERNS, Component, Proof
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import ValueType
from bkdsl.verify.composition import closure
from bkdsl.verify.budget import PROBE_BUDGET

# operator nodes (``n.op == "function"``) that act entry by entry, broadcasting
ELEMENTWISE = frozenset({"add", "sub", "mul", "truediv", "neg", "pow"})


def node_label(n: I.Node) -> str:
    if n.op == "component":
        c: Component = n.target
        return f"`{c.decl_name}` ({c.name})" if c.decl_name else f"`{c.name}`"
    if n.op == "block":
        return f"block `{n.target.name}`"
    if n.op == "function":
        return f"`{n.kwargs.get('fn_name', 'op')}`"
    return f"`{n.label or n.name}`"


def _refs(n: I.Node) -> list[tuple[int, str]]:
    return [(i, a.name) for i, a in enumerate(n.args) if isinstance(a, I.NodeRef)]


def dependents(ir: I.BlockIR, free: set[str]) -> set[str]:
    """Names of the nodes whose value depends on the input nodes in ``free``."""
    dep = {n.name for n in ir.nodes if n.op == "input" and n.name in free}
    for n in ir.nodes:
        if any(a in dep for _, a in _refs(n)) or any(isinstance(v, I.NodeRef) and v.name in dep
                                                    for v in n.kwargs.values()):
            dep.add(n.name)
    return dep


# ============================================================================ map properties
@dataclass
class Verdict:
    holds: bool
    detail: str
    node: I.Node | None = None  # the node that refused it


def _component_has(comp: Component, prop: str) -> tuple[bool, str]:
    """Whether the component (in its claim inputs) has ``prop`` or a property implying it."""
    size = comp.probe_elements()
    if not size <= PROBE_BUDGET:  # refused before the component's probe allocates
        return False, (f"the probe of `{comp.name}` would allocate ~{float(size):.3g} elements, over the "
                       f"probe budget of {PROBE_BUDGET:.3g}")
    notes = []
    for q in (prop, "unitary", "isometric"):
        if prop not in closure({q}):
            continue
        try:
            pr = comp.prove(q)
        except Exception as e:  # a probe that raised: refused, with the reason
            return False, f"proving `{q}` of `{comp.name}` failed: {type(e).__name__}: {e}"
        if pr is not None and pr.holds:
            return True, f"{comp.name}: {pr.how} ({pr.detail})"
        if pr is not None:
            notes.append(pr.detail)
    return False, notes[0] if notes else f"`{comp.name}` is not known to be {prop}"


def map_property(ir: I.BlockIR, prop: str, free: set[str] | None = None) -> Verdict:
    """Decide ``prop`` of the map (free inputs) ↦ output of ``ir`` (see the module docstring)."""
    free = set(ir.inputs) if free is None else free
    dep = dependents(ir, free)
    outs = [v for v in ir.outputs.values() if v in dep]
    if len(outs) != 1:
        why = ("no output depends on the input (a constant map)" if not outs else
               f"the input reaches {len(outs)} outputs; a map into several outputs is not {prop}")
        return Verdict(False, why)
    parts: list[str] = []
    cur = ir.node(outs[0])
    while cur.op != "input":
        used = [(i, a) for i, a in _refs(cur) if a in dep]
        if len(used) != 1:
            names = ", ".join(f"`{ir.node(a).label or a}`" for _, a in used)
            return Verdict(False, f"{node_label(cur)} takes the input through {len(used)} arguments ({names}): "
                                  f"x ↦ f(x, x) is neither linear nor injective, so not {prop}", cur)
        i, arg = used[0]
        if cur.op == "component":
            comp: Component = cur.target
            slot = comp.inputs[i] if i < len(comp.inputs) else f"argument {i + 1}"
            if slot not in comp.claim_inputs():
                ok_in = ", ".join(f"`{s}`" for s in comp.claim_inputs()) or "none of its inputs"
                return Verdict(False, f"{node_label(cur)} is proven in {ok_in}; here the input reaches its "
                                      f"`{slot}`", cur)
            ok, why = _component_has(comp, prop)
            if not ok:
                return Verdict(False, f"{node_label(cur)}: {why}", cur)
            parts.append(why)
        elif cur.op == "block":
            sub: I.BlockIR = cur.target
            sub_free = {list(sub.inputs)[i]} if i < len(sub.inputs) else set()
            v = map_property(sub, prop, sub_free)
            if not v.holds:
                return Verdict(False, f"{node_label(cur)}: {v.detail}", v.node or cur)
            parts.append(f"block {sub.name}: {v.detail}")
        else:
            return Verdict(False, f"{node_label(cur)} is not known to be {prop}", cur)
        cur = ir.node(arg)
    if not parts:
        t = ir.inputs.get(cur.name)
        last = t.shape[-1] if isinstance(t, ValueType) and t.shape else None
        if prop == "symplectic" and isinstance(last, int) and last % 2:
            return Verdict(False, f"the identity on an odd-dimensional space ({last}) is no phase space")
        return Verdict(True, "the identity (the empty composition) holds every claim")
    return Verdict(True, "composition of " + "; ".join(reversed(parts)))


# ============================================================================ sequence patterns
def _rank(p: str) -> int:
    return SEQUENCE_PATTERNS.index(p)


def _follow_axis(in_t: Any, out_t: Any, axis: int) -> int | None:
    """The index of the same dimension in the output type, or None when it is lost."""
    if not (isinstance(in_t, ValueType) and isinstance(out_t, ValueType) and in_t.shape and out_t.shape):
        return None
    if axis >= len(in_t.shape):
        return None
    dim = in_t.shape[axis]
    if isinstance(dim, str) and list(out_t.shape).count(dim) == 1:
        return list(out_t.shape).index(dim)
    if axis < len(out_t.shape) and out_t.shape[axis] == dim:
        return axis
    return None


def _getitem_touches(n: I.Node, axis: int) -> bool:
    items = n.args[1] if len(n.args) > 1 else None
    if isinstance(items, (int, str)):  # a multi-output value's component, or a batch index
        return isinstance(items, int) and axis == 0
    if not isinstance(items, tuple):
        return True
    for k, it in enumerate(items):
        if it is Ellipsis:
            return True
        if k == axis and it != slice(None, None):
            return True
    return False


@dataclass
class AxisFlow:
    """How the outputs depend on the inputs along one axis: the worst pattern, the op that set it,
    whether every op on the way is flip-symmetric (and the first that is not), and the axis index
    in each output (None: the output lost it)."""

    pattern: str
    culprit: I.Node | None
    flip_ok: bool
    flip_culprit: I.Node | None
    out_axes: dict[str, int | None]


def axis_flow(ir: I.BlockIR, in_axes: dict[str, int | None]) -> AxisFlow:
    """Walk the graph forward carrying, per value, (axis index, worst pattern, culprit, flip-ok)."""
    state: dict[str, tuple[int | None, str, I.Node | None, bool, I.Node | None]] = {}
    for n in ir.nodes:
        if n.op == "input":
            ax = in_axes.get(n.name)
            state[n.name] = (ax, "pointwise", None, True, None)
            if ax is None:  # an input without the axis: constant along it
                state.pop(n.name)
            continue
        used = [(i, a) for i, a in _refs(n) if a in state]
        if not used:
            continue
        pat, cul, fok, fcul = "pointwise", None, True, None
        axes = []
        for _, a in used:
            ax, p, c, f, fc = state[a]
            if _rank(p) > _rank(pat):
                pat, cul = p, (cul if cul is not None and _rank(pat) > _rank("causal") else c)
            if not f and fok:
                fok, fcul = False, fc
            axes.append((a, ax))
        if any(ax is None for _, ax in axes):
            state[n.name] = (None, "global", cul or n, False, fcul or n)
            continue
        a0, ax0 = axes[0]
        in_t = ir.node(a0).type
        inner_cul = inner_fcul = None
        if n.op == "component":
            comp: Component = n.target
            op_pat, op_flip = comp.sequence_pattern(), comp.flip_symmetric()
            out_ax = _follow_axis(in_t, n.type, ax0)
            if comp.mixes_last_axis and isinstance(in_t, ValueType) and in_t.shape and ax0 == len(in_t.shape) - 1:
                op_pat, op_flip = "global", False  # the axis is the feature axis this op combines
        elif n.op == "block":
            sub: I.BlockIR = n.target
            names = list(sub.inputs)
            sub_axes = {names[i]: ax for (i, _), (_, ax) in zip(used, axes) if i < len(names)}
            f = axis_flow(sub, sub_axes)
            op_pat, op_flip = f.pattern, f.flip_ok
            outs = list(f.out_axes.values())
            out_ax = outs[0] if len(outs) == 1 else None
            inner_cul, inner_fcul = f.culprit, f.flip_culprit
        else:
            fn = n.kwargs.get("fn_name", "")
            if fn in ELEMENTWISE:
                op_pat, op_flip, out_ax = "pointwise", True, _follow_axis(in_t, n.type, ax0)
            elif fn == "getitem" and not _getitem_touches(n, ax0):
                op_pat, op_flip = "pointwise", True
                out_ax = _follow_axis(in_t, n.type, ax0) if isinstance(n.type, ValueType) else ax0
                if isinstance(n.args[1], (int, str)) and not isinstance(in_t, ValueType):
                    out_ax = ax0  # a component of a multi-output value keeps the index
            else:
                op_pat, op_flip, out_ax = "global", False, None
        if out_ax is None:
            op_pat, op_flip = "global", False
        if _rank(op_pat) > _rank(pat):
            if cul is None or _rank(pat) <= _rank("causal"):  # name the first op that breaks causality
                cul = (inner_cul or n) if n.op == "block" else n
            pat = op_pat
        if not op_flip and fok:
            fok, fcul = False, (inner_fcul or n) if n.op == "block" else n
        state[n.name] = (out_ax, pat, cul, fok, fcul)
    out_axes: dict[str, int | None] = {}
    pat, cul, fok, fcul = "pointwise", None, True, None
    for oname, node in ir.outputs.items():
        if node not in state:
            out_axes[oname] = None
            continue
        ax, p, c, f, fc = state[node]
        out_axes[oname] = ax
        if _rank(p) > _rank(pat):
            pat, cul = p, c
        if not f and fok:
            fok, fcul = False, fc
    return AxisFlow(pat, cul, fok, fcul, out_axes)


# ============================================================================ Lipschitz and bounds
def lipschitz_bound(ir: I.BlockIR, in_L: dict[str, float] | None = None) -> tuple[float, I.Node | None]:
    """An upper bound on the ℓ₂ Lipschitz constant of inputs ↦ outputs (inf when unknown) and the
    first node whose constant is unknown."""
    inf = float("inf")
    L: dict[str, float] = {}
    bad: I.Node | None = None
    for n in ir.nodes:
        if n.op == "input":
            L[n.name] = 1.0 if in_L is None else in_L.get(n.name, 0.0)
            continue
        used = [(i, a) for i, a in _refs(n) if L.get(a, 0.0) > 0]
        if n.op == "param" or not used:
            L[n.name] = 0.0
            continue
        val = inf
        if n.op == "component" and len(used) == 1:
            comp: Component = n.target
            i, a = used[0]
            slot = comp.inputs[i] if i < len(comp.inputs) else None
            try:
                lc = comp.lipschitz() if slot in comp.claim_inputs() else None
            except Exception:
                lc = None
            if lc is not None:
                val = lc[0] * L[a]
        elif n.op == "block":
            sub: I.BlockIR = n.target
            names = list(sub.inputs)
            sL, sbad = lipschitz_bound(sub, {names[i]: L[a] for i, a in used if i < len(names)})
            val = sL
            if sbad is not None and bad is None:
                bad = sbad
        elif n.op == "function":
            fn = n.kwargs.get("fn_name", "")
            consts = [a for a in n.args if not isinstance(a, I.NodeRef)]
            if fn in ("add", "sub"):
                val = sum(L[a] for _, a in used)
            elif fn == "neg":
                val = L[used[0][1]]
            elif fn in ("mul", "truediv") and len(used) == 1 and len(consts) == 1 \
                    and isinstance(consts[0], (int, float)) and not isinstance(consts[0], bool):
                c = abs(float(consts[0]))
                val = L[used[0][1]] * (c if fn == "mul" else (1 / c if c else inf))
            elif fn == "getitem":
                val = L[used[0][1]]  # a restriction: ‖P(x − y)‖ ≤ ‖x − y‖
        if val == inf and bad is None:
            bad = n
        L[n.name] = val
    outs = [L.get(v, 0.0) for v in ir.outputs.values()]
    total = sum(o * o for o in outs) ** 0.5 if all(o < inf for o in outs) else inf
    return total, bad


def output_bound(ir: I.BlockIR) -> tuple[float, str] | tuple[None, str]:
    """(c, why) with |y| ≤ c for every output entry, from the ops producing the outputs."""
    cs, whys = [], []
    for node_name in ir.outputs.values():
        n = ir.node(node_name)
        if n.op == "component":
            b = n.target.output_bound()
            if b is None:
                return None, f"{node_label(n)} has no known bound on its output"
            cs.append(b[0])
            whys.append(b[1])
        elif n.op == "block":
            c, why = output_bound(n.target)
            if c is None:
                return None, why
            cs.append(c)
            whys.append(why)
        elif n.op == "input":
            return None, f"the output is the input `{n.name}`, which is unbounded"
        else:
            return None, f"{node_label(n)} has no known bound on its output"
    return max(cs), "; ".join(whys)


def output_hyperbolic(ir: I.BlockIR, manifolds: dict[str, Component]) -> Verdict:
    """`hyperbolic` of a block: every output lands on a hyperbolic manifold — its type says so (the
    elaborator checked each op's manifold typing) and the manifold is hyperbolic, or the op producing
    it proves it (a property of where the values land: decided by the last op, not by a chain)."""
    parts = []
    for node_name in ir.outputs.values():
        n = ir.node(node_name)
        m = n.type.manifold if isinstance(n.type, ValueType) else None
        mc = manifolds.get(m) if m else None
        if mc is not None:
            ok, why = _component_has(mc, "hyperbolic")
            if ok:
                parts.append(f"{node_label(n)} is typed on `{m}` ({why})")
                continue
        if n.op == "component":
            ok, why = _component_has(n.target, "hyperbolic")
            if not ok:
                return Verdict(False, f"{node_label(n)}: {why}", n)
            parts.append(why)
        elif n.op == "block":
            v = output_hyperbolic(n.target, manifolds)
            if not v.holds:
                return v
            parts.append(v.detail)
        else:
            return Verdict(False, f"{node_label(n)} does not keep values on a hyperbolic manifold", n)
    return Verdict(True, "; ".join(parts))


def proof(v: Verdict, how: str = "composition") -> Proof:
    return Proof(v.holds, how, v.detail)
