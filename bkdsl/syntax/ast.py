"""The bk abstract syntax tree.

Every node keeps the :class:`~bkdsl.diagnostics.Span` it came from; spans are excluded from equality,
so ``parse(fmt(x)) == parse(x)`` compares structure only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from bkdsl.diagnostics import Span

def _sp():
    return field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------------------- exprs
@dataclass
class Num:
    value: float | int
    text: str
    span: Span | None = _sp()


@dataclass
class Imag:
    value: complex
    text: str
    span: Span | None = _sp()


@dataclass
class Str:
    value: str
    span: Span | None = _sp()


@dataclass
class Bool:
    value: bool
    span: Span | None = _sp()


@dataclass
class Quantity:
    """``0.4 fm`` or ``[0.6, 1.2] MeV*fm^1.5`` (magnitude is a Num or a ListExpr)."""

    magnitude: "Expr"
    unit: str
    span: Span | None = _sp()


@dataclass
class ListExpr:
    items: list["Expr"]
    span: Span | None = _sp()


@dataclass
class Name:
    id: str
    span: Span | None = _sp()


@dataclass
class Attr:
    obj: "Expr"
    name: str
    span: Span | None = _sp()


@dataclass
class Kwarg:
    name: str
    value: "Expr"
    span: Span | None = _sp()


@dataclass
class Call:
    func: "Expr"
    args: list["Expr"]
    kwargs: list[Kwarg]
    span: Span | None = _sp()


@dataclass
class Slice:
    lo: "Expr | None"
    hi: "Expr | None"
    span: Span | None = _sp()


@dataclass
class EllipsisIdx:
    span: Span | None = _sp()


@dataclass
class Index:
    obj: "Expr"
    items: list["Expr | Slice | EllipsisIdx"]
    span: Span | None = _sp()


@dataclass
class BinOp:
    op: str  # + - * / ^
    left: "Expr"
    right: "Expr"
    span: Span | None = _sp()


@dataclass
class Neg:
    operand: "Expr"
    span: Span | None = _sp()


@dataclass
class InUnit:
    """``mae(E) in MeV`` — report/convert a value in a unit."""

    expr: "Expr"
    unit: str
    span: Span | None = _sp()


Expr = Union[Num, Imag, Str, Bool, Quantity, ListExpr, Name, Attr, Call, Index, BinOp, Neg, InUnit]


# --------------------------------------------------------------------------------------- types
@dataclass
class DimExpr:
    """A shape dimension: a name, an int, or ``a op b`` over them."""

    op: str | None  # None for a leaf
    value: "str | int | None" = None
    left: "DimExpr | None" = None
    right: "DimExpr | None" = None
    span: Span | None = _sp()


@dataclass
class TypeExpr:
    shape: list[DimExpr] | None
    dtype: str | None
    manifold: str | None
    unit: str | None
    span: Span | None = _sp()


# --------------------------------------------------------------------------------------- stmts
@dataclass
class Import:
    module: str  # dotted name or a quoted relative path
    is_path: bool
    alias: str | None
    span: Span | None = _sp()


@dataclass
class FromImport:
    module: str
    is_path: bool
    names: list[str]
    span: Span | None = _sp()


@dataclass
class Const:
    name: str
    value: Expr
    span: Span | None = _sp()


@dataclass
class Formal:
    name: str
    type_name: str | None
    default: Expr | None
    span: Span | None = _sp()


@dataclass
class Claim:
    """``: causal(N)`` — a property name and its optional argument: an expression (``N``,
    ``flip(z)``) or a :class:`ClaimBound` (``norm <= 10.0``)."""

    name: str
    span: Span | None = _sp()
    arg: "Expr | ClaimBound | None" = None


@dataclass
class ClaimBound:
    """``norm <= c`` / ``<= L`` inside a claim: the measured quantity (or None) and its bound."""

    measure: str | None
    bound: "Expr"
    span: Span | None = _sp()


@dataclass
class ComponentDecl:
    kind: str  # manifold propagator binding integrator loss hamiltonian
    name: str
    formals: list[Formal] | None
    value: Expr
    claims: list[Claim]
    span: Span | None = _sp()
    name_span: Span | None = _sp()


@dataclass
class Input:
    name: str
    type: TypeExpr
    span: Span | None = _sp()


@dataclass
class Param:
    name: str
    type: TypeExpr
    init: Expr | None
    span: Span | None = _sp()


@dataclass
class Assign:
    name: str
    value: Expr
    span: Span | None = _sp()


@dataclass
class Output:
    name: str | None
    value: Expr
    span: Span | None = _sp()


BlockStmt = Union[Input, Param, Assign, Output]


@dataclass
class Block:
    is_model: bool
    name: str
    formals: list[Formal] | None
    claims: list[Claim]
    body: list[BlockStmt]
    span: Span | None = _sp()
    name_span: Span | None = _sp()


@dataclass
class Data:
    name: str
    value: Expr
    span: Span | None = _sp()


@dataclass
class TrainEntry:
    key: str
    value: Expr
    span: Span | None = _sp()


@dataclass
class Train:
    name: str
    entries: list[TrainEntry]
    span: Span | None = _sp()


Stmt = Union[Import, FromImport, Const, ComponentDecl, Block, Data, Train]


@dataclass
class Comment:
    text: str
    line: int
    col: int


@dataclass
class Module:
    file: str = field(compare=False)
    stmts: list[Stmt]
    comments: list[Comment] = field(default_factory=list, compare=False, repr=False)
