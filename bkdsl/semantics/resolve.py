"""AST → IR: loading (imports, stdlib) and top-level statements.

``resolve(module, loader) -> (Program, list[Diagnostic])``. Each top-level statement is resolved on
its own, so one run reports every independent error. Constants are evaluated by
:mod:`bkdsl.semantics.consteval`; blocks are *templates* that :mod:`bkdsl.semantics.elaborate` turns
into a :class:`~bkdsl.semantics.ir.BlockIR` for a given config (models with all formals defaulted are
elaborated here, the compiled artefact). The train block's checks are a verification pass
(:mod:`bkdsl.verify.plan`), not part of resolution.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import networkx as nx
import pint

from bkdsl import registry
from bkdsl.registry import Component, InferCtx
from bkdsl import resources
from bkdsl.gcpause import paused_gc
from bkdsl.diagnostics import BkError, Diagnostic, Span
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import DimUnifier, ValueType, broadcast
from bkdsl.semantics.units import Q_, parse_unit, unit_str
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.syntax import ast as A
from bkdsl.semantics.consteval import ConstEval, _call_name, instantiate, lookup_component, unknown_component
from bkdsl.semantics.elaborate import Elaborator
from bkdsl.semantics.lossexpr import loss_unit
from bkdsl.semantics.imports import MAX_MODULE_BYTES, allowed_roots, resolve_import
from bkdsl.semantics.scope import Binding, BlockTemplate, Scope, _declared_name, report

STDLIB_DIR = resources.STDLIB_DIR

# =========================================================================== module loading
class Loader:
    """Loads and resolves imported modules (stdlib by dotted name, others by relative path), with
    caching and import-cycle detection."""

    def __init__(self, stdlib_dir: Path = STDLIB_DIR, includes: tuple[Path, ...] = ()):
        self.stdlib_dir = stdlib_dir
        self.includes = tuple(Path(p) for p in includes)  # --include DIR: more allowed import roots
        self.roots: list[Path] | None = None  # set by the top-level spec's first import
        self.cache: dict[str, Scope] = {}
        self.stack: list[str] = []
        self.sources: dict[str, str] = {}
        self.diagnostics: list[Diagnostic] = []

    def path_for(self, imp_module: str, is_path: bool, importer: str, span: Span | None) -> Path:
        base = Path(importer).parent if importer and not importer.startswith("<") else Path.cwd()
        if self.roots is None:  # the top-level spec: its directory tree is the first allowed root
            self.roots = allowed_roots(base, self.stdlib_dir, self.includes)
        return resolve_import(imp_module, is_path, base, self.stdlib_dir, self.roots, span)

    def load(self, path: Path, span: Span | None) -> Scope:
        key = str(path.resolve())
        if key in self.stack:
            cycle = " → ".join(Path(s).name for s in self.stack[self.stack.index(key):] + [key])
            raise BkError("E0103", f"import cycle: {cycle}", span=span,
                          help="move the shared declarations into a module both can import")
        if key in self.cache:
            return self.cache[key]
        from bkdsl.syntax.parser import parse

        try:
            if path.stat().st_size > MAX_MODULE_BYTES:
                raise BkError("E0004", f"module {path.name} is larger than {MAX_MODULE_BYTES >> 20} MiB", span=span)
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise BkError("E0002", f"cannot read {path}: {e.__class__.__name__}", span=span) from None
        shown = _display_path(path)
        self.sources[shown] = text
        mod, diags = parse(text, shown)
        if diags:
            self.diagnostics.extend(diags)
            raise BkError("E0102", f"module `{shown}` has syntax errors", span=span,
                          help="fix the errors reported in that file")
        self.stack.append(key)
        try:
            prog, diags = resolve(mod, self)
        finally:
            self.stack.pop()
        self.diagnostics.extend(diags)
        scope = prog.scope
        self.cache[key] = scope
        return scope


def _display_path(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)

# =========================================================================== top-level resolution
def resolve(module: A.Module, loader: Loader | None = None) -> tuple[I.Program, list[Diagnostic]]:
    """The module's program and its diagnostics (the cyclic GC paused meanwhile: bkdsl/gcpause.py)."""
    with paused_gc():
        return _resolve(module, loader)


