"""Block elaboration: a block template with its config bound, applied to input types, becomes a
:class:`~bkdsl.semantics.ir.BlockIR` (type inference through each component's ``infer``).

* statements of a block are dataflow equations: a use of ``x`` refers to the latest definition of
  ``x`` above it, else to the first one below it (a forward reference); the statements are evaluated
  in topological order of that dependency graph (networkx), and a cycle is error E0501;
* every value gets a :class:`~bkdsl.semantics.types.ValueType`; each component's ``infer`` checks
  shapes (symbolic dims unified), dtypes and manifolds.
"""

import functools
import keyword
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import networkx as nx
import pint

from bkdsl import registry
from bkdsl.registry import Component, InferCtx
from bkdsl.diagnostics import BkError, Diagnostic, Span
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import DimUnifier, ValueType, broadcast
from bkdsl.semantics.units import Q_, parse_unit, unit_str
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.syntax import ast as A
from bkdsl.semantics.consteval import (ConstEval, _arg_spans, _call_name, _kind, _show, arith, instantiate,
                                       lookup_component, negate, unknown_component, unknown_name)
from bkdsl.semantics.limits import check_repeat, check_type
from bkdsl.semantics.scope import DF, BlockInstance, BlockTemplate, Binding, RepeatInstance, Scope

class Elaborator:
    """Elaborates block templates into BlockIR (memoised per template, config and input types)."""

    def __init__(self, diags: list[Diagnostic] | None = None):
        self.diags = diags if diags is not None else []
        self.memo: dict[tuple, I.BlockIR] = {}
        self.stack: list[str] = []

    def elaborate(self, tpl: BlockTemplate, config: dict[str, Any], in_types: list[Any] | None,
                  span: Span | None) -> I.BlockIR:
        b = tpl.ast
        cfg = self._bind_config(tpl, config, span)
        key = (id(tpl), _freeze(cfg), _freeze(in_types))
        if key in self.memo:
            return self.memo[key]
        if b.name in self.stack:
            raise BkError("E0501", f"block `{b.name}` uses itself", span=span)
        self.stack.append(b.name)
        try:
            out = _BlockBuilder(self, tpl, cfg, in_types, span).build()
        finally:
            self.stack.pop()
        self.memo[key] = out
        return out

    def _bind_config(self, tpl: BlockTemplate, config: dict[str, Any], span: Span | None) -> dict[str, Any]:
        formals = tpl.ast.formals or []
        names = [f.name for f in formals]
        cfg: dict[str, Any] = {}
        for k in config:
            if k not in names:
                raise BkError("E0204", f"`{tpl.name}` has no parameter `{k}`", span=span,
                              help=f"parameters: {', '.join(names) or 'none'}")
        for f in formals:
            if f.name in config:
                v = config[f.name]
            elif f.default is not None:
                v = ConstEval(tpl.scope, env=cfg, mode="component").ev(f.default)
            else:
                raise BkError("E0204", f"`{tpl.name}` needs parameter `{f.name}`", span=span)
            if f.type_name in ("int", "float", "bool", "str", "complex"):
                v = _coerce(v, f.type_name, f.name, span)
            cfg[f.name] = v
        return cfg


def _coerce(v: Any, t: str, name: str, span: Span | None) -> Any:
    ok = {"int": lambda x: isinstance(x, int) and not isinstance(x, bool),
          "float": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          "bool": lambda x: isinstance(x, bool), "str": lambda x: isinstance(x, str),
          "complex": lambda x: isinstance(x, (int, float, complex)) and not isinstance(x, bool)}[t]
    if not ok(v):
        raise BkError("E0204", f"parameter `{name}` must be {t}, got {_show(v)}", span=span)
    return float(v) if t == "float" else v


def _freeze(x: Any) -> Any:
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, Component):
        return ("component", id(x))
    if isinstance(x, pint.Quantity):
        return ("q", _freeze(x.magnitude), str(x.units))
    try:
        hash(x)
        return x
    except TypeError:
        return repr(x)


