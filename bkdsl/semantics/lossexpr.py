"""Loss and metric expressions: one interpreter, two uses.

``loss mtl(alpha) = mse(E) + alpha * l2_integral(rho, measure = cylinder(dr, dz))`` is evaluated over
*unit-tagged values* :class:`UT` (a magnitude and a pint unit):

* at compile time the magnitudes are ``None`` — only units flow, so ``mse(E) + l2_integral(rho)``
  fails with E0203 naming both units, and ``alpha * l2_integral(...)`` with ``alpha`` in fm⁻³ passes;
* at run time the magnitudes are tensors; adding values in compatible units rescales by the exact
  pint factor, and the total is converted to a dimensionless number. Hot loops never see pint: the
  factors are Python floats computed from the units.

A bare field name ``E`` inside a loss primitive means the pair (model output ``E``, data field ``E``);
two names ``cross_entropy(logits, next)`` mean (model output ``logits``, data field ``next``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pint

from bkdsl import registry
from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.consteval import ConstEval, _call_name, instantiate, unknown_component
from bkdsl.semantics.units import DIMENSIONLESS, Q_, parse_unit, unit_str, ureg
from bkdsl.syntax import ast as A
from bkdsl.syntax.fmt import expr as show


@dataclass
class UT:
    """A unit-tagged value: ``mag`` (tensor, float or None at compile time) in unit ``unit``."""

    mag: Any
    unit: Any  # pint.Unit
    text: str = ""

    def factor_to(self, other_unit) -> float:
        return float(Q_(1.0, self.unit).to(other_unit).magnitude)


@dataclass
class FieldRef:
    name: str
    span: Span | None


def _mul(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return a * b


class LossInterpreter:
    """Evaluates a loss expression. ``fields(name) -> (pred, target, unit)``; pred/target are tensors
    at run time or None at compile time."""

    def __init__(self, scope, env: dict[str, Any], fields: Callable[[str, Span | None], tuple[Any, Any, Any]],
                 model_outputs: Callable[[str], Any] | None = None):
        self.scope = scope
        self.env = env
        self.fields = fields
        self.model_outputs = model_outputs

    def ev(self, e) -> Any:
        if isinstance(e, A.Num):
            return UT(e.value, DIMENSIONLESS, e.text)
        if isinstance(e, A.Quantity):
            q = ConstEval(self.scope).ev(e)
            return UT(q.magnitude, q.units, show(e))
        if isinstance(e, A.Name):
            if e.id in self.env:
                return _as_ut(self.env[e.id], e.id)
            b = self.scope.lookup(e.id) if self.scope is not None else None
            if b is not None and b.kind == "const":
                return _as_ut(b.value, e.id)
            return FieldRef(e.id, e.span)
        if isinstance(e, A.Neg):
            v = self._num(self.ev(e.operand), e)
            return UT(None if v.mag is None else -v.mag, v.unit, f"-{v.text}")
        if isinstance(e, A.BinOp):
            a, b = self._num(self.ev(e.left), e.left), self._num(self.ev(e.right), e.right)
            return self.binop(e, a, b)
        if isinstance(e, A.Call):
            return self.call(e)
        raise BkError("E0205", f"`{show(e)}` is not allowed in a loss", span=e.span)

    def total(self, e) -> UT:
        """The value of a whole loss expression (a bare field is not a loss)."""
        return self._num(self.ev(e), e)

    def _num(self, v: Any, e) -> UT:
        if isinstance(v, FieldRef):
            raise BkError("E0205", f"`{v.name}` is a field; use it inside a loss term such as `mse({v.name})`",
                          span=v.span)
        return v

    def binop(self, e: A.BinOp, a: UT, b: UT) -> UT:
        text = show(e)
        if e.op in ("+", "-"):
            try:
                f = b.factor_to(a.unit)
            except pint.DimensionalityError:
                raise BkError(
                    "E0203",
                    f"unit mismatch in `{e.op}`: `{a.text}` is in {unit_str(a.unit)} but `{b.text}` is in "
                    f"{unit_str(b.unit)}", span=e.span,
                    help=f"weight one term so both have the same unit, e.g. `{a.text} {e.op} alpha * {b.text}` "
                         f"with alpha in {unit_str(a.unit / b.unit)}") from None
            if a.mag is None or b.mag is None:
                return UT(None, a.unit, text)
            return UT(a.mag + f * b.mag if e.op == "+" else a.mag - f * b.mag, a.unit, text)
        if e.op == "*":
            return UT(_mul(a.mag, b.mag), a.unit * b.unit, text)
        if e.op == "/":
            return UT(None if a.mag is None or b.mag is None else a.mag / b.mag, a.unit / b.unit, text)
        if e.op == "^":
            if b.unit != DIMENSIONLESS or not isinstance(b.mag, (int, float)):
                raise BkError("E0203", "an exponent must be a dimensionless number", span=e.span)
            return UT(None if a.mag is None else a.mag ** b.mag, a.unit ** b.mag, text)
        raise AssertionError(e.op)

    def call(self, e: A.Call) -> UT:
        name = _call_name(e.func) or "?"
        cls = registry.lookup(name, "loss") or registry.lookup(name)
        if cls is None:
            raise unknown_component(name, e.func.span or e.span)
        if cls.kind != "loss":
            raise BkError("E0105", f"`{name}` is a {cls.kind}; a loss is built from loss terms", span=e.span)
        fields = [a for a in e.args if isinstance(a, A.Name) and self._is_field(a)]
        rest = [a for a in e.args if a not in fields]
        ev = ConstEval(self.scope, env={k: v for k, v in self.env.items()}, mode="component")
        params = instantiate(cls, [ev.ev(a) for a in rest], {k.name: ev.ev(k.value) for k in e.kwargs}, e.span)
        if not 1 <= len(fields) <= 2:
            raise BkError("E0204", f"`{name}` takes one field (compared with the model's output of the same "
                                   "name) or two (output, target)", span=e.span)
        if len(fields) == 1:
            pred, target, u = self.fields(fields[0].id, fields[0].span)
        else:
            pred, _, u = self.fields(fields[0].id, fields[0].span, role="output")
            _, target, u2 = self.fields(fields[1].id, fields[1].span, role="target")
        unit = params.loss_unit(u)
        mag = None if pred is None else params.evaluate(pred, target)
        return UT(mag, unit, show(e))

    def _is_field(self, a: A.Name) -> bool:
        if a.id in self.env:
            return False
        b = self.scope.lookup(a.id) if self.scope is not None else None
        return b is None or b.kind not in ("const", "decl")


def _as_ut(v: Any, text: str) -> UT:
    if isinstance(v, pint.Quantity):
        return UT(v.magnitude, v.units, text)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return UT(v, DIMENSIONLESS, text)
    raise BkError("E0205", f"`{text}` is not a number")


def bind_formals(loss, call: Any, span: Span | None) -> dict[str, Any]:
    """Values of a loss declaration's formals from ``mtl(alpha = 1e-3 fm^-3)``."""
    from bkdsl.semantics.values import CallValue

    env = dict(loss.defaults)
    if isinstance(call, CallValue):
        if len(call.args) > len(loss.formals):
            raise BkError("E0204", f"loss `{loss.name}` takes {len(loss.formals)} parameters", span=call.span or span)
        env.update(zip(loss.formals, call.args))
        for k, v in call.kwargs.items():
            if k not in loss.formals:
                raise BkError("E0204", f"loss `{loss.name}` has no parameter `{k}`", span=call.span or span,
                              help=f"parameters: {', '.join(loss.formals) or 'none'}")
            env[k] = v
    missing = [f for f in loss.formals if f not in env]
    if missing:
        raise BkError("E0204", f"loss `{loss.name}` needs `{missing[0]}`", span=(call.span if call is not None
                                                                                 and getattr(call, 'span', None) else span),
                      help=f"write `loss = {loss.name}({missing[0]} = ...)`")
    return env


