"""Units pass: a loss must be unit-consistent with the data it is trained on.

The fields a loss sees are the *normalised* fields when the data block normalises (min–max or
standard scaling divides out the unit), so ``mse(E)`` is dimensionless while
``l2_integral(rho, measure = cylinder(dr, dz))`` carries the measure's fm³; hence the thesis' weight
α in fm⁻³. Adding terms of different units is E0203 with both units in the message.
"""

from __future__ import annotations

from typing import Any

from bkdsl import registry
from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.lossexpr import loss_unit
from bkdsl.semantics.units import DIMENSIONLESS, parse_unit
from bkdsl.semantics.values import CallValue, Ref


def data_field_units(source: CallValue) -> dict[str, Any]:
    """Field name → pint unit as the loss sees it (dimensionless where the data is normalised).

    Units come from ``field("name") in UNIT`` declarations of a ``file`` source, or from the data
    component's ``declared_fields(call)`` classmethod (field name → unit text)."""
    cls = registry.lookup(source.name)
    units: dict[str, Any] = {}
    declared = getattr(cls, "declared_fields", None) if cls is not None else None
    if callable(declared):
        for k, u in declared(source).items():
            units[k] = parse_unit(u, source.span) if u and u != "1" else DIMENSIONLESS
    for k, v in source.kwargs.items():
        if isinstance(v, CallValue) and v.name == "field":
            u = v.unit or v.kwargs.get("unit")
            units[k] = parse_unit(str(u), v.span) if u and str(u) != "1" else DIMENSIONLESS
    norm = source.kwargs.get("normalize")
    if isinstance(norm, Ref) and norm.path in ("minmax", "standard"):
        skip = set(getattr(cls, "unnormalized_fields", ()) or ())
        units = {k: (u if k in skip else DIMENSIONLESS) for k, u in units.items()}
    return units


def check_loss_expr(loss, field_units: dict[str, Any] | None, call: Any = None, span: Span | None = None) -> Any:
    """Evaluate the loss over units only; raises BkError on a unit error. Returns the loss's unit."""
    return loss_unit(loss, call, field_units, span or loss.span)


def check_dimensionless_total(unit: Any, span: Span | None, name: str) -> None:
    if unit != DIMENSIONLESS:
        raise BkError("E0203", f"loss `{name}` has unit {unit}, a training loss must be dimensionless", span=span)
