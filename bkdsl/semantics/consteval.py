"""Constant evaluation: expressions evaluated at compile time (numbers, quantities with pint units,
lists, component calls validated by their schemas), and the name/component lookups with "did you mean"."""

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import networkx as nx
import pint

from bkdsl import registry
from bkdsl.registry import Component, InferCtx
from bkdsl.diagnostics import BkError, Diagnostic, Span, did_you_mean
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import DimUnifier, ValueType, broadcast
from bkdsl.semantics.units import Q_, parse_unit, unit_str
from bkdsl.semantics.limits import check_power
from bkdsl.semantics.values import CallValue, Ref, show_value
from bkdsl.syntax import ast as A
from bkdsl.semantics.scope import DF, BlockInstance, BlockTemplate, Binding, RepeatInstance, Scope

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": operator.pow,
}


class ConstEval:
    """Evaluates expressions at compile time.

    ``mode``: ``"const"`` — every name must be a constant; ``"component"`` — calls of registry
    components become validated instances (declarations); ``"deferred"`` — calls become
    :class:`CallValue` and unknown names :class:`Ref` (data and train blocks).
    """

    def __init__(self, scope: Scope, env: dict[str, Any] | None = None, mode: str = "const"):
        self.scope = scope
        self.env = env or {}
        self.mode = mode

    def __call__(self, e: A.Expr) -> Any:
        return self.ev(e)

    def ev(self, e) -> Any:
        m = getattr(self, "ev_" + type(e).__name__)
        return m(e)

    def ev_Num(self, e: A.Num):
        return e.value

    def ev_Imag(self, e: A.Imag):
        return e.value

    def ev_Str(self, e: A.Str):
        return e.value

    def ev_Bool(self, e: A.Bool):
        return e.value

    def ev_ListExpr(self, e: A.ListExpr):
        return [self.ev(x) for x in e.items]

    def ev_Quantity(self, e: A.Quantity):
        u = parse_unit(e.unit, e.span)
        mag = self.ev(e.magnitude)
        if isinstance(mag, list):
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in mag):
                raise BkError("E0205", "a list with a unit must hold plain numbers", span=e.span)
        return Q_(mag, u)

    def ev_Name(self, e: A.Name):
        if e.id in self.env:
            return self.env[e.id]
        b = self.scope.lookup(e.id)
        if b is None:
            if self.mode == "deferred":
                return Ref(e.id, e.span)
            raise unknown_name(e.id, e.span, self.scope, self.env)
        if b.kind == "const":
            return b.value
        if b.kind == "decl":
            return b.value.component if b.value.component is not None else b.value
        if self.mode == "deferred" and b.kind in ("data", "loss", "block"):
            return Ref(e.id, e.span)
        if b.kind == "block":
            return b.value
        raise BkError("E0205", f"`{e.id}` is a {b.kind} declaration, not a value", span=e.span)

    def ev_Attr(self, e: A.Attr):
        if isinstance(e.obj, A.Name):
            b = self.scope.lookup(e.obj.id)
            if b is not None and b.kind == "namespace":
                inner = ConstEval(b.value, mode=self.mode)
                return inner.ev_Name(A.Name(e.name, e.span))
        base = self.ev(e.obj)
        if isinstance(base, Ref):
            return Ref(f"{base.path}.{e.name}", e.span)
        raise BkError("E0205", f"cannot take `.{e.name}` of a compile-time value", span=e.span)

    def ev_Neg(self, e: A.Neg):
        return negate(self.ev(e.operand), e.span)

    def ev_BinOp(self, e: A.BinOp):
        left, right = self.ev(e.left), self.ev(e.right)
        return arith(e.op, left, right, e.span)

    def ev_InUnit(self, e: A.InUnit):
        v = self.ev(e.expr)
        u = parse_unit(e.unit, e.span)
        if isinstance(v, CallValue):
            v.unit = e.unit
            return v
        if isinstance(v, pint.Quantity):
            try:
                return v.to(u)
            except pint.DimensionalityError:
                raise BkError("E0203", f"cannot express {unit_str(v.units)} in {e.unit}", span=e.span) from None
        raise BkError("E0205", f"`in {e.unit}` applies to a quantity or a metric", span=e.span)

    def ev_Index(self, e: A.Index):
        base = self.ev(e.obj)
        if isinstance(base, list) and len(e.items) == 1 and not isinstance(e.items[0], (A.Slice, A.EllipsisIdx)):
            i = self.ev(e.items[0])
            if isinstance(i, int) and -len(base) <= i < len(base):
                return base[i]
        raise BkError("E0205", "unsupported compile-time indexing", span=e.span)

    def ev_Call(self, e: A.Call):
        args = [self.ev(a) for a in e.args]
        kwargs = {k.name: self.ev(k.value) for k in e.kwargs}
        fname = _call_name(e.func)
        if self.mode == "deferred" or fname is None:
            if fname is None:
                raise BkError("E0205", "only named components can be called here", span=e.span)
            cv = CallValue(fname, args, kwargs, span=e.span,
                           arg_spans={k.name: k.value.span for k in e.kwargs})
            return cv
        cls = lookup_component(fname, e.func, self.scope)
        if cls is None:
            raise unknown_component(fname, e.func.span or e.span)
        if self.mode == "const" and cls.kind not in ("measure",):
            raise BkError("E0205", f"`{fname}(...)` is a component, not a constant", span=e.span,
                          help="declare it (e.g. `manifold m = poincare(c = 1.0)`) and use its name")
        return instantiate(cls, args, kwargs, e.span, call=e)


