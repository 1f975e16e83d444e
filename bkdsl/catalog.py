"""The component catalogue: what the registry holds, as a user reads it.

One :class:`Entry` per registered (name, kind), read from the component class itself — its kind, its
dataflow inputs, its pydantic ``Params`` (type, unit from :class:`~bkdsl.semantics.units.QuantityUnit`,
default, constraints, description), the properties it guarantees by construction, the claims it can
decide beyond those (a ``prove`` of its own), its dependence pattern along a sequence axis and its
docstring. ``bkdsl components`` prints entries as text; ``bkdsl components --markdown`` renders
``docs/components.md`` from the same entries (tests/test_catalog.py fails when the committed page is
stale). Nothing here is written by hand twice: a new component appears in both by being registered.
"""

from __future__ import annotations

import inspect
import os
import sys
import types
import typing
from dataclasses import dataclass

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from bkdsl import registry
from bkdsl.diagnostics import BkError, did_you_mean
from bkdsl.exitcodes import EXIT_OK
from bkdsl.semantics.units import QuantityUnit


@dataclass(frozen=True)
class Param:
    name: str
    type: str          # `int`, `float`, `list[float]`, `"a" | "b"`
    unit: str | None   # the unit the value is delivered in (a quantity field), else None
    default: str | None  # None: required
    constraint: str    # `> 0`, `≤ 1`, '' when none
    doc: str


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    doc: str                 # the docstring's first paragraph, on one line ('' when none)
    inputs: tuple[str, ...]
    positional: tuple[str, ...]
    params: tuple[Param, ...]
    guarantees: tuple[str, ...]  # properties true by construction
    decides: bool            # has a `prove` of its own (claims decided from its parameters / a probe)
    sequence: str            # one of registry.SEQUENCE_PATTERNS
    bound: float | None      # |y| ≤ bound for every output entry
    lipschitz: float | None  # ℓ₂ Lipschitz constant in its property input

    @property
    def signature(self) -> str:
        """``linear(x, out_features, bias = true)``: inputs, then parameters (defaults shown)."""
        args = list(self.inputs)
        for p in self.params:
            unit = f" {p.unit}" if p.unit and p.default not in (None, "none") else ""
            args.append(p.name if p.default is None else f"{p.name} = {p.default}{unit}")
        return f"{self.name}({', '.join(args)})"


# ------------------------------------------------------------------------------------ reading
def entries(builtin_only: bool = False) -> list[Entry]:
    """Every registered component (only bkdsl's own with ``builtin_only``, not those a plugin added),
    sorted by kind (registry.KINDS order), then name."""
    seen: list[Entry] = []
    for cls in registry.all_components().values():
        if not builtin_only or cls.__module__ in registry.BUILTIN_MODULES:
            seen.append(entry_of(cls))
    order = {k: i for i, k in enumerate(registry.KINDS)}
    return sorted(seen, key=lambda e: (order.get(e.kind, len(order)), e.name))


def entry_of(cls: type[registry.Component]) -> Entry:
    bound = cls.output_bound_value
    return Entry(
        name=cls.name, kind=cls.kind, doc=first_paragraph(cls.__doc__), inputs=tuple(cls.inputs),
        positional=tuple(cls.positional), params=params_of(cls.Params, skip=set(cls.inputs)),
        guarantees=tuple(sorted(cls.guarantees)), decides=cls.prove is not registry.Component.prove,
        sequence=cls.sequence, bound=None if bound is None else float(bound),
        lipschitz=None if cls.lipschitz_value is None else float(cls.lipschitz_value))


def first_paragraph(doc: str | None) -> str:
    if not doc or not doc.strip():
        return ""
    para = inspect.cleandoc(doc).split("\n\n")[0]
    return " ".join(para.split())


def params_of(model: type[BaseModel], skip: set[str] = frozenset()) -> tuple[Param, ...]:
    out = []
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        unit = next((m.unit for m in f.metadata if isinstance(m, QuantityUnit)), None)
        default = None
        if f.default is not PydanticUndefined:
            default = show_default(f.default)
        elif f.default_factory is not None:
            default = show_default(f.default_factory())
        out.append(Param(name, show_type(f.annotation), unit, default, _constraint(f.metadata), f.description or ""))
    return tuple(out)