class LossProgram:
    """A loss declaration bound to its arguments, callable on (model outputs, batch).

    ``outputs`` and ``batch`` map names to tensors; ``units`` maps field names to the pint unit the
    batch holds them in (dimensionless after normalisation)."""

    def __init__(self, loss, call: Any, units: dict[str, Any] | None = None):
        self.loss = loss
        self.env = bind_formals(loss, call, loss.span)
        self.units = units or {}

    def __call__(self, outputs: dict[str, Any], batch: dict[str, Any]):
        terms: dict[str, Any] = {}

        def fields(name: str, span, role: str = "both"):
            u = self.units.get(name, DIMENSIONLESS)
            pred = outputs.get(name) if role in ("both", "output") else None
            target = batch.get(name) if role in ("both", "target") else None
            if role in ("both", "output") and pred is None:
                pred = batch.get(name) if role == "output" else None
                if pred is None:
                    raise BkError("E0601", f"loss term needs model output `{name}`; outputs: "
                                           f"{', '.join(outputs)}", span=span)
            if role in ("both", "target") and target is None:
                raise BkError("E0601", f"loss term needs data field `{name}`; fields: {', '.join(batch)}", span=span)
            return pred, target, u

        interp = _RecordingInterpreter(self.loss.scope, self.env, fields, terms)
        total = interp.total(self.loss.expr)
        f = total.factor_to(DIMENSIONLESS) if total.unit != DIMENSIONLESS else 1.0
        return total.mag * f if f != 1.0 else total.mag, terms


class _RecordingInterpreter(LossInterpreter):
    def __init__(self, scope, env, fields, terms):
        super().__init__(scope, env, fields)
        self.terms = terms

    def call(self, e):
        v = super().call(e)
        self.terms[v.text] = v.mag
        return v


def loss_unit(loss, call: Any, field_units: dict[str, Any] | None, span: Span | None) -> Any:
    """The unit of a loss expression given the data's field units (compile-time check)."""
    env = bind_formals(loss, call, span) if call is not None or not loss.formals else {
        f: Q_(1.0, DIMENSIONLESS) for f in loss.formals}
    fu = field_units or {}

    def fields(name: str, sp, role: str = "both"):
        if field_units is not None and name not in fu and role != "output":
            raise BkError("E0601", f"the loss uses field `{name}`, which the data does not provide", span=sp,
                          help=f"fields: {', '.join(fu) or 'none'}")
        return None, None, fu.get(name, DIMENSIONLESS)

    return LossInterpreter(loss.scope, env, fields).total(loss.expr).unit


def parse_field_unit(text: str | None) -> Any:
    return DIMENSIONLESS if not text or text == "1" else parse_unit(text)


__all__ = ["UT", "LossInterpreter", "LossProgram", "loss_unit", "bind_formals", "ureg"]