def _resolve(module: A.Module, loader: Loader | None) -> tuple[I.Program, list[Diagnostic]]:
    loader = loader or Loader()
    prog = I.Program(file=module.file)
    scope = Scope(module.file, program=prog)
    prog.scope = scope
    diags: list[Diagnostic] = []

    def guard(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BkError as e:
            report(diags, e)

    for st in module.stmts:
        try:
            _resolve_stmt(st, scope, prog, loader)
        except BkError as e:
            report(diags, e)
            name = _declared_name(st)
            if name is not None and name not in scope.names:  # later uses are cascades, not new errors
                scope.names[name] = Binding("poisoned", None, st.span)

    # elaborate models with their default config (all formals defaulted): the compiled artefact
    for name, b in scope.names.items():
        if b.kind == "block" and b.value.ast.is_model and b.value.scope is scope:
            tpl: BlockTemplate = b.value
            if all(f.default is not None for f in (tpl.ast.formals or [])):
                def elab(tpl=tpl, name=name):
                    prog.models[name] = Elaborator(diags).elaborate(tpl, {}, None, tpl.ast.span)
                guard(elab)
    return prog, diags


def _resolve_stmt(st, scope: Scope, prog: I.Program, loader: Loader) -> None:
    if isinstance(st, A.Import):
        path = loader.path_for(st.module, st.is_path, scope.file, st.span)
        sub = loader.load(path, st.span)
        alias = st.alias or (Path(st.module).stem if st.is_path else st.module.split(".")[-1])
        scope.define(alias, Binding("namespace", sub, st.span))
        prog.imports.append(st.module)
    elif isinstance(st, A.FromImport):
        path = loader.path_for(st.module, st.is_path, scope.file, st.span)
        sub = loader.load(path, st.span)
        prog.imports.append(st.module)
        for n in st.names:
            b = sub.lookup(n)
            if b is None:
                raise BkError("E0101", f"`{st.module}` has no `{n}`", span=st.span,
                              help=f"it defines: {', '.join(sorted(sub.names)) or 'nothing'}")
            scope.define(n, Binding(b.kind, b.value, st.span))
    elif isinstance(st, A.Const):
        v = ConstEval(scope, mode="const").ev(st.value)
        scope.define(st.name, Binding("const", v, st.span))
        prog.consts[st.name] = v
    elif isinstance(st, A.ComponentDecl):
        _resolve_decl(st, scope, prog)
    elif isinstance(st, A.Block):
        tpl = BlockTemplate(st, scope)
        scope.define(st.name, Binding("block", tpl, st.name_span or st.span))
        prog.blocks[st.name] = tpl
    elif isinstance(st, A.Data):
        v = ConstEval(scope, mode="deferred").ev(st.value)
        if not isinstance(v, CallValue):
            raise BkError("E0609", f"data `{st.name}` must be a data source call", span=st.span,
                          help='e.g. `data d = file("d.h5", x = field("x"))`')
        cls = registry.lookup(v.name)
        if cls is None:
            raise unknown_component(v.name, v.span)
        if cls.kind != "data":
            raise BkError("E0105", f"`{v.name}` is a {cls.kind}, not a data source", span=v.span)
        d = I.DataIR(st.name, v, st.span)
        scope.define(st.name, Binding("data", d, st.span))
        prog.data[st.name] = d
    elif isinstance(st, A.Train):
        ev = ConstEval(scope, mode="deferred")
        entries: dict[str, I.Entry] = {}
        for e in st.entries:
            if e.key in entries:
                raise BkError("E0003", f"train key `{e.key}` is given twice", span=e.span)
            entries[e.key] = I.Entry(ev.ev(e.value), e.span)
        t = I.TrainIR(st.name, entries, st.span)
        scope.define(st.name, Binding("train", t, st.span))
        prog.trains[st.name] = t


def _resolve_decl(st: A.ComponentDecl, scope: Scope, prog: I.Program) -> None:
    claims = [(c.name, c.span) for c in st.claims]
    for c in st.claims:
        if c.name not in registry.PROPERTIES:
            raise BkError("E0303", f"unknown property `{c.name}`", span=c.span,
                          help=f"properties: {', '.join(registry.PROPERTIES)}")
    if st.kind == "loss":
        formals = [f.name for f in st.formals or []]
        defaults = {f.name: ConstEval(scope).ev(f.default) for f in st.formals or [] if f.default is not None}
        loss = I.LossIR(st.name, formals, defaults, st.value, st.span, scope, claims=list(st.claims))
        scope.define(st.name, Binding("loss", loss, st.name_span or st.span))
        prog.losses[st.name] = loss
        try:  # names, components and parameters now; units need the data's fields (the train pass)
            loss_unit(loss, None, None, loss.span)
        except BkError as e:
            if e.code != "E0203":
                raise
        return
    if not isinstance(st.value, A.Call):
        raise BkError("E0205", f"a {st.kind} declaration must be a component call", span=st.value.span or st.span,
                      help=f"e.g. `{st.kind} {st.name} = <component>(...)`")
    fname = _call_name(st.value.func)
    cls = lookup_component(fname or "", st.value.func, scope)
    if cls is None:
        raise unknown_component(fname or "?", st.value.func.span or st.span)
    if cls.kind != st.kind:
        raise BkError("E0105", f"`{fname}` is a {cls.kind}, not a {st.kind}", span=st.value.func.span,
                      help=f"declare it as `{cls.kind} {st.name} = {fname}(...)`")
    ev = ConstEval(scope, mode="component")
    args = [ev.ev(a) for a in st.value.args]
    kwargs = {k.name: ev.ev(k.value) for k in st.value.kwargs}
    comp = instantiate(cls, args, kwargs, st.value.span, decl_name=st.name, call=st.value)
    d = I.DeclIR(st.kind, st.name, comp, claims, st.span, claim_asts=list(st.claims))
    scope.define(st.name, Binding("decl", d, st.name_span or st.span))
    prog.decls[st.name] = d
