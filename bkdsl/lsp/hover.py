"""Hover: each value's type (shape · dtype · manifold · unit) and each claim's status, read from the
compiled program (:func:`bkdsl.compile_source`; the server caches one per document version), and a
component's catalogue card (:mod:`bkdsl.catalog`) for a component name.

What is under the cursor, in order:

1. a claim (``: symplectic``) → whether it holds, how it was established, the probe's numbers;
2. a value named in a block (an input, ``h = ...``; a name assigned twice resolves to the assignment in
   force on that line) → its type in every elaborated model that uses the block;
3. a model, block or declaration name → its kind and the status of every claim on it;
4. otherwise the innermost IR node whose span holds the cursor → that op's output type;
5. and for a registry component name, its card (kind, signature, parameters, claims).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from lsprotocol import types as T

from bkdsl import catalog, registry
from bkdsl.diagnostics import BkError
from bkdsl.lsp.positions import contains, lines_of, to_bk, word_at
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import ValueType
from bkdsl.syntax import ast as A
from bkdsl.syntax.parser import parse


def show_type(t: Any) -> str:
    """``[B, 64] · float · ball · fm^-3`` (Euclidean values say ``euclidean``, unitless ``no unit``)."""
    if isinstance(t, ValueType):
        shape = "[" + ", ".join(str(d) for d in t.shape) + "]" if t.shape is not None else "[?]"
        return f"{shape} · {t.dtype} · {t.manifold or 'euclidean'} · {t.unit or 'no unit'}"
    if isinstance(t, dict):
        return "{" + ", ".join(f"{k}: {show_type(v)}" for k, v in t.items()) + "}"
    if isinstance(t, tuple):
        return "(" + ", ".join(show_type(v) for v in t) + ")"
    return str(t)


def elaborated_blocks(compiled: Any) -> Iterator[I.BlockIR]:
    """Every elaborated block: the train block's model call first (its config is the one trained), the
    models with their defaults, and the block instances nested in them."""
    roots: list[I.BlockIR] = []
    if compiled.main_call is not None:
        try:
            roots.append(compiled.model_ir(compiled.main_call))
        except BkError:  # reported by check already; the models' defaults below still give types
            pass
    roots += list(compiled.ir.models.values())
    seen: set[int] = set()
    stack = list(reversed(roots))
    while stack:
        b = stack.pop()
        if id(b) in seen:
            continue
        seen.add(id(b))
        yield b
        stack += [n.target for n in reversed(b.nodes) if n.op == "block" and isinstance(n.target, I.BlockIR)]


def _claim_md(cl: I.ClaimResult) -> str:
    status = "**holds**" if cl.proof.holds else "**refused**"
    return f"claim `{cl.prop}` on `{cl.subject}`: {status} ({cl.proof.how})\n\n{cl.proof.detail}"


def _block_ast_at(module: A.Module | None, line: int, col: int) -> A.Block | None:
    if module is None:
        return None
    return next((st for st in module.stmts if isinstance(st, A.Block) and contains(st.span, line, col)), None)


def _value_names(block: A.Block) -> set[str]:
    names = {f.name for f in block.formals or []}
    for st in block.body:
        if isinstance(st, (A.Input, A.Param, A.Assign)) or (isinstance(st, A.Output) and st.name):
            names.add(st.name)
    return names


def _defines_here(block: A.Block, text: str, word: str, line: int, col: int) -> bool:
    """Whether the cursor is on the name a statement of this line defines (``h`` left of ``h = f(h)``),
    not on a use of the previous value of that name (the ``h`` inside ``f(h)``)."""
    for st in block.body:
        if st.span is None or st.span.line != line or getattr(st, "name", None) != word:
            continue
        if isinstance(st, (A.Input, A.Param)):
            return True
        return "=" not in lines_of(text)[line - 1][:col - 1]
    return False


def hover(text: str, path: str, pos: T.Position, compiled: Any | None) -> T.Hover | None:
    """The hover at ``pos`` of the document ``text`` saved as ``path``; ``compiled`` is its compiled
    program, or None when it does not compile (then only component cards are shown)."""
    lines = lines_of(text)
    line, col = to_bk(pos, lines)
    hit = word_at(lines, line, col)
    word = hit[0] if hit else None
    parts: list[str] = []
    if compiled is not None:
        parts = _semantic(compiled, text, path, line, col, word)
    if word is not None and word not in registry.KINDS and not (compiled and word in compiled.ir.scope.names):
        parts += [f"```\n{catalog.render_card(e)}\n```" for e in catalog.select(word)]
    if not parts:
        return None
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)))


def _semantic(c: Any, text: str, path: str, line: int, col: int, word: str | None) -> list[str]:
    # 1. a claim
    claims = [cl for cl in c.ir.claims if cl.span is not None and cl.span.file == path and contains(cl.span, line, col)]
    if claims:
        return [_claim_md(cl) for cl in claims]
    module, _ = parse(text, path)
    blocks = [b for b in elaborated_blocks(c) if b.span is not None and b.span.file == path]
    # 2. a value named in the block under the cursor
    block_ast = _block_ast_at(module, line, col)
    if word is not None and block_ast is not None and word in _value_names(block_ast):
        out = []
        for b in blocks:
            if b.span != block_ast.span:
                continue
            if word in b.config:
                out.append(f"`{word}` = `{b.config[word]}` in `{b.qualname}` (block parameter)")
                continue
            last = line if _defines_here(block_ast, text, word, line, col) else line - 1
            same = [n for n in b.nodes if n.span is not None and n.span.line <= last
                    and (n.name == word or re.fullmatch(re.escape(word) + r"_\d+", n.name))]
            if same:
                n = max(same, key=lambda n: (n.span.line, n.span.col))
                out.append(f"`{word}` : `{show_type(n.type)}`  \nin `{b.qualname}`")
        if out:
            return list(dict.fromkeys(out))
    # 3. a model, block or declaration name
    if word is not None and word in c.ir.scope.names:
        return [_declared(c, word)]
    # 4./5. the innermost op under the cursor (a component name also gets its card, added by the caller)
    best = None
    for b in blocks:
        for n in b.nodes:
            if n.op in ("input", "param") or not contains(n.span, line, col):
                continue
            size = (n.span.end_line - n.span.line, n.span.end_col - n.span.col)
            if best is None or size < best[0]:
                best = (size, n, b)
    if best is not None:
        _, n, b = best
        op = getattr(n.target, "name", None) or n.kwargs.get("fn_name") or n.op
        return [f"`{op}` → `{show_type(n.type)}`  \nin `{b.qualname}`"]
    return []


def _declared(c: Any, name: str) -> str:
    b = c.ir.scope.names[name]
    head = f"{b.kind} `{name}`"
    if name in c.ir.decls:
        d = c.ir.decls[name]
        comp = d.component
        head = f"{d.kind} `{name}` = `{comp.name if comp else '?'}`" + (f" — {catalog.first_paragraph(type(comp).__doc__)}" if comp else "")
    elif name in c.ir.models:
        m = c.ir.models[name]
        ins = ", ".join(f"`{k}` : `{show_type(v)}`" for k, v in m.inputs.items())
        outs = ", ".join(f"`{k}` : `{show_type(m.node(v).type)}`" for k, v in m.outputs.items())
        head = f"model `{m.qualname}`  \ninputs {ins}  \noutputs {outs}"
    claims = [cl for cl in c.ir.claims if cl.subject == name or cl.subject.startswith(name + "(")]
    return "\n\n".join([head] + [_claim_md(cl) for cl in claims])
