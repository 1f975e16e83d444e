"""Metrics in physical units: ``mae(E) in MeV`` evaluated on de-normalised data.

A metric is a loss term applied to physical values; its unit follows from the field's unit and the
term (e.g. ``l1_integral(rho, measure = cylinder(dr, dz))`` of a density in fm⁻³ is dimensionless);
``in UNIT`` converts the number (E0203 when the dimensions differ).
"""

from __future__ import annotations

from typing import Any

from bkdsl import registry
from bkdsl.diagnostics import BkError
from bkdsl.semantics.units import DIMENSIONLESS, parse_unit, unit_str
from bkdsl.semantics.values import CallValue, Ref


class MetricProgram:
    def __init__(self, call: CallValue, units: dict[str, Any], scope=None):
        from bkdsl.semantics.consteval import instantiate

        cls = registry.lookup(call.name, "loss")
        if cls is None:
            raise BkError("E0104", f"unknown metric `{call.name}`", span=call.span)
        fields = [a.path for a in call.args if isinstance(a, Ref)]
        rest = [a for a in call.args if not isinstance(a, Ref)]
        kwargs = {k: _materialise(v, scope) for k, v in call.kwargs.items()}
        self.term = instantiate(cls, [_materialise(a, scope) for a in rest], kwargs, call.span)
        if not 1 <= len(fields) <= 2:
            raise BkError("E0204", f"metric `{call.name}` takes one or two field names", span=call.span)
        self.pred_name = fields[0]
        self.target_name = fields[-1]
        u = units.get(self.target_name, DIMENSIONLESS)
        self.unit = self.term.loss_unit(u)
        self.factor = 1.0
        self.name = str(call)
        if call.unit:
            want = parse_unit(call.unit, call.span)
            try:
                self.factor = float((1.0 * self.unit).to(want).magnitude)
            except Exception:
                raise BkError("E0203", f"metric `{call.name}` is in {unit_str(self.unit)}, not {call.unit}",
                              span=call.span) from None
            self.unit = want
        self.unit_text = unit_str(self.unit)

    def __call__(self, outputs: dict, batch: dict) -> float:
        pred = outputs[self.pred_name] if self.pred_name in outputs else batch[self.pred_name]
        return float(self.term.evaluate(pred, batch[self.target_name])) * self.factor


def _materialise(v: Any, scope) -> Any:
    """Turn deferred CallValues of measures (``cylinder(0.4 fm, 0.4 fm)``) into components."""
    from bkdsl.semantics.consteval import instantiate

    if isinstance(v, CallValue):
        cls = registry.lookup(v.name)
        if cls is None:
            raise BkError("E0104", f"unknown component `{v.name}`", span=v.span)
        return instantiate(cls, [_materialise(a, scope) for a in v.args],
                           {k: _materialise(x, scope) for k, x in v.kwargs.items()}, v.span)
    if isinstance(v, Ref) and scope is not None:
        b = scope.lookup(v.path)
        if b is not None and b.kind == "const":
            return b.value
    return v
