"""Documented bounds on compile-time values, checked at resolution before anything is allocated.

A spec is untrusted input: ``10^10^10`` would build an integer of ten billion digits, ``repeat(f,
100000000)`` would elaborate a hundred million blocks, and ``linear(x, 1000000000)`` would ask a probe
for gigabytes. Each is refused here with E0207 and the limit it broke (docs/errors.md, "Limits"):

* :data:`MAX_POW_BITS` — an integer power ``a^b`` whose result would need more bits than this
  (``b · log2|a| > MAX_POW_BITS``); a float power that overflows a 64-bit float;
* :data:`MAX_REPEAT` — the count of ``repeat(block, n)``;
* :data:`MAX_DIM` — any concrete dimension of a value's type (declared or inferred);
* :data:`MAX_ELEMENTS` — the product of a value's concrete dimensions (symbolic ones, such as the
  batch ``B``, are not counted).
"""

from __future__ import annotations

import math
from typing import Any

from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.types import ValueType

MAX_POW_BITS = 4096
MAX_REPEAT = 1024
MAX_DIM = 1 << 24          # 16 777 216
MAX_ELEMENTS = 1 << 31     # per sample, over the concrete dimensions


def _magnitude(v: Any) -> Any:
    return getattr(v, "magnitude", v)


def check_power(base: Any, exp: Any, span: Span | None) -> None:
    """Refuse ``base ^ exp`` whose exact result would be astronomically large (E0207)."""
    b, e = _magnitude(base), _magnitude(exp)
    if isinstance(b, bool) or isinstance(e, bool) or not isinstance(b, (int, float)) or not isinstance(e, (int, float)):
        return
    if abs(b) <= 1:
        return
    try:
        bits = float(e) * math.log2(abs(float(b))) if abs(b) < 2 ** 1023 else float(e) * (b.bit_length() if isinstance(b, int) else 1024)
    except OverflowError:
        bits = math.inf
    limit = MAX_POW_BITS if isinstance(b, int) and isinstance(e, int) else 1023
    if bits > limit:
        raise BkError("E0207", f"`^` result too large: about 2^{_show_bits(bits)} (the limit is 2^{limit})",
                      span=span, help="use a smaller exponent; bk evaluates constants exactly")


def _show_bits(bits: float) -> str:
    return "∞" if math.isinf(bits) else f"{bits:.3g}"


def check_repeat(n: int, span: Span | None) -> None:
    if n > MAX_REPEAT:
        raise BkError("E0207", f"`repeat` count {_short_int(n)} is above the limit of {MAX_REPEAT}", span=span,
                      help="repeat fewer copies; each copy is a separate block with its own weights")


def check_type(t: Any, span: Span | None) -> None:
    """Refuse a value type with a dimension above :data:`MAX_DIM` or more than :data:`MAX_ELEMENTS`
    elements over its concrete dimensions (E0207). Tuples and dicts of types are checked item by item."""
    if isinstance(t, dict):
        for v in t.values():
            check_type(v, span)
        return
    if isinstance(t, (tuple, list)):
        for v in t:
            check_type(v, span)
        return
    if not isinstance(t, ValueType) or t.shape is None:
        return
    n = 1
    for d in t.shape:
        if isinstance(d, int) and not isinstance(d, bool):
            if d > MAX_DIM:
                raise BkError("E0207", f"dimension {_short_int(d)} is above the limit of {MAX_DIM}", span=span,
                              help="a dimension this large would not fit in memory; check the size")
            n *= max(d, 1)
    if n > MAX_ELEMENTS:
        raise BkError("E0207", f"a value of shape {t.show()} holds {n:.3g} elements per sample, above the limit "
                               f"of {MAX_ELEMENTS}", span=span, help="reduce the sizes")


def _short_int(n: int) -> str:
    s = str(n) if n.bit_length() < 200 else f"~2^{n.bit_length()}"
    return s if len(s) <= 30 else s[:27] + "…"
