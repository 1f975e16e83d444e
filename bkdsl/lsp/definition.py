"""Go-to-definition, from the parse tree alone (it works while the spec has semantic errors, and never
loads torch): the name under the cursor is looked up

1. among the values of the enclosing block (its parameters, inputs, ``param``s and assignments: the
   assignment in force on the cursor's line);
2. among the file's top-level declarations (const, manifold, …, block, model, data, train);
3. through the file's imports — ``alias.name`` in the module ``import ... as alias`` names, a name of
   ``from M import name`` in M, and an import's module name or alias (the module's first line) — by the
   same confinement rule as the compiler (:func:`bkdsl.semantics.imports.resolve_import`);
4. as a registry component: the Python class that implements it (``inspect``).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from lsprotocol import types as T

from bkdsl import registry
from bkdsl.diagnostics import BkError, Span
from bkdsl.lsp.positions import contains, lines_of, span_range, to_bk, word_at
from bkdsl.resources import STDLIB_DIR
from bkdsl.semantics.imports import allowed_roots, resolve_import
from bkdsl.syntax import ast as A
from bkdsl.syntax.parser import parse

MAX_IMPORT_DEPTH = 8  # `from a import x` where a re-exports x from b …: followed this far


def _uri(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


def _location(span: Span, text: str) -> T.Location:
    return T.Location(_uri(span.file), span_range(span, lines_of(text)))


def _top_level(module: A.Module, name: str) -> Span | None:
    for st in module.stmts:
        if isinstance(st, A.Block) and st.name == name:
            return st.name_span or st.span
        if isinstance(st, A.ComponentDecl) and st.name == name:
            return st.name_span or st.span
        if isinstance(st, (A.Const, A.Data, A.Train)) and st.name == name:
            return st.span
    return None


def _in_block(block: A.Block, name: str, line: int) -> Span | None:
    found = next((f.span for f in block.formals or [] if f.name == name), None)
    for st in block.body:
        if isinstance(st, (A.Input, A.Param, A.Assign)) and st.name == name and st.span.line <= line:
            found = st.span
    return found


def _import_target(st: A.Import | A.FromImport, file: str, includes: tuple[str, ...]) -> Path | None:
    here = Path(file).resolve().parent
    try:
        return resolve_import(st.module, st.is_path, here, STDLIB_DIR,
                              allowed_roots(here, STDLIB_DIR, [Path(i) for i in includes]), st.span)
    except BkError:  # an import the compiler refuses has nothing to jump to (check reports why)
        return None


def _read_module(path: Path) -> tuple[A.Module | None, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, ""
    return parse(text, str(path))[0], text


def _find(module: A.Module, text: str, file: str, name: str, qual: str | None, includes: tuple[str, ...],
          depth: int = 0) -> T.Location | None:
    if depth > MAX_IMPORT_DEPTH:
        return None
    if qual is None:
        span = _top_level(module, name)
        if span is not None:
            return _location(span, text)
    for st in module.stmts:
        if isinstance(st, A.Import):
            alias = st.alias or (Path(st.module).stem if st.is_path else st.module.split(".")[-1])
            if alias != (qual or name):
                continue
            target = _import_target(st, file, includes)
            if target is None:
                return None
            if qual is None:  # the alias itself: the module's first line
                return T.Location(_uri(target), T.Range(T.Position(0, 0), T.Position(0, 0)))
            sub, sub_text = _read_module(target)
            return _find(sub, sub_text, str(target), name, None, includes, depth + 1) if sub else None
        if isinstance(st, A.FromImport) and qual is None and name in st.names:
            target = _import_target(st, file, includes)
            sub, sub_text = _read_module(target) if target is not None else (None, "")
            return _find(sub, sub_text, str(target), name, None, includes, depth + 1) if sub else None
    return None


def _component_location(name: str) -> T.Location | None:
    cls = registry.lookup(name)
    if cls is None:
        return None
    try:
        src = inspect.getsourcefile(cls)
        _, first = inspect.getsourcelines(cls)
    except (OSError, TypeError):  # a class defined where no source is kept (a REPL)
        return None
    if src is None:
        return None
    return T.Location(_uri(src), T.Range(T.Position(first - 1, 0), T.Position(first - 1, 0)))


def definition(text: str, path: str, pos: T.Position, includes: tuple[str, ...] = ()) -> T.Location | None:
    lines = lines_of(text)
    line, col = to_bk(pos, lines)
    hit = word_at(lines, line, col)
    if hit is None:
        return None
    name, qual = hit
    module, _ = parse(text, path)
    if module is None:
        return None
    for st in module.stmts:  # on an import's module name: the module
        if isinstance(st, (A.Import, A.FromImport)) and contains(st.span, line, col) \
                and name in st.module.replace("/", ".").split(".") and name not in getattr(st, "names", ()):
            target = _import_target(st, path, includes)
            return T.Location(_uri(target), T.Range(T.Position(0, 0), T.Position(0, 0))) if target else None
    if qual is None:
        block = next((st for st in module.stmts if isinstance(st, A.Block) and contains(st.span, line, col)), None)
        span = _in_block(block, name, line) if block is not None else None
        if span is not None:
            return _location(span, text)
    found = _find(module, text, path, name, qual, includes)
    if found is not None:
        return found
    return _component_location(name) if qual is None else None
