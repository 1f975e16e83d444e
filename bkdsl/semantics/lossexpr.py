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

Tensor operands (issue 16): a loss term may also take explicit tensors, written from two roots,

* ``data.NAME`` — the batch's field NAME (in the data's unit);
* ``model.NAME`` — the model's output NAME on the batch; ``model(x = E).NAME`` — the model applied to
  a transformed input (consistency, distillation); ``model.r.h`` — the parameter (or buffer) ``h``
  of the op that defines ``r`` in the model, ``model.enc`` all parameters of ``enc`` (regularisers
  over weights; a block's own ``param W`` is ``model.W``);

combined with ``+ − * / ^`` and ``reverse(E)``, the time reversal the data source declares
(bkdsl/train/reversal.py: R(q, p) = (q, −p) for phase-space states, reversed order for sequences).
So the bidirectional consistency loss of source 000 §4.2 is
``mse(x_next) + lam * mse(reverse(model(x = reverse(model.x_next)).x_next), data.x)`` and the AdS
smoothness regulariser ``c * smoothness(model.r.h, weight = model.r.eta ^ 4)``. Operand units: a data
field's unit; an output named like a data field has that field's unit; parameters are dimensionless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pint

from bkdsl import registry
from bkdsl.diagnostics import BkError, Span, did_you_mean
from bkdsl.semantics.consteval import ConstEval, _call_name, instantiate, unknown_component
from bkdsl.semantics.lossoperands import (DataRef, ModelRef, ModelView, ModuleRef, TensorSource, module_paths,
                                          module_tensors, uses_reverse)
from bkdsl.semantics.units import DIMENSIONLESS, Q_, parse_unit, unit_str, ureg
from bkdsl.syntax import ast as A
from bkdsl.syntax.fmt import expr as show


@dataclass
class UT:
    """A unit-tagged value: ``mag`` (tensor, float or None at compile time) in unit ``unit``."""

    mag: Any
    unit: Any  # pint.Unit
    text: str = ""
    tensor: bool = False  # a tensor operand (or arithmetic on one): not a loss until a term reduces it

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
    at run time or None at compile time. ``tensors`` (run time) reads tensor operands; ``model`` (compile
    time, optional) names the model's inputs and outputs so operands are checked before training."""

    def __init__(self, scope, env: dict[str, Any], fields: Callable[[str, Span | None], tuple[Any, Any, Any]],
                 model_outputs: Callable[[str], Any] | None = None, tensors: TensorSource | None = None,
                 field_units: dict[str, Any] | None = None, model: Any = None):
        self.scope = scope
        self.env = env
        self.fields = fields
        self.model_outputs = model_outputs
        self.tensors = tensors
        self.field_units = field_units or {}
        self.model = model  # a Signature-like object (inputs, outputs) or None

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
            if e.id == "model":
                return ModelRef(None, "model", e.span)
            if e.id == "data":
                return DataRef(e.span)
            return FieldRef(e.id, e.span)
        if isinstance(e, A.Attr):
            return self.attr(e)
        if isinstance(e, A.Neg):
            v = self._num(self.ev(e.operand), e)
            return UT(None if v.mag is None else -v.mag, v.unit, f"-{v.text}", v.tensor)
        if isinstance(e, A.BinOp):
            a, b = self._num(self.ev(e.left), e.left), self._num(self.ev(e.right), e.right)
            return self.binop(e, a, b)
        if isinstance(e, A.Call):
            if isinstance(e.func, A.Name) and e.func.id == "model":
                return self.model_call(e)
            if isinstance(e.func, A.Name) and e.func.id == "reverse" and self._free("reverse"):
                return self.reverse(e)
            return self.call(e)
        raise BkError("E0205", f"`{show(e)}` is not allowed in a loss", span=e.span)

    def _free(self, name: str) -> bool:
        """``name`` is not a formal, constant or declaration of the spec (so a builtin may take it)."""
        return name not in self.env and (self.scope is None or self.scope.lookup(name) is None)

    # -- tensor operands ------------------------------------------------------------------------
    def attr(self, e: A.Attr) -> Any:
        obj = self.ev(e.obj)
        if isinstance(obj, DataRef):
            return self.data_field(e.name, e.span)
        if isinstance(obj, ModelRef):
            return self.model_output(obj, e.name, e.span)
        if isinstance(obj, ModuleRef):
            return ModuleRef(obj.path + (e.name,), e.span)
        raise BkError("E0205", f"`{show(e)}` is not allowed in a loss", span=e.span,
                      help="attributes read `data.FIELD`, `model.OUTPUT`, `model(x = ...).OUTPUT` or "
                           "`model.OP.PARAM`")

    def data_field(self, name: str, span: Span | None) -> UT:
        if self.field_units and name not in self.field_units:
            raise BkError("E0601", f"`data.{name}`: the data has no field `{name}`", span=span,
                          help=did_you_mean(name, self.field_units, f"fields: {', '.join(self.field_units)}"))
        unit = self.field_units.get(name, DIMENSIONLESS)
        if self.tensors is None:
            return UT(None, unit, f"data.{name}", True)
        if name not in self.tensors.batch:
            raise BkError("E0601", f"`data.{name}`: the batch has no field `{name}`", span=span,
                          help=f"fields: {', '.join(self.tensors.batch)}")
        return UT(self.tensors.batch[name], unit, f"data.{name}", True)

    def model_output(self, ref: ModelRef, name: str, span: Span | None) -> Any:
        outputs = None if self.model is None else list(self.model.outputs)
        if self.tensors is not None:
            outs = (self.tensors.outputs if ref.inputs is None else
                    self.tensors.call_model({k: v.mag for k, v in ref.inputs.items()}, ref.text, span))
            if name in outs:
                return UT(outs[name], self.field_units.get(name, DIMENSIONLESS), f"{ref.text}.{name}", True)
        elif outputs is None or name in outputs:
            if outputs is not None or ref.inputs is not None or name in self.field_units:
                return UT(None, self.field_units.get(name, DIMENSIONLESS), f"{ref.text}.{name}", True)
        if ref.inputs is not None:
            known = outputs if outputs is not None else list(self.tensors.outputs) if self.tensors else []
            raise BkError("E0601", f"`{ref.text}.{name}`: the model has no output `{name}`", span=span,
                          help=did_you_mean(name, known, f"outputs: {', '.join(known) or 'none'}"))
        return ModuleRef((name,), span)  # not an output: a path to an op's parameters

    def model_call(self, e: A.Call) -> ModelRef:
        if e.args or not e.kwargs:
            raise BkError("E0204", "`model(...)` takes the inputs it replaces by name, e.g. `model(x = reverse(data.x))`",
                          span=e.span)
        ins = {}
        for k in e.kwargs:
            if self.model is not None and k.name not in self.model.inputs:
                known = list(self.model.inputs)
                raise BkError("E0204", f"the model has no input `{k.name}`", span=k.span,
                              help=did_you_mean(k.name, known, f"inputs: {', '.join(known)}"))
            ins[k.name] = self.operand(k.value)
        return ModelRef(ins, show(e), e.span)

    def reverse(self, e: A.Call) -> UT:
        if len(e.args) != 1 or e.kwargs:
            raise BkError("E0204", "`reverse` takes one tensor, e.g. `reverse(data.x)`", span=e.span)
        v = self.operand(e.args[0])
        if v.mag is None:
            return UT(None, v.unit, show(e), True)
        if self.tensors is None or self.tensors.reverse is None:
            raise BkError("E0612", "`reverse(...)` needs the data's time-reversal structure, and this data "
                                   "declares none", span=e.span,
                          help="train on a source that declares one (bkdsl/train/reversal.py)")
        return UT(self.tensors.reverse(v.mag), v.unit, show(e), True)

    def operand(self, e) -> UT:
        """A tensor operand: evaluated, module paths read as parameters."""
        v = self.ev(e)
        if isinstance(v, ModuleRef):
            return self.parameters(v)
        if isinstance(v, FieldRef):
            raise BkError("E0205", f"`{v.name}` is ambiguous here: write `model.{v.name}` (the model's output) "
                                   f"or `data.{v.name}` (the data field)", span=v.span)
        if isinstance(v, (ModelRef, DataRef)):
            raise BkError("E0205", f"`{show(e)}` is not a tensor: read one of its outputs or fields, e.g. "
                                   f"`{show(e)}.NAME`", span=e.span)
        return v

    def parameters(self, ref: ModuleRef) -> UT:
        text = "model." + ".".join(ref.path)
        if self.model is not None and self.tensors is None:
            names = getattr(self.model, "names", None)
            if names is not None and ref.path[0] not in names:
                raise BkError("E0101", f"`{text}`: the model has no output, op or parameter `{ref.path[0]}`",
                              span=ref.span, help=did_you_mean(ref.path[0], sorted(names),
                                                               f"names in the model: {', '.join(sorted(names))}"))
        if self.tensors is None:
            return UT(None, DIMENSIONLESS, text, True)
        return UT(self.tensors.parameters(ref.path, ref.span), DIMENSIONLESS, text, True)

    def _is_tensor_expr(self, e) -> bool:
        """Does ``e`` (a loss term's argument) read tensors through `model`, `data` or `reverse`?"""
        if isinstance(e, A.Name):
            return e.id in ("model", "data") and self._free(e.id)
        if isinstance(e, A.Attr):
            return self._is_tensor_expr(e.obj)
        if isinstance(e, A.Call):
            if isinstance(e.func, A.Name) and e.func.id in ("model", "reverse") and self._free(e.func.id):
                return True
            return False
        if isinstance(e, A.BinOp):
            return self._is_tensor_expr(e.left) or self._is_tensor_expr(e.right)
        if isinstance(e, A.Neg):
            return self._is_tensor_expr(e.operand)
        return False

    # -- arithmetic -----------------------------------------------------------------------------
    def total(self, e) -> UT:
        """The value of a whole loss expression (a bare field is not a loss)."""
        v = self._num(self.ev(e), e)
        if v.tensor:
            raise BkError("E0205", f"`{show(e)}` is a tensor, not a loss: compare it inside a loss term, "
                                   "e.g. `mse(a, b)`", span=e.span)
        return v

    def _num(self, v: Any, e) -> UT:
        if isinstance(v, FieldRef):
            raise BkError("E0205", f"`{v.name}` is a field; use it inside a loss term such as `mse({v.name})`",
                          span=v.span)
        if isinstance(v, ModuleRef):
            return self.parameters(v)
        if isinstance(v, (ModelRef, DataRef)):
            raise BkError("E0205", f"`{show(e)}` is not a number: read an output or field, e.g. `{show(e)}.NAME`",
                          span=getattr(e, "span", None))
        if isinstance(v, UT) and isinstance(v.mag, tuple):
            raise BkError("E0205", f"`{v.text}` is a set of parameters: use it inside a regulariser such as "
                                   f"`weight_decay({v.text})`", span=getattr(e, "span", None))
        return v

    def binop(self, e: A.BinOp, a: UT, b: UT) -> UT:
        v = self._binop(e, a, b)
        v.tensor = a.tensor or b.tensor
        return v

    def _binop(self, e: A.BinOp, a: UT, b: UT) -> UT:
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

    # -- loss terms -----------------------------------------------------------------------------
    def call(self, e: A.Call) -> UT:
        name = _call_name(e.func) or "?"
        cls = registry.lookup(name, "loss") or registry.lookup(name)
        if cls is None:
            raise unknown_component(name, e.func.span or e.span)
        if cls.kind != "loss":
            raise BkError("E0105", f"`{name}` is a {cls.kind}; a loss is built from loss terms", span=e.span)
        tensor_kw = set(getattr(cls, "tensor_kwargs", ()))
        operands = [a for a in e.args if self._is_tensor_expr(a)]
        fields = [a for a in e.args if isinstance(a, A.Name) and a not in operands and self._is_field(a)]
        rest = [a for a in e.args if a not in fields and a not in operands]
        ev = ConstEval(self.scope, env={k: v for k, v in self.env.items()}, mode="component")
        params = instantiate(cls, [ev.ev(a) for a in rest],
                             {k.name: ev.ev(k.value) for k in e.kwargs if k.name not in tensor_kw}, e.span)
        arity = getattr(cls, "arity", 2)
        if operands or arity == 1:
            return self._tensor_term(e, name, params, [a for a in e.args if a in operands or a in fields],
                                     {k.name: self.operand(k.value) for k in e.kwargs if k.name in tensor_kw})
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

    def _tensor_term(self, e: A.Call, name: str, params: Any, args: list, tkw: dict[str, UT]) -> UT:
        """A loss term over explicit tensors: ``mse(a, b)`` (a bare name first is the model's output,
        second the data field), ``smoothness(model.r.h, weight = ...)`` (one operand)."""
        arity = getattr(params, "arity", 2)
        if len(args) != arity:
            what = "one tensor, e.g. `model.r.h`" if arity == 1 else "two tensors (prediction, target)"
            raise BkError("E0204", f"`{name}` takes {what}, got {len(args)}", span=e.span)
        vals = []
        for i, a in enumerate(args):
            if isinstance(a, A.Name) and not self._is_tensor_expr(a):
                if arity == 1:
                    raise BkError("E0204", f"`{name}` reads a model tensor, not the field `{a.id}`", span=a.span,
                                  help=f"e.g. `{name}(model.OP.PARAM)`")
                vals.append(self.model_output(ModelRef(None, "model", a.span), a.id, a.span) if i == 0
                            else self.data_field(a.id, a.span))
                if isinstance(vals[-1], ModuleRef):
                    if self.model is None and self.tensors is None:
                        # the loss declaration checked on its own: the model is not known yet; the train
                        # block's check (which has it) decides whether `a.id` is one of its outputs
                        vals[-1] = UT(None, self.field_units.get(a.id, DIMENSIONLESS), f"model.{a.id}", True)
                    else:
                        known = list(self.model.outputs) if self.model is not None else list(self.tensors.outputs)
                        raise BkError("E0601", f"the model has no output `{a.id}`", span=a.span,
                                      help=did_you_mean(a.id, known, f"outputs: {', '.join(known) or 'none'}"))
            else:
                vals.append(self.operand(a))
        if arity == 1:
            (x,) = vals
            unit = params.loss_unit(x.unit, **{k: v.unit for k, v in tkw.items()})
            mag = None if x.mag is None else params.evaluate_one(x.mag, **{k: v.mag for k, v in tkw.items()})
            return UT(mag, unit, show(e))
        a, b = vals
        try:
            f = b.factor_to(a.unit)
        except pint.DimensionalityError:
            raise BkError("E0203", f"`{name}` compares `{a.text}` in {unit_str(a.unit)} with `{b.text}` in "
                                   f"{unit_str(b.unit)}", span=e.span) from None
        unit = params.loss_unit(a.unit)
        if a.mag is None or b.mag is None:
            return UT(None, unit, show(e))
        return UT(params.evaluate(a.mag, b.mag * f if f != 1.0 else b.mag), unit, show(e))

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

    def __init__(self, loss, call: Any, units: dict[str, Any] | None = None,
                 reverse: Callable[[Any], Any] | None = None):
        self.loss = loss
        self.env = bind_formals(loss, call, loss.span)
        self.units = units or {}
        self.reverse = reverse      # the data's state reversal R, for `reverse(...)`
        self.model: Any = None
        self.inputs: list[str] = []

    def bind_model(self, model: Any, inputs: list[str]) -> "LossProgram":
        """The module that ``model.OP.PARAM`` and ``model(x = ...)`` read (the runner binds the module it
        trains, before the first step); every parameter path of the loss is resolved here, so a wrong
        one stops the run before it starts."""
        self.model, self.inputs = model, list(inputs)
        for path, span in module_paths(self.loss.expr):
            module_tensors(model, path, span)
        return self

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

        tensors = TensorSource(outputs, batch, self.model, self.inputs, self.reverse)
        interp = _RecordingInterpreter(self.loss.scope, self.env, fields, terms, tensors, self.units)
        total = interp.total(self.loss.expr)
        f = total.factor_to(DIMENSIONLESS) if total.unit != DIMENSIONLESS else 1.0
        return total.mag * f if f != 1.0 else total.mag, terms


class _RecordingInterpreter(LossInterpreter):
    def __init__(self, scope, env, fields, terms, tensors=None, field_units=None):
        super().__init__(scope, env, fields, tensors=tensors, field_units=field_units)
        self.terms = terms

    def call(self, e):
        v = super().call(e)
        self.terms[v.text] = v.mag
        return v


def loss_unit(loss, call: Any, field_units: dict[str, Any] | None, span: Span | None, model: Any = None) -> Any:
    """The unit of a loss expression given the data's field units (compile-time check). ``model``
    (optional: ``inputs``, ``outputs``, ``names``) checks the tensor operands' names too."""
    env = bind_formals(loss, call, span) if call is not None or not loss.formals else {
        f: Q_(1.0, DIMENSIONLESS) for f in loss.formals}
    fu = field_units or {}

    def fields(name: str, sp, role: str = "both"):
        if field_units is not None and name not in fu and role != "output":
            raise BkError("E0601", f"the loss uses field `{name}`, which the data does not provide", span=sp,
                          help=f"fields: {', '.join(fu) or 'none'}")
        return None, None, fu.get(name, DIMENSIONLESS)

    return LossInterpreter(loss.scope, env, fields, field_units=fu, model=model).total(loss.expr).unit


def parse_field_unit(text: str | None) -> Any:
    return DIMENSIONLESS if not text or text == "1" else parse_unit(text)


__all__ = ["UT", "ModelView", "TensorSource", "module_tensors", "module_paths", "uses_reverse", "LossInterpreter", "LossProgram", "loss_unit", "bind_formals", "ureg"]
