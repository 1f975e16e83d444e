"""Compile-time values of data/train blocks and component arguments.

Constant expressions evaluate to plain Python values (``int``, ``float``, ``bool``, ``str``,
``complex``, lists) or pint quantities. What cannot be evaluated at compile time because it names a
component — ``adam(lr = 1e-4)``, ``flip(axis = z, p = 0.5)``, ``mae(E) in MeV`` — stays a
:class:`CallValue`, and a dotted name such as ``val.loss`` a :class:`Ref`. The runner interprets these
through the component registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pint

from bkdsl.diagnostics import Span


@dataclass
class Ref:
    """A name that is not a constant: ``val.loss``, ``z`` (an axis), ``E`` (a field)."""

    path: str
    span: Span | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.path


@dataclass
class CallValue:
    """A deferred call ``name(args..., key = value...)``, optionally ``in UNIT``."""

    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None
    span: Span | None = field(default=None, compare=False)
    arg_spans: dict[str, Span] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        parts = [show_value(a) for a in self.args] + [f"{k} = {show_value(v)}" for k, v in self.kwargs.items()]
        s = f"{self.name}({', '.join(parts)})"
        return s + (f" in {self.unit}" if self.unit else "")


def show_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, complex):
        return f"{v.imag:g}i" if v.real == 0 else f"({v.real:g} + {v.imag:g}i)"
    if isinstance(v, pint.Quantity):
        from bkdsl.semantics.units import unit_str

        return f"{show_value(v.magnitude)} {unit_str(v.units)}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v + '"'
    return str(v)


def to_json(v: Any) -> Any:
    """A JSON-able rendering of a compile-time value (for ``ir.json``)."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, complex):
        return {"complex": [v.real, v.imag]}
    if isinstance(v, pint.Quantity):
        from bkdsl.semantics.units import unit_str

        return {"quantity": to_json(v.magnitude if not hasattr(v.magnitude, "tolist") else v.magnitude.tolist()),
                "unit": unit_str(v.units)}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, CallValue):
        d: dict[str, Any] = {"call": v.name}
        if v.args:
            d["args"] = [to_json(a) for a in v.args]
        if v.kwargs:
            d["kwargs"] = {k: to_json(x) for k, x in v.kwargs.items()}
        if v.unit:
            d["unit"] = v.unit
        return d
    if isinstance(v, Ref):
        return {"ref": v.path}
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    return repr(v)
