"""The IR: what resolution produces and every later stage (verify, lower, train) consumes.

* :class:`Program` — one resolved spec file: constants, component declarations, block templates,
  elaborated models, data and train blocks.
* :class:`BlockIR` — one elaborated block or model (a config and input types fixed): an ordered list
  of :class:`Node` in SSA form, its inputs, parameters and outputs, and its dataflow graph
  (``networkx.DiGraph``; nodes are node names, edges data dependencies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from bkdsl.registry import Component, Proof
from bkdsl.diagnostics import Span
from bkdsl.semantics.types import ValueType
from bkdsl.semantics.values import to_json


@dataclass
class Node:
    """One SSA value of a block.

    ``op`` is ``input`` | ``param`` | ``component`` (a registry component applied to inputs) |
    ``block`` (a nested block instance) | ``function`` (an operator such as ``add``/``getitem``).
    ``args`` holds node names (str wrapped in :class:`NodeRef`) or constants.
    """

    name: str
    op: str
    target: Any
    args: list[Any]
    type: ValueType | tuple | dict
    span: Span | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # the spec's name for the value (x, h1, …)

    def to_json(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "op": self.op, "label": self.label,
                             "args": [a.name if isinstance(a, NodeRef) else to_json(a) for a in self.args],
                             "type": _type_json(self.type)}
        if isinstance(self.target, Component):
            d["component"] = self.target.describe()
        elif isinstance(self.target, BlockIR):
            d["block"] = self.target.qualname
        elif self.op == "function":
            d["function"] = self.kwargs.get("fn_name", getattr(self.target, "__name__", str(self.target)))
        if self.span:
            d["span"] = str(self.span)
        return d


def _type_json(t) -> Any:
    if isinstance(t, ValueType):
        return t.to_json()
    if isinstance(t, tuple):
        return [_type_json(x) for x in t]
    if isinstance(t, dict):
        return {k: _type_json(v) for k, v in t.items()}
    return None


@dataclass(frozen=True)
class NodeRef:
    name: str


@dataclass
class ParamSpec:
    name: str
    type: ValueType
    init: Any  # compile-time value or None
    span: Span | None = None


@dataclass
class ClaimResult:
    """A property claimed in the spec and how (or whether) it was established."""

    subject: str  # declaration or block name
    prop: str
    proof: Proof
    span: Span | None = None

    def to_json(self) -> dict:
        return {"subject": self.subject, "property": self.prop, **self.proof.to_json(),
                "at": str(self.span) if self.span else None}


@dataclass
class BlockIR:
    name: str
    is_model: bool
    config: dict[str, Any]
    inputs: dict[str, ValueType]
    outputs: dict[str, str]  # output name -> node name
    nodes: list[Node]
    params: list[ParamSpec]
    claims: list[str]
    span: Span | None = None
    file: str = ""

    @property
    def qualname(self) -> str:
        cfg = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"{self.name}({cfg})"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.name, op=n.op, label=n.label, type=n.type)
            for a in list(n.args) + list(n.kwargs.values()):
                if isinstance(a, NodeRef):
                    g.add_edge(a.name, n.name)
        return g

    def components(self) -> list[Component]:
        out: list[Component] = []
        for n in self.nodes:
            if n.op == "component":
                out.append(n.target)
            elif n.op == "block":
                out.extend(n.target.components())
        return out

    def to_json(self) -> dict:
        return {
            "name": self.name, "model": self.is_model, "config": to_json(self.config),
            "inputs": {k: v.to_json() for k, v in self.inputs.items()},
            "outputs": self.outputs,
            "params": [{"name": p.name, "type": p.type.to_json()} for p in self.params],
            "claims": self.claims,
            "nodes": [n.to_json() for n in self.nodes],
            "subblocks": {n.name: n.target.to_json() for n in self.nodes if n.op == "block"},
        }


@dataclass
class DeclIR:
    """A top-level component declaration: ``binding phasor = phasor_bind() : unitary``."""

    kind: str
    name: str
    component: Component | None  # None for loss declarations (an expression, see LossIR)
    claims: list[tuple[str, Span | None]]
    span: Span | None = None
    claim_asts: list[Any] = field(default_factory=list)  # the AST claims, with their arguments


@dataclass
class LossIR:
    """``loss mtl(alpha) = mse(E) + alpha * l2_integral(rho, ...)`` — kept as an AST expression over
    its formals; :mod:`bkdsl.semantics.lossexpr` turns it into a callable, :mod:`bkdsl.verify.units` checks it."""

    name: str
    formals: list[str]
    defaults: dict[str, Any]
    expr: Any  # bkdsl.syntax.ast.Expr
    span: Span | None = None
    scope: Any = None  # the resolver scope (constants, declarations) the expression closes over
    claims: list[Any] = field(default_factory=list)  # AST claims written on it (rejected: E0306)


@dataclass
class Entry:
    value: Any
    span: Span | None = None


@dataclass
class DataIR:
    name: str
    source: Any  # CallValue
    span: Span | None = None


@dataclass
class TrainIR:
    name: str
    entries: dict[str, Entry]
    span: Span | None = None

    def get(self, key: str, default: Any = None) -> Any:
        e = self.entries.get(key)
        return default if e is None else e.value


@dataclass
class Program:
    file: str
    consts: dict[str, Any] = field(default_factory=dict)
    decls: dict[str, DeclIR] = field(default_factory=dict)
    losses: dict[str, LossIR] = field(default_factory=dict)
    blocks: dict[str, Any] = field(default_factory=dict)  # name -> BlockTemplate
    models: dict[str, BlockIR] = field(default_factory=dict)  # elaborated with default config
    data: dict[str, DataIR] = field(default_factory=dict)
    trains: dict[str, TrainIR] = field(default_factory=dict)
    claims: list[ClaimResult] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    # the module's top-level names (a semantics.scope.Scope): what later stages look names up in
    scope: Any = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "imports": self.imports,
            "consts": {k: to_json(v) for k, v in self.consts.items() if not k.startswith("_")},
            "declarations": {k: {"kind": d.kind, **(d.component.describe() if d.component else {}),
                                 "claims": [c for c, _ in d.claims]} for k, d in self.decls.items()},
            "losses": {k: {"formals": l.formals} for k, l in self.losses.items()},
            "blocks": sorted(self.blocks),
            "models": {k: m.to_json() for k, m in self.models.items()},
            "data": {k: {"source": to_json(d.source)} for k, d in self.data.items()},
            "train": {k: {e: to_json(v.value) for e, v in t.entries.items()} for k, t in self.trains.items()},
            "claims": [c.to_json() for c in self.claims],
        }