def show_type(t) -> str:
    """A parameter's type as a spec writer reads it (``float``, ``list[int]``, ``"min" | "max"``)."""
    origin = typing.get_origin(t)
    if t is type(None):
        return "none"
    if t is typing.Any:
        return "any"
    if origin is typing.Annotated:
        return show_type(typing.get_args(t)[0])
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(show_type(a) for a in typing.get_args(t))
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(show_type(a) for a in typing.get_args(t))}]"
    return getattr(t, "__name__", str(t))


def show_default(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show_default(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, BaseModel | registry.Component):
        return type(v).__name__
    return str(v)


def _constraint(meta) -> str:
    parts = []
    for m in meta:
        if isinstance(m, Gt):
            parts.append(f"> {m.gt:g}")
        elif isinstance(m, Ge):
            parts.append(f"≥ {m.ge:g}")
        elif isinstance(m, Lt):
            parts.append(f"< {m.lt:g}")
        elif isinstance(m, Le):
            parts.append(f"≤ {m.le:g}")
        elif isinstance(m, MinLen):
            parts.append(f"length ≥ {m.min_length}")
        elif isinstance(m, MaxLen):
            parts.append(f"length ≤ {m.max_length}")
    return ", ".join(parts)


def select(query: str | None) -> list[Entry]:
    """All entries (``None``), those of a kind (``layer``), or those named ``query`` (every role)."""
    es = entries()
    if query is None:
        return es
    if query in registry.KINDS:
        return [e for e in es if e.kind == query]
    return [e for e in es if e.name == query]


def claims_line(e: Entry) -> str:
    """What the compiler can establish about this component, in one line."""
    parts = []
    if e.guarantees:
        parts.append("guarantees " + ", ".join(e.guarantees))
    if e.decides:
        parts.append("decides claims from its parameters (its own proof or probe)")
    if e.bound is not None:
        parts.append(f"bounded |y| ≤ {e.bound:g}")
    if e.lipschitz is not None:
        parts.append(f"{e.lipschitz:g}-Lipschitz")
    return "; ".join(parts) or "none"


# ------------------------------------------------------------------------------------ text
def render_index(es: list[Entry]) -> str:
    """One line per component, grouped by kind: ``name(signature)  — doc``."""
    lines: list[str] = []
    kind = None
    for e in es:
        if e.kind != kind:
            kind = e.kind
            lines += [""] if lines else []
            lines.append(f"{kind} ({sum(x.kind == kind for x in es)})")
        doc = e.doc or "(no docstring)"
        doc = doc if len(doc) <= 90 else doc[:87] + "..."
        lines.append(f"  {e.name:<24} {doc}")
    lines += ["", "`bkdsl components NAME` shows a component's parameters and claims; "
              "`bkdsl components KIND` lists one kind."]
    return "\n".join(lines)


def render_card(e: Entry) -> str:
    """Everything about one component (``bkdsl components linear``)."""
    lines = [f"{e.name}  ({e.kind})", f"  {e.doc or '(no docstring)'}", "",
             f"  usage:    {e.signature}"]
    if e.inputs:
        lines.append(f"  inputs:   {', '.join(e.inputs)}")
    if e.kind in _SEQUENCE_KINDS:
        lines.append(f"  sequence: {e.sequence}")
    lines.append(f"  claims:   {claims_line(e)}")
    if e.params:
        lines += ["", "  parameters:"]
        width = max(len(p.name) for p in e.params)
        for p in e.params:
            typ = p.type + (f" in {p.unit}" if p.unit else "")
            extra = [x for x in (p.constraint, "required" if p.default is None else f"default {p.default}") if x]
            doc = f" — {p.doc}" if p.doc else ""
            lines.append(f"    {p.name:<{width}}  {typ} ({'; '.join(extra)}){doc}")
    else:
        lines += ["", "  parameters: none"]
    return "\n".join(lines)


# The kinds applied to tensors inside a model, whose dependence along a sequence axis matters.
_SEQUENCE_KINDS = ("layer", "function", "binding", "propagator", "integrator")


# ------------------------------------------------------------------------------------ markdown
def _md(s: str) -> str:
    return s.replace("|", "\\|")


def render_markdown(es: list[Entry] | None = None) -> str:
    """docs/components.md: an index by kind, then one section per component."""
    es = entries() if es is None else es
    kinds = [k for k in registry.KINDS if any(e.kind == k for e in es)]
    out = ["# Components", "",
           "<!-- Generated by `bkdsl components --markdown > docs/components.md` from the registry; "
           "do not edit by hand (tests/test_catalog.py fails when this page is stale). -->", "",
           f"{len(es)} components are registered. `bkdsl components` lists them, `bkdsl components KIND` "
           "one kind, `bkdsl components NAME` one component. Python code adds more with "
           "`@bkdsl.component(...)` (docs/language.md).", "",
           "Parameters with a unit take a quantity (`0.25 fm`); the component receives the number in that unit. "
           "*Claims* says what the compiler can establish: properties guaranteed by construction, whether the "
           "component decides further claims itself (from its parameters, or by a numerical probe), and known "
           "output bounds and Lipschitz constants. *Sequence* is the dependence along a sequence axis "
           "(pointwise, causal, bidirectional, global) that the `causal` claim is checked with.", ""]
    for k in kinds:
        names = [e for e in es if e.kind == k]
        out.append(f"- **{k}** ({len(names)}): " + ", ".join(f"[`{e.name}`](#{_anchor(e)})" for e in names))
    out.append("")
    for k in kinds:
        out += [f"## {k}", ""]
        for e in (e for e in es if e.kind == k):
            out += [f'<a id="{_anchor(e)}"></a>', "", f"### `{e.name}`", "", _md(e.doc) if e.doc else "*(no docstring)*", "",
                    f"`{e.signature}`", ""]
            facts = []
            if e.inputs:
                facts.append(f"inputs: {', '.join(f'`{i}`' for i in e.inputs)}")
            if e.kind in _SEQUENCE_KINDS:
                facts.append(f"sequence: {e.sequence}")
            facts.append(f"claims: {_md(claims_line(e))}")
            out += [" · ".join(facts), ""]
            if e.params:
                out += ["| parameter | type | unit | default | constraint | meaning |", "|---|---|---|---|---|---|"]
                for p in e.params:
                    out.append(f"| `{p.name}` | `{_md(p.type)}` | {p.unit or ''} | "
                               f"{'*required*' if p.default is None else '`' + _md(p.default) + '`'} | "
                               f"{_md(p.constraint)} | {_md(p.doc)} |")
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def _anchor(e: Entry) -> str:
    return f"{e.kind}-{e.name}".replace("_", "-")


# ------------------------------------------------------------------------------------ command
def add_parser(subparsers):
    p = subparsers.add_parser("components", help="list the registered components (kind, inputs, parameters, claims)",
                              description="Without an argument: every component, by kind. With a kind "
                                          f"({', '.join(registry.KINDS)}): that kind. With a name: the "
                                          "component's parameters (types, units, defaults) and claims.")
    p.add_argument("query", nargs="?", metavar="KIND|NAME")
    p.add_argument("--markdown", action="store_true", help="print docs/components.md (all components)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        return _print(args)
    except BrokenPipeError:  # `bkdsl components | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush stays quiet
        return EXIT_OK


def _print(args) -> int:
    if args.markdown:
        print(render_markdown(), end="")
        return EXIT_OK
    es = select(args.query)
    if not es:
        names = [e.name for e in entries()] + list(registry.KINDS)
        raise BkError("E0104", f"no component or kind named `{args.query}`",
                      help=did_you_mean(args.query, names, "`bkdsl components` lists every component"))
    if args.query is not None and args.query not in registry.KINDS:
        print("\n\n".join(render_card(e) for e in es))
    else:
        print(render_index(es))
    return EXIT_OK
