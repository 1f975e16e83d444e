"""Completion from the registry's catalogue (:mod:`bkdsl.catalog`): component names everywhere (those
of the declaration's kind first, after ``manifold m = `` or ``data d = ``), and inside a component's
parentheses its parameters as ``name = `` with their type, unit and default — those already written in
the call left out. The file's own top-level names and the language's keywords complete too."""

from __future__ import annotations

import re

from lsprotocol import types as T

from bkdsl import catalog, registry
from bkdsl.lsp.positions import lines_of, to_bk
from bkdsl.syntax import ast as A
from bkdsl.syntax.parser import parse

KEYWORDS = ("import", "from", "as", "const", "manifold", "propagator", "binding", "integrator", "hamiltonian",
            "loss", "block", "model", "data", "train", "input", "output", "param", "on", "in", "true", "false")

_DECL = re.compile(r"^\s*(manifold|propagator|binding|integrator|hamiltonian|loss|data)\b[^=]*=")
_CALLEE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
LOOKBACK = 4000  # characters searched backwards for the enclosing call


def _strip_comments(text: str) -> str:
    """``text`` with each ``# …`` comment blanked (strings hold no ``#`` in practice; a ``#`` inside a
    string only shortens what the search sees)."""
    return "\n".join(ln.split("#", 1)[0] for ln in text.split("\n"))


def enclosing_call(before: str) -> tuple[str, str] | None:
    """(callee, the call's text so far) of the innermost unclosed ``(`` in ``before``, or None."""
    depth = 0
    for i in range(len(before) - 1, max(-1, len(before) - LOOKBACK - 1), -1):
        ch = before[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = _CALLEE.search(before[:i])
                return (m.group(1), before[i + 1:]) if m else None
            depth -= 1
        elif ch in "{}" and depth == 0:
            return None
    return None


def _component_items(kind_first: str | None) -> list[T.CompletionItem]:
    items = []
    for e in catalog.entries():
        items.append(T.CompletionItem(
            label=e.name, kind=T.CompletionItemKind.Class if e.kind == "layer" else T.CompletionItemKind.Function,
            detail=f"{e.kind}: {e.signature}",
            documentation=T.MarkupContent(T.MarkupKind.Markdown, e.doc or "(no docstring)"),
            sort_text=("0" if e.kind == kind_first else "1") + e.name))
    return items


def _param_items(name: str, call_text: str) -> list[T.CompletionItem]:
    given = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", call_text))
    items = []
    for e in catalog.select(name):
        for p in e.params:
            if p.name in given:
                continue
            typ = p.type + (f" in {p.unit}" if p.unit else "")
            default = "required" if p.default is None else f"default {p.default}"
            items.append(T.CompletionItem(
                label=p.name, kind=T.CompletionItemKind.Property, insert_text=f"{p.name} = ",
                detail=f"{typ} ({default})", documentation=p.doc or None, sort_text="0" + p.name))
    return items


def completion(text: str, path: str, pos: T.Position) -> T.CompletionList:
    lines = lines_of(text)
    line, col = to_bk(pos, lines)
    before = "\n".join(lines[:line - 1] + [lines[line - 1][:col - 1] if line <= len(lines) else ""])
    code = _strip_comments(before)
    items: list[T.CompletionItem] = []
    call = enclosing_call(code)
    if call is not None and registry.lookup(call[0]) is not None:
        items += _param_items(*call)
    current = code.split("\n")[-1]
    decl = _DECL.match(current)
    items += _component_items(decl.group(1) if decl else None)
    module, _ = parse(text, path)
    for st in module.stmts if module is not None else ():
        name = getattr(st, "name", None)
        if isinstance(name, str) and not any(i.label == name for i in items):
            items.append(T.CompletionItem(label=name, kind=T.CompletionItemKind.Variable,
                                          detail=type(st).__name__.lower(), sort_text="0" + name))
    items += [T.CompletionItem(label=k, kind=T.CompletionItemKind.Keyword, sort_text="2" + k) for k in KEYWORDS]
    return T.CompletionList(is_incomplete=False, items=items)
