"""Value types: what the compiler knows about every value in a block.

A value has a *shape* whose dimensions are integers or symbols (``B``, ``N``), a *dtype*
(``float``, ``int``, ``complex``, ``bool``), the *manifold* it lives on (``None`` = Euclidean, else the
name of a ``manifold`` declaration) and an optional physical *unit* (a pint-parsable string).

Symbolic dimensions are unified across a block by :class:`DimUnifier` (union–find): two different
declared symbols, or two different integers, never unify; a mismatch names both sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Union

from bkdsl.diagnostics import BkError, Span

Dim = Union[int, str]

DTYPES = ("float", "int", "complex", "bool")


@dataclass(frozen=True)
class ValueType:
    shape: tuple[Dim, ...] | None = None  # None: unknown rank
    dtype: str = "float"
    manifold: str | None = None
    unit: str | None = None

    def with_(self, **kw) -> "ValueType":
        return replace(self, **kw)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def show(self) -> str:
        s = "[" + ", ".join(str(d) for d in self.shape) + "]" if self.shape is not None else "[?]"
        s += f" {self.dtype}"
        if self.manifold:
            s += f" on {self.manifold}"
        if self.unit:
            s += f" in {self.unit}"
        return s

    def to_json(self) -> dict:
        return {"shape": list(self.shape) if self.shape is not None else None, "dtype": self.dtype,
                "manifold": self.manifold, "unit": self.unit}


@dataclass
class DimUnifier:
    """Union–find over symbolic dimensions.

    ``fresh`` symbols (named ``?k``) unify with anything; declared symbols (``B``) unify with an
    integer once (binding it) and with other declared symbols only if they are the same name.
    """

    parent: dict[str, Dim] = field(default_factory=dict)
    origin: dict[str, Span] = field(default_factory=dict)
    _n: int = 0

    def fresh(self) -> str:
        self._n += 1
        return f"?{self._n}"

    def find(self, d: Dim) -> Dim:
        while isinstance(d, str) and d in self.parent:
            d = self.parent[d]
        return d

    def note(self, d: Dim, span: Span | None) -> None:
        if isinstance(d, str) and span is not None and d not in self.origin:
            self.origin[d] = span

    def unify(self, a: Dim, b: Dim, span: Span | None, what: str) -> Dim:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        for x, y in ((ra, rb), (rb, ra)):
            if isinstance(x, str) and x.startswith("?"):
                self.parent[x] = y
                return y
        if isinstance(ra, str) and isinstance(rb, int):
            self.parent[ra] = rb
            return rb
        if isinstance(rb, str) and isinstance(ra, int):
            self.parent[rb] = ra
            return ra
        notes = [f"`{d}` was introduced at {self.origin[d]}" for d in (ra, rb) if isinstance(d, str) and d in self.origin]
        raise BkError("E0401", f"shape mismatch in {what}: dimension `{ra}` vs `{rb}`", span=span,
                      notes=notes, help="make the two dimensions agree (same symbol or same size)")

    def resolve_shape(self, shape: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
        return None if shape is None else tuple(self.find(d) for d in shape)


def show_type(t: Any) -> str:
    """A node's type as the compiler shows it (shape · dtype · manifold · unit); a multi-output node has a
    tuple or dict of them."""
    if isinstance(t, ValueType):
        return t.show()
    if isinstance(t, dict):
        return "{" + ", ".join(f"{k}: {show_type(v)}" for k, v in t.items()) + "}"
    if isinstance(t, tuple):
        return "(" + ", ".join(show_type(v) for v in t) + ")"
    return str(t)


def broadcast(a: ValueType, b: ValueType, uni: DimUnifier, span: Span | None, what: str) -> tuple[Dim, ...] | None:
    """NumPy broadcasting with unification of equal-rank trailing dims (1 broadcasts)."""
    if a.shape is None or b.shape is None:
        return a.shape if b.shape is None else b.shape
    out: list[Dim] = []
    la, lb = list(a.shape), list(b.shape)
    n = max(len(la), len(lb))
    la = [1] * (n - len(la)) + la
    lb = [1] * (n - len(lb)) + lb
    for x, y in zip(la, lb):
        x, y = uni.find(x), uni.find(y)
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        else:
            out.append(uni.unify(x, y, span, what))
    return tuple(out)