class _BlockBuilder:
    def __init__(self, el: Elaborator, tpl: BlockTemplate, cfg: dict[str, Any], in_types, span):
        self.el, self.tpl, self.cfg, self.call_span = el, tpl, cfg, span
        self.in_types = in_types
        self.scope = tpl.scope
        self.uni = DimUnifier()
        self.nodes: list[I.Node] = []
        self.params: list[I.ParamSpec] = []
        self.inputs: dict[str, ValueType] = {}
        self.outputs: dict[str, str] = {}
        self.used_names: set[str] = set()
        self._tmp = 0

    # ---- helpers
    def manifolds(self) -> dict[str, Component]:
        # the scope's manifolds are cached by the scope (a scan per builder was quadratic in the
        # size of the spec: 10 000-line specs)
        out = dict(self.scope.manifolds())
        for n, v in self.cfg.items():
            if isinstance(v, Component) and v.kind == "manifold":
                out[n] = v
                out.setdefault(v.decl_name or n, v)
        return out

    def ctx(self, span: Span | None) -> InferCtx:
        return InferCtx(self.uni, span, self.manifolds())

    def fresh(self, hint: str) -> str:
        base = _pyname(hint or "t")
        name = base
        while name in self.used_names:
            self._tmp += 1
            name = f"{base}_{self._tmp}"
        self.used_names.add(name)
        return name

    def add(self, op: str, target: Any, args: list[Any], typ: Any, span: Span | None, label: str = "",
            kwargs: dict | None = None) -> DF:
        check_type(typ, span)  # bounded before anything is built (limits.py)
        name = self.fresh(label or (getattr(target, "name", None) or op))
        self.nodes.append(I.Node(name, op, target, args, typ, span, kwargs or {}, label))
        return DF(I.NodeRef(name), typ, ("=" + label) if op in ("input", "param") else label)

    def name_value(self, v: Any, name: str) -> Any:
        """Give the node just computed for ``name = expr`` the spec's name (readable fx code)."""
        if isinstance(v, DF) and self.nodes and self.nodes[-1].name == v.ref.name and not v.label.startswith("="):
            node = self.nodes[-1]
            self.used_names.discard(node.name)
            node.name = self.fresh(name)
            v = DF(I.NodeRef(node.name), v.type, "=" + name)
        return v

    def dim(self, d: A.DimExpr, span: Span | None) -> Any:
        if d.op is None:
            if isinstance(d.value, int):
                return d.value
            v = self.cfg.get(d.value)
            if v is None:
                b = self.scope.lookup(d.value)
                v = b.value if b is not None and b.kind == "const" else None
            if v is None:
                self.uni.note(d.value, d.span or span)
                return d.value
            if not isinstance(v, int) or isinstance(v, bool):
                raise BkError("E0401", f"dimension `{d.value}` must be an integer, it is {_show(v)}", span=d.span)
            return v
        left, right = self.dim(d.left, span), self.dim(d.right, span)
        if isinstance(left, int) and isinstance(right, int):
            r = {"+": left + right, "-": left - right, "*": left * right,
                 "/": left // right if right and left % right == 0 else None}[d.op]
            if r is None:
                raise BkError("E0401", f"{left}/{right} is not an integer dimension", span=d.span)
            return r
        sym = f"{left}{d.op}{right}"
        self.uni.note(sym, d.span)
        return sym

    def vtype(self, t: A.TypeExpr) -> ValueType:
        shape = tuple(self.dim(d, t.span) for d in t.shape) if t.shape is not None else None
        if t.manifold is not None and t.manifold in self.scope.names:
            self.scope.lookup(t.manifold)  # a failed declaration: a cascade, not a new error
        if t.manifold is not None and t.manifold not in self.manifolds():
            raise BkError("E0101", f"unknown manifold `{t.manifold}`", span=t.span,
                          help="declare it: `manifold " + t.manifold + " = poincare(c = 1.0)`")
        if t.unit is not None:
            parse_unit(t.unit, t.span)
        return ValueType(shape, t.dtype or "float", t.manifold, t.unit)

    # ---- the block
    def build(self) -> I.BlockIR:
        b = self.tpl.ast
        # statement dependency graph (dataflow equations; SSA over re-assignments)
        defs: dict[str, list[int]] = {}
        for i, s in enumerate(b.body):
            nm = s.name if isinstance(s, (A.Input, A.Param, A.Assign)) else None
            if nm is not None:
                if isinstance(s, (A.Input, A.Param)) and nm in defs:
                    raise BkError("E0003", f"`{nm}` is defined twice in `{b.name}`", span=s.span)
                defs.setdefault(nm, []).append(i)
        self.block_names = set(defs)  # for "did you mean" (a statement's env holds only what it uses)
        g = nx.DiGraph()
        g.add_nodes_from(range(len(b.body)))
        binding: list[dict[str, int]] = []
        for i, s in enumerate(b.body):
            refs: dict[str, int] = {}
            expr = getattr(s, "value", None) if not isinstance(s, A.Param) else s.init
            for nm in _free_names(expr) if expr is not None else ():
                if nm in defs:
                    before = [j for j in defs[nm] if j < i]
                    j = before[-1] if before else next((j for j in defs[nm] if j > i), None)
                    if j is not None and j != i:
                        refs[nm] = j
                        g.add_edge(j, i)
                    elif j == i:
                        raise BkError("E0501", f"`{nm}` is defined in terms of itself", span=s.span)
            binding.append(refs)
        try:
            cyc = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            cyc = None
        if cyc:
            names = [getattr(b.body[u], "name", "?") for u, _ in cyc]
            raise BkError("E0501", f"cyclic dataflow: {' → '.join(names + names[:1])}",
                          span=b.body[cyc[0][0]].span,
                          notes=[f"`{getattr(b.body[v], 'name', '?')}` at {b.body[v].span}" for _, v in cyc],
                          help="a value cannot depend on itself; break the cycle")
        results: dict[int, Any] = {}
        in_list = list(self.in_types) if self.in_types is not None else None
        n_inputs = sum(isinstance(s, A.Input) for s in b.body)
        if in_list is not None and len(in_list) != n_inputs:
            raise BkError("E0204", f"`{b.name}` takes {n_inputs} input{'s' if n_inputs != 1 else ''}, "
                                   f"got {len(in_list)}", span=self.call_span)
        input_idx = 0
        for i in nx.lexicographical_topological_sort(g):
            s = b.body[i]
            env = {nm: results[j] for nm, j in binding[i].items()}
            if isinstance(s, A.Input):
                t = self.vtype(s.type)
                if in_list is not None:
                    t = self.check_input(s, t, in_list[_input_position(b.body, i)])
                input_idx += 1
                self.inputs[s.name] = t
                results[i] = self.add("input", None, [], t, s.span, s.name)
            elif isinstance(s, A.Param):
                t = self.vtype(s.type)
                init = ConstEval(self.scope, env=self.cfg).ev(s.init) if s.init is not None else None
                self.params.append(I.ParamSpec(s.name, t, init, s.span))
                results[i] = self.add("param", s.name, [], t, s.span, s.name)
            elif isinstance(s, A.Assign):
                v = self.ev(s.value, env)
                results[i] = self.name_value(v, s.name)
            elif isinstance(s, A.Output):
                v = self.ev(s.value, env)
                if not isinstance(v, DF):
                    raise BkError("E0503", "an output must be a tensor value", span=s.span)
                name = s.name or "out"
                if s.name:
                    v = self.name_value(v, s.name)
                if name in self.outputs:
                    raise BkError("E0003", f"output `{name}` is given twice", span=s.span)
                self.outputs[name] = v.ref.name
        if not self.outputs:
            raise BkError("E0503", f"`{b.name}` has no output", span=b.name_span or b.span,
                          help="add `output <expr>` to the block")
        # resolve symbolic dims in all types through the unifier
        for n in self.nodes:
            n.type = _resolve_types(n.type, self.uni)
        self.inputs = {k: _resolve_types(v, self.uni) for k, v in self.inputs.items()}
        return I.BlockIR(b.name, b.is_model, dict(self.cfg), self.inputs, self.outputs, self.nodes,
                         self.params, [c.name for c in b.claims], b.span, self.scope.file)

    def check_input(self, s: A.Input, declared: ValueType, actual: Any) -> ValueType:
        if not isinstance(actual, ValueType):
            raise BkError("E0204", f"input `{s.name}` must be a tensor", span=self.call_span)
        if declared.manifold != actual.manifold:
            where = f"on `{actual.manifold}`" if actual.manifold else "Euclidean"
            want = f"on `{declared.manifold}`" if declared.manifold else "Euclidean"
            raise BkError("E0402", f"input `{s.name}` of `{self.tpl.name}` must be {want}; the value is {where}",
                          span=self.call_span,
                          help=(f"take `logmap0({actual.manifold}, x)` first" if actual.manifold
                                else f"map it with `expmap0({declared.manifold}, x)` first"))
        if declared.dtype != actual.dtype and not (declared.dtype == "float" and actual.dtype == "float"):
            raise BkError("E0403", f"input `{s.name}` of `{self.tpl.name}` must be {declared.dtype}, "
                                   f"got {actual.dtype}", span=self.call_span)
        if declared.shape is not None and actual.shape is not None:
            if len(declared.shape) != len(actual.shape):
                raise BkError("E0401", f"input `{s.name}` of `{self.tpl.name}` has rank {len(declared.shape)} "
                                       f"({declared.show()}), got {actual.show()}", span=self.call_span)
            for dd, da in zip(declared.shape, actual.shape):
                if isinstance(dd, int) and isinstance(da, int) and dd != da:
                    raise BkError("E0401", f"input `{s.name}` of `{self.tpl.name}`: expected "
                                           f"{declared.show()}, got {actual.show()}", span=self.call_span)
                if isinstance(dd, str) and isinstance(da, int):
                    self.uni.unify(dd, da, self.call_span, f"input `{s.name}`")
            return actual.with_(unit=declared.unit or actual.unit)
        return declared

    # ---- expressions inside blocks
    def ev(self, e, env: dict[str, Any]) -> Any:
        if isinstance(e, A.Name):
            if e.id in env:
                return env[e.id]
            if e.id in self.cfg:
                return self.cfg[e.id]
            b = self.scope.lookup(e.id)
            if b is None:
                if registry.lookup(e.id, registry.NON_METRIC) is not None:
                    return registry.lookup(e.id, registry.NON_METRIC)
                if e.id == "repeat":
                    return "repeat"
                raise unknown_name(e.id, e.span, self.scope,
                                   {**dict.fromkeys(getattr(self, "block_names", ())), **env, **self.cfg})
            if b.kind == "const":
                return b.value
            if b.kind == "decl":
                return b.value.component if b.value.component is not None else b.value
            if b.kind == "block":
                return b.value
            raise BkError("E0205", f"`{e.id}` is a {b.kind}, it cannot be used inside a block", span=e.span)
        if isinstance(e, A.Call):
            return self.call(e, env)
        if isinstance(e, A.BinOp):
            left, right = self.ev(e.left, env), self.ev(e.right, env)
            if isinstance(left, DF) or isinstance(right, DF):
                return self.tensor_arith(e.op, left, right, e.span)
            return arith(e.op, left, right, e.span)
        if isinstance(e, A.Neg):
            v = self.ev(e.operand, env)
            if isinstance(v, DF):
                self.euclidean_only(v, "-", e.span)
                return self.add("function", operator.neg, [v.ref], v.type, e.span, kwargs={"fn_name": "neg"})
            return negate(v, e.span)
        if isinstance(e, A.Index):
            return self.index(e, env)
        if isinstance(e, A.Attr):
            if isinstance(e.obj, A.Name) and e.obj.id not in env:
                b = self.scope.lookup(e.obj.id)
                if b is not None and b.kind == "namespace":
                    inner = _BlockBuilder.__new__(_BlockBuilder)
                    inner.__dict__.update(self.__dict__)
                    inner.scope = b.value
                    return inner.ev(A.Name(e.name, e.span), {})
            base = self.ev(e.obj, env)
            if isinstance(base, DF) and isinstance(base.type, dict):
                if e.name not in base.type:
                    raise BkError("E0101", f"no output `{e.name}`; outputs: {', '.join(base.type)}", span=e.span)
                return self.add("function", operator.getitem, [base.ref, e.name], base.type[e.name], e.span,
                                kwargs={"fn_name": "getitem"})
            raise BkError("E0205", f"cannot take `.{e.name}` here", span=e.span)
        return ConstEval(self.scope, env={**self.cfg, **{k: v for k, v in env.items() if not isinstance(v, DF)}}).ev(e)

    def euclidean_only(self, v: DF, op: str, span: Span | None) -> None:
        if isinstance(v.type, ValueType) and v.type.manifold is not None:
            m = v.type.manifold
            hint = {"+": "mobius_add", "-": "mobius_add with a negated operand", "*": "mobius_scalar_mul"}.get(op)
            if hint is not None and registry.lookup(hint.split()[0]) is None:
                hint = None  # never name an op that is not registered
            raise BkError("E0402", f"`{op}` is Euclidean; `{v.label.lstrip('=') or 'the value'}` lives on `{m}`", span=span,
                          help=(f"use `{hint}(...)` on the manifold, or " if hint else "") +
                               f"take `logmap0({m}, {v.label.lstrip('=') or 'x'})` first")

    def tensor_arith(self, op: str, left: Any, right: Any, span: Span | None) -> DF:
        for v in (left, right):
            if isinstance(v, DF):
                self.euclidean_only(v, op, span)
        lt = left.type if isinstance(left, DF) else ValueType((), _scalar_dtype(left))
        rt = right.type if isinstance(right, DF) else ValueType((), _scalar_dtype(right))
        if op == "^" and isinstance(right, DF):
            raise BkError("E0205", "a tensor exponent is not supported", span=span)
        shape = broadcast(lt, rt, self.uni, span, f"`{op}`")
        dtype = max(lt.dtype, rt.dtype, key=lambda d: ("bool", "int", "float", "complex").index(d))
        if op == "/" and dtype == "int":
            dtype = "float"
        fn = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": operator.pow}[op]
        args = [left.ref if isinstance(left, DF) else left, right.ref if isinstance(right, DF) else right]
        return self.add("function", fn, args, ValueType(shape, dtype, None, None), span,
                        label=fn.__name__, kwargs={"fn_name": fn.__name__})

    def index(self, e: A.Index, env) -> DF:
        base = self.ev(e.obj, env)
        if not isinstance(base, DF):
            return ConstEval(self.scope).ev_Index(e)
        items: list[Any] = []
        for it in e.items:
            if isinstance(it, A.EllipsisIdx):
                items.append(Ellipsis)
            elif isinstance(it, A.Slice):
                lo = self.ev(it.lo, env) if it.lo is not None else None
                hi = self.ev(it.hi, env) if it.hi is not None else None
                for b in (lo, hi):
                    if b is not None and (not isinstance(b, int) or isinstance(b, bool)):
                        raise BkError("E0205", f"slice bounds must be integers, got {_show(b)}", span=it.span)
                items.append(slice(lo, hi))
            else:
                v = self.ev(it, env)
                if not isinstance(v, int):
                    raise BkError("E0205", "tensor indices must be integers or slices", span=it.span)
                items.append(v)
        if isinstance(base.type, (tuple, list)):
            if len(items) != 1 or not isinstance(items[0], int):
                raise BkError("E0205", "index a multi-output value with one integer", span=e.span)
            return self.add("function", operator.getitem, [base.ref, items[0]], base.type[items[0]], e.span,
                            kwargs={"fn_name": "getitem"})
        t = base.type
        return self.add("function", operator.getitem, [base.ref, tuple(items)], _index_type(t, items, e.span),
                        e.span, kwargs={"fn_name": "getitem"})

    def call(self, e: A.Call, env) -> Any:
        f = self.ev(e.func, env) if not (isinstance(e.func, A.Name) and e.func.id == "repeat"
                                         and self.scope.lookup("repeat") is None) else "repeat"
        args = [self.ev(a, env) for a in e.args]
        kwargs = {k.name: self.ev(k.value, env) for k in e.kwargs}
        if f == "repeat":
            if len(args) != 2 or kwargs or not isinstance(args[0], BlockInstance) or not isinstance(args[1], int):
                raise BkError("E0204", "`repeat(block(...), n)` takes a configured block and a count", span=e.span)
            if args[1] < 1:
                raise BkError("E0201", "`repeat` count must be at least 1", span=e.span)
            check_repeat(args[1], e.args[1].span or e.span)
            return RepeatInstance(args[0], args[1], e.span)
        if isinstance(f, BlockTemplate):
            dfs = [a for a in args if isinstance(a, DF)]
            consts = [a for a in args if not isinstance(a, DF)]
            names = [x.name for x in f.ast.formals or []]
            if len(consts) > len(names):
                raise BkError("E0204", f"`{f.name}` takes {len(names)} parameters, got {len(consts)}", span=e.span)
            cfg = dict(zip(names, consts))
            cfg.update({k: v for k, v in kwargs.items() if not isinstance(v, DF)})
            inst = BlockInstance(f, cfg, e.span)
            if not dfs:
                return inst
            return self.apply_block(inst, dfs, e.span)
        if isinstance(f, BlockInstance):
            return self.apply_block(f, [self._need_df(a, e) for a in args], e.span)
        if isinstance(f, RepeatInstance):
            if len(args) != 1:
                raise BkError("E0204", "a repeated block takes exactly one input", span=e.span)
            v = self._need_df(args[0], e)
            for _ in range(f.n):
                v = self.apply_block(f.inner, [v], e.span)
            # copies keep their block's name (bk_layer, bk_layer_1, …), not the assigned variable's
            return DF(v.ref, v.type, "=" + f.inner.template.name)
        if isinstance(f, type) and issubclass(f, Component):
            return self.apply_component(f, None, args, kwargs, e)
        if isinstance(f, Component):
            return self.apply_component(type(f), f, args, kwargs, e)
        raise BkError("E0205", "this value cannot be called", span=e.func.span or e.span)

    def _need_df(self, a: Any, e: A.Call) -> DF:
        if not isinstance(a, DF):
            raise BkError("E0204", f"expected a tensor argument, got {_kind(a)}", span=e.span)
        return a

    def apply_block(self, inst: BlockInstance, dfs: list[DF], span: Span | None) -> DF:
        sub = self.el.elaborate(inst.template, inst.config, [d.type for d in dfs], span)
        if len(sub.outputs) == 1:
            (oname, onode), = sub.outputs.items()
            t = sub.node(onode).type
        else:
            t = {k: sub.node(v).type for k, v in sub.outputs.items()}
        return self.add("block", sub, [d.ref for d in dfs], t, span, inst.template.name)

    def apply_component(self, cls: type[Component], decl: Component | None, args: list[Any],
                        kwargs: dict[str, Any], e: A.Call) -> DF:
        span = e.span
        slots = list(cls.positional or (cls.inputs + tuple(cls.Params.model_fields)))
        if decl is not None:  # a declared instance: only inputs at the call site
            slots = list(cls.inputs)
        if len(args) > len(slots):
            raise BkError("E0204", f"`{cls.name}` takes at most {len(slots)} positional arguments, got {len(args)}",
                          span=span, help=f"signature: {cls.name}({', '.join(slots)})")
        bound: dict[str, Any] = dict(zip(slots, args))
        for k, v in kwargs.items():
            if k in bound:
                raise BkError("E0204", f"`{cls.name}` got `{k}` twice", span=span)
            bound[k] = v
        ins: list[DF] = []
        for nm in cls.inputs:
            if nm not in bound:
                raise BkError("E0204", f"`{cls.name}` needs input `{nm}`", span=span,
                              help=f"signature: {cls.name}({', '.join(slots)})")
            v = bound.pop(nm)
            if not isinstance(v, DF):
                raise BkError("E0204", f"input `{nm}` of `{cls.name}` must be a tensor, got {_kind(v)}", span=span)
            ins.append(v)
        for k, v in bound.items():
            if isinstance(v, DF):
                raise BkError("E0204", f"`{cls.name}.{k}` is a parameter and must be known at compile time", span=span,
                              help=f"tensor inputs of `{cls.name}`: {', '.join(cls.inputs) or 'none'}")
        if decl is not None:
            if bound:
                raise BkError("E0204", f"`{decl.decl_name}` is declared; give its parameters in the declaration",
                              span=span)
            comp = type(decl)(decl.params, span=span, decl_name=decl.decl_name)
        else:
            comp = cls.from_args(bound, span=span, arg_spans=_arg_spans(e, slots))
        ctx = self.ctx(span)
        ctx.arg_names = [_source_name(a) for a in e.args[:len(ins)]] + [""] * max(0, len(ins) - len(e.args))
        in_types = [d.type for d in ins]
        comp.in_types = in_types
        out = comp.infer(in_types, ctx)
        comp.out_type = out
        label = decl.decl_name if decl is not None else cls.name
        return self.add("component", comp, [d.ref for d in ins], out, span, label)


def _source_name(a) -> str:
    """The spec's text for an argument when it is a plain name (for messages)."""
    return a.id if isinstance(a, A.Name) else ""


def _input_position(body: list, i: int) -> int:
    return sum(isinstance(s, A.Input) for s in body[:i])


def _scalar_dtype(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, complex):
        return "complex"
    return "float"


def _index_type(t: ValueType, items: list[Any], span: Span | None) -> ValueType:
    if t.shape is None:
        return t
    shape = list(t.shape)
    n_explicit = sum(1 for i in items if i is not Ellipsis)
    if n_explicit > len(shape):
        raise BkError("E0401", f"too many indices ({n_explicit}) for a value of rank {len(shape)}", span=span)
    out: list[Any] = []
    pos = 0
    for it in items:
        if it is Ellipsis:
            k = len(shape) - n_explicit
            out.extend(shape[pos:pos + k])
            pos += k
        elif isinstance(it, int):
            d = shape[pos]
            if isinstance(d, int) and not -d <= it < d:
                raise BkError("E0401", f"index {it} out of range for dimension of size {d}", span=span)
            pos += 1
        else:
            d = shape[pos]
            if isinstance(d, int):
                out.append(len(range(d)[it]))
            elif it.start is None and it.stop is None:
                out.append(d)
            elif isinstance(it.start, int) and isinstance(it.stop, int) and it.start >= 0 and it.stop >= 0:
                out.append(max(0, it.stop - it.start))
            else:
                out.append(f"{d}[{it.start or ''}:{it.stop or ''}]")
            pos += 1
    out.extend(shape[pos:])
    return t.with_(shape=tuple(out))


def _resolve_types(t: Any, uni: DimUnifier) -> Any:
    if isinstance(t, ValueType):
        return t.with_(shape=uni.resolve_shape(t.shape))
    if isinstance(t, tuple):
        return tuple(_resolve_types(x, uni) for x in t)
    if isinstance(t, dict):
        return {k: _resolve_types(v, uni) for k, v in t.items()}
    return t


def _free_names(e) -> set[str]:
    out: set[str] = set()

    def walk(x) -> None:
        if isinstance(x, A.Name):
            out.add(x.id)
        elif isinstance(x, A.Kwarg):
            walk(x.value)
        elif isinstance(x, A.Attr):
            walk(x.obj)
        elif isinstance(x, list):
            for y in x:
                walk(y)
        elif hasattr(x, "__dataclass_fields__"):
            for f in x.__dataclass_fields__:
                if f != "span":
                    walk(getattr(x, f))

    walk(e)
    return out


_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")


@functools.lru_cache(maxsize=4096)  # a handful of distinct hints, asked once per node
def _pyname(s: str) -> str:
    """``s`` as a Python identifier (fx node names)."""
    s = _NOT_IDENT.sub("_", s)
    if not s or s[0].isdigit():
        s = "v_" + s
    return s + "_" if keyword.iskeyword(s) else s


def elaborate_model_call(call: Any, scope: Scope, span: Span | None, el: Elaborator | None = None) -> I.BlockIR:
    """``mtl(d_z = 2)`` (a CallValue) or ``mtl`` (a Ref) → the elaborated model."""
    if isinstance(call, Ref):
        call = CallValue(call.path, [], {}, span=call.span)
    if not isinstance(call, CallValue):
        raise BkError("E0609", "`model` must name a model, e.g. `model = mtl(d_z = 2)`", span=span)
    b = scope.lookup(call.name)
    if b is None and "." in call.name:
        ns, _, nm = call.name.partition(".")
        nsb = scope.lookup(ns)
        b = nsb.value.lookup(nm) if nsb is not None and nsb.kind == "namespace" else None
    if b is None or b.kind != "block":
        raise BkError("E0101", f"unknown model `{call.name}`", span=call.span or span)
    tpl: BlockTemplate = b.value
    names = [f.name for f in tpl.ast.formals or []]
    cfg = dict(zip(names, call.args))
    cfg.update(call.kwargs)
    return (el or Elaborator()).elaborate(tpl, cfg, None, call.span or span)
