"""Physical units through pint, at the boundary only.

Specs write quantities (``0.4 fm``, ``1e-3 fm^-3``, ``[0.6, 1.2] MeV*fm^1.5``); component schemas
declare the unit they want with :func:`quantity`, and receive a plain float *in that unit* — hot loops
never see pint. One :data:`ureg` serves the whole process (pint quantities from different registries
do not mix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pint
from pydantic import BeforeValidator

from bkdsl.diagnostics import BkError, Span

ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.define("barn_ = 100 * fm**2 = b")  # nuclear quadrupole moments are quoted in barn (1 b = 100 fm²)
Q_ = ureg.Quantity
DIMENSIONLESS = ureg.dimensionless


def parse_unit(text: str, span: Span | None = None) -> pint.Unit:
    """Parse a unit expression as written in a spec (``fm^-3``, ``MeV*fm^1.5``); E0202 if unknown."""
    try:
        u = ureg.parse_units(text.replace("^", "**"))
    except Exception as e:  # pint raises several exception types for bad unit text
        raise BkError("E0202", f"unknown unit `{text}`", span=span,
                      help=f"pint could not parse it ({type(e).__name__}); units are written like "
                           "`fm`, `MeV`, `fm^-3`, `MeV*fm^1.5`; for a product of a number and a name "
                           "write `2 * d`") from None
    return u


def unit_str(u: Any) -> str:
    """Spec-style text of a unit: symbols joined by ``*``, powers with ``^`` (``fm^-3``, ``MeV*fm^1.5``)."""
    if isinstance(u, pint.Quantity):
        u = u.units
    if not isinstance(u, pint.Unit):
        try:
            u = ureg.Unit(u)
        except Exception:  # a dimensionality container, not a unit: show it as pint does
            return str(u)
    items = sorted(u._units.items(), key=lambda kv: (kv[1] < 0, kv[0]))
    if not items:
        return "1"
    parts = []
    for name, p in items:
        sym = ureg.get_symbol(name)
        p = int(p) if float(p).is_integer() else p
        parts.append(sym if p == 1 else f"{sym}^{p}")
    return "*".join(parts)


def _converter(unit: str):
    target = ureg.parse_units(unit.replace("^", "**"))

    def conv(v: Any) -> Any:
        if isinstance(v, pint.Quantity):
            if not v.check(target) and not (v.dimensionless and target == DIMENSIONLESS):
                raise ValueError(f"expected a quantity in {unit_str(target)}, got {unit_str(v.units)}")
            m = v.to(target).magnitude
            return [float(x) for x in m] if isinstance(m, (list, tuple)) or hasattr(m, "__len__") else m
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, bool):
            raise ValueError("expected a number")
        if isinstance(v, (int, float)):
            if target == DIMENSIONLESS:
                return v
            raise ValueError(f"expected a quantity in {unit_str(target)} (a number with a unit, e.g. "
                             f"`{v} {unit_str(target)}`)")
        return v

    return conv


@dataclass(frozen=True)
class QuantityUnit:
    """Field metadata naming the unit a :func:`quantity` field is delivered in (read by the component
    catalogue, :mod:`bkdsl.catalog`; pydantic ignores metadata it does not know)."""

    unit: str


def quantity(unit: str, base: Any = float) -> Any:
    """A pydantic field type: a quantity convertible to ``unit``, delivered as a float in ``unit``."""
    return Annotated[base, BeforeValidator(_converter(unit)), QuantityUnit(unit)]