def _call_name(func) -> str | None:
    if isinstance(func, A.Name):
        return func.id
    if isinstance(func, A.Attr) and isinstance(func.obj, A.Name):
        return f"{func.obj.id}.{func.name}"
    return None


def lookup_component(name: str, func_ast, scope: Scope) -> type[Component] | None:
    if "." in name:
        ns, _, attr = name.partition(".")
        b = scope.lookup(ns)
        if b is not None and b.kind == "namespace":
            return registry.lookup(attr, registry.NON_METRIC)
        return None
    return registry.lookup(name, registry.NON_METRIC)


def instantiate(cls: type[Component], args: list[Any], kwargs: dict[str, Any], span: Span | None,
                decl_name: str | None = None, call: A.Call | None = None) -> Component:
    """Bind positional compile-time arguments to parameter names, validate, build the instance."""
    slots = [p for p in (cls.positional or tuple(cls.Params.model_fields)) if p not in cls.inputs]
    if len(args) > len(slots):
        raise BkError("E0204", f"`{cls.name}` takes at most {len(slots)} positional parameter"
                               f"{'s' if len(slots) != 1 else ''}, got {len(args)}", span=span,
                      help=f"parameters: {', '.join(cls.Params.model_fields) or 'none'}")
    kw = dict(zip(slots, args))
    for k, v in kwargs.items():
        if k in kw:
            raise BkError("E0204", f"`{cls.name}` got `{k}` twice", span=span)
        kw[k] = v
    return cls.from_args(kw, span=span, decl_name=decl_name, arg_spans=_arg_spans(call, slots))


def _arg_spans(call: A.Call | None, slots: list[str]) -> dict[str, Span]:
    """Parameter name → span of the argument written for it (positional by slot, keywords by name)."""
    if call is None:
        return {}
    out = {s: a.span for s, a in zip(slots, call.args) if a.span is not None}
    out.update({k.name: k.value.span or k.span for k in call.kwargs if (k.value.span or k.span) is not None})
    return out


def negate(v: Any, span: Span | None) -> Any:
    """−v for a compile-time number, quantity or list of them."""
    if isinstance(v, list):
        return [negate(x, span) for x in v]
    try:
        return -v
    except TypeError:
        raise BkError("E0205", "cannot negate this value", span=span) from None


def arith(op: str, left: Any, right: Any, span: Span | None) -> Any:
    f = _ARITH[op]
    if op == "^":
        check_power(left, right, span)
    try:
        if isinstance(left, list) and not isinstance(right, list):
            return [arith(op, x, right, span) for x in left]
        if isinstance(right, list) and not isinstance(left, list):
            return [arith(op, left, x, span) for x in right]
        return f(left, right)
    except pint.DimensionalityError as err:
        raise BkError("E0203", f"unit mismatch in `{op}`: {unit_str(err.units1)} vs {unit_str(err.units2)}",
                      span=span, help="both sides of + and - must have the same dimension") from None
    except ZeroDivisionError:
        raise BkError("E0205", f"division by zero in `{op}`", span=span) from None
    except OverflowError:
        raise BkError("E0207", f"`{op}` overflows a 64-bit float", span=span) from None
    except ValueError:  # numpy: two lists (with units) of different lengths
        raise BkError("E0205", f"cannot compute `{op}` of lists of different lengths "
                               f"({_length(left)} and {_length(right)})", span=span,
                      help="lists combine element by element; give both the same length") from None
    except TypeError:
        raise BkError("E0205", f"cannot compute `{op}` of {_kind(left)} and {_kind(right)}", span=span) from None


def _length(v: Any) -> str:
    m = getattr(v, "magnitude", v)
    try:
        return str(len(m))
    except TypeError:
        return "a scalar"


def _show(v: Any) -> str:
    """A compile-time value as the spec would write it (`-0.1i`, `3 fm`), else what kind it is."""
    if isinstance(v, (bool, int, float, complex, str, pint.Quantity)) or (
            isinstance(v, list) and all(isinstance(x, (bool, int, float, complex, str)) for x in v)):
        s = show_value(v)
        return s if len(s) <= 60 else s[:57] + "…"
    return _kind(v)


def _kind(v: Any) -> str:
    """What a compile-time value is, in the language's words (never a Python repr)."""
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, complex):
        return "a complex number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, pint.Quantity):
        return "a quantity"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, Ref):
        return f"`{v.path}`"
    if isinstance(v, CallValue):
        return f"`{v.name}(...)`"
    if isinstance(v, Component):
        return f"the component `{v.decl_name or v.name}`"
    if isinstance(v, type) and issubclass(v, Component):
        return f"the component `{v.name}`"
    if isinstance(v, DF):
        return f"the tensor `{v.label.lstrip('=')}`" if v.label.lstrip("=") else "a tensor"
    if isinstance(v, (BlockTemplate, BlockInstance, RepeatInstance)):
        return "a block"
    return "this value"


def unknown_name(name: str, span: Span | None, scope: Scope, env: dict | None = None) -> BkError:
    """E0101 with "did you mean" over local names, the config, and the registry's components."""
    cands = [*scope.names, *(env or {}), *registry.names()]
    help = did_you_mean(name, cands, "define it with `const`, a declaration, or an import")
    return BkError("E0101", f"unknown name `{name}`", span=span, help=help)


def unknown_component(name: str, span: Span | None) -> BkError:
    help = did_you_mean(name.split(".")[-1], registry.names(),
                       "no component has this name (`bkdsl components` lists them, docs/components.md); "
                       "Python code adds one with `@bkdsl.component(...)`")
    return BkError("E0104", f"unknown component `{name}`", span=span, help=help)
