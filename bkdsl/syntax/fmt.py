"""``bkdsl fmt``: the canonical layout of a bk file.

Rules: two-space indentation in blocks; `=` aligned within runs of consecutive `const` / train
entries; calls on one line when they fit in :data:`WIDTH` columns, else one argument per line;
minimal parentheses by precedence; numbers keep their written form (``1e-3`` stays ``1e-3``); one
blank line around blocks, data and train declarations. Comments are kept: a comment on its own line
stays above the statement it precedes, a trailing comment stays at the end of its statement's first
line, and a comment inside a multi-line expression moves above its statement. Formatting is
idempotent and ``parse(fmt(x)) == parse(x)`` (tests/syntax/test_fmt.py).
"""

from __future__ import annotations

from bkdsl.syntax import ast as A

WIDTH = 100

_PREC = {"in": 0, "+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def expr(e, prec: int = 0) -> str:
    """One-line rendering with minimal parentheses; ``prec`` is the binding power of the context."""
    if isinstance(e, A.Num):
        return e.text
    if isinstance(e, A.Imag):
        return e.text
    if isinstance(e, A.Str):
        return '"' + e.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(e, A.Bool):
        return "true" if e.value else "false"
    if isinstance(e, A.Quantity):
        return f"{expr(e.magnitude, 6)} {e.unit}"
    if isinstance(e, A.ListExpr):
        return "[" + ", ".join(expr(x) for x in e.items) + "]"
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, A.Attr):
        return f"{expr(e.obj, 5)}.{e.name}"
    if isinstance(e, A.Call):
        return f"{expr(e.func, 5)}({_args(e)})"
    if isinstance(e, A.Index):
        return f"{expr(e.obj, 5)}[{', '.join(_idx(i) for i in e.items)}]"
    if isinstance(e, A.BinOp):
        p = _PREC[e.op]
        if e.op == "^":  # right-associative
            # `1 fm ^ 2` keeps its spaces: `1 fm^2` would lex as the unit fm^2
            sep = " ^ " if isinstance(e.left, A.Quantity) else "^"
            s = f"{expr(e.left, p + 1)}{sep}{expr(e.right, p - 1)}"
        else:
            s = f"{expr(e.left, p)} {e.op} {expr(e.right, p + 1)}"
        return f"({s})" if p < prec else s
    if isinstance(e, A.Neg):
        s = f"-{expr(e.operand, _PREC['neg'])}"
        return f"({s})" if _PREC["neg"] < prec else s
    if isinstance(e, A.InUnit):
        s = f"{expr(e.expr, 1)} in {e.unit}"
        return f"({s})" if prec > 0 else s
    raise TypeError(f"cannot format {type(e).__name__}")


def _idx(i) -> str:
    if isinstance(i, A.Slice):
        return f"{expr(i.lo) if i.lo is not None else ''}:{expr(i.hi) if i.hi is not None else ''}"
    if isinstance(i, A.EllipsisIdx):
        return "..."
    return expr(i)


def _args(c: A.Call) -> str:
    return ", ".join([expr(a) for a in c.args] + [f"{k.name} = {expr(k.value)}" for k in c.kwargs])


def _expr_fit(e, indent: str, lead: int) -> str:
    """Render ``e``; a top-level call too long for the line breaks one argument per line."""
    one = expr(e)
    if lead + len(one) <= WIDTH:
        return one
    inner = indent + "  "
    if isinstance(e, A.ListExpr) and e.items:
        parts = [inner + _expr_fit(x, inner, len(inner)) for x in e.items]
        return "[\n" + ",\n".join(parts) + f"\n{indent}]"
    if not isinstance(e, A.Call) or not (e.args or e.kwargs):
        return one
    parts = [inner + _expr_fit(a, inner, len(inner)) for a in e.args]
    parts += [inner + f"{k.name} = " + _expr_fit(k.value, inner, len(inner) + len(k.name) + 3) for k in e.kwargs]
    return f"{expr(e.func, 5)}(\n" + ",\n".join(parts) + f"\n{indent})"


def _dim(d: A.DimExpr) -> str:
    if d.op is None:
        return str(d.value)
    sub = {"+": 1, "-": 1, "*": 2, "/": 2}
    def side(x: A.DimExpr, p: int) -> str:
        s = _dim(x)
        return f"({s})" if x.op is not None and sub[x.op] < p else s
    p = sub[d.op]
    return f"{side(d.left, p)} {d.op} {side(d.right, p + 1)}"


def _type(t: A.TypeExpr) -> str:
    parts = []
    if t.shape is not None:
        parts.append("[" + ", ".join(_dim(d) for d in t.shape) + "]")
    if t.dtype:
        parts.append(t.dtype)
    if t.manifold:
        parts.append(f"on {t.manifold}")
    if t.unit:
        parts.append(f"in {t.unit}")
    return " ".join(parts)


def _formals(fs: list[A.Formal] | None, lead: int = 0) -> str:
    if fs is None:
        return ""
    one = _formals_flat(fs)
    if lead + len(one) <= WIDTH or len(fs) < 2:
        return one
    return "(\n" + ",\n".join("    " + f for f in _formal_texts(fs)) + "\n)"


def _formals_flat(fs: list[A.Formal]) -> str:
    return "(" + ", ".join(_formal_texts(fs)) + ")"


def _formal_texts(fs: list[A.Formal]) -> list[str]:
    out = []
    for f in fs:
        s = f.name
        if f.type_name:
            s += f": {f.type_name}"
        if f.default is not None:
            s += f" = {expr(f.default)}"
        out.append(s)
    return out


def _claim(c: A.Claim) -> str:
    if c.arg is None:
        return c.name
    if isinstance(c.arg, A.ClaimBound):
        lhs = f"{c.arg.measure} " if c.arg.measure else ""
        return f"{c.name}({lhs}<= {expr(c.arg.bound)})"
    return f"{c.name}({expr(c.arg)})"


def _claims(cs: list[A.Claim]) -> str:
    return (" : " + ", ".join(_claim(c) for c in cs)) if cs else ""


class _Emitter:
    def __init__(self, comments: list[A.Comment]):
        self.comments = sorted(comments, key=lambda c: (c.line, c.col))
        self.lines: list[str] = []

    def take_before(self, line: int) -> list[A.Comment]:
        out = [c for c in self.comments if c.line < line]
        self.comments = [c for c in self.comments if c.line >= line]
        return out

    def take_within(self, first: int, last: int) -> tuple[A.Comment | None, list[A.Comment]]:
        """The trailing comment of line ``first`` and the comments of lines (first, last]."""
        trailing = next((c for c in self.comments if c.line == first), None)
        inner = [c for c in self.comments if first < c.line <= last]
        self.comments = [c for c in self.comments if not (first <= c.line <= last)]
        return trailing, inner

    def stmt(self, text: str, span, indent: str = "") -> None:
        first = span.line if span else 0
        last = span.end_line if span else 0
        before = self.take_before(first)
        for i, c in enumerate(before):
            self.lines.append(indent + c.text)
            nxt = before[i + 1].line if i + 1 < len(before) else first
            if nxt - c.line > 1 and first:  # keep an empty line that separated comment paragraphs
                self.lines.append("")
        trailing, inner = self.take_within(first, last)
        for c in inner:
            self.lines.append(indent + c.text)
        text_lines = text.split("\n")
        if trailing is not None:
            text_lines[0] = text_lines[0] + "  " + trailing.text
        for ln in text_lines:
            self.lines.append(indent + ln if ln else ln)


def _block_header(b: A.Block) -> str:
    head = f"{'model' if b.is_model else 'block'} {b.name}"
    tail = f"{_claims(b.claims)} {{"
    return head + _formals(b.formals, len(head) + len(tail)) + tail


def _block_stmt(s) -> str:
    if isinstance(s, A.Input):
        return f"input {s.name} : {_type(s.type)}"
    if isinstance(s, A.Param):
        return f"param {s.name} : {_type(s.type)}" + (f" = {expr(s.init)}" if s.init is not None else "")
    if isinstance(s, A.Output):
        return "output " + (f"{s.name} = " if s.name else "") + _expr_fit(s.value, "", 9)
    if isinstance(s, A.Assign):
        return f"{s.name} = " + _expr_fit(s.value, "", len(s.name) + 5)
    raise TypeError(type(s).__name__)


def format_module(m: A.Module) -> str:
    em = _Emitter(list(m.comments))
    prev_kind, prev_big = None, False
    const_w = max((len(s.name) for s in m.stmts if isinstance(s, A.Const)), default=0)
    prev_end = None
    for s in m.stmts:
        kind = type(s).__name__
        big = isinstance(s, (A.Block, A.Data, A.Train)) or (isinstance(s, A.ComponentDecl) and s.kind == "loss")
        gap = _had_blank_line(prev_end, s.span, m.comments)
        if em.lines and (big or kind != prev_kind or prev_big or gap):
            em.lines.append("")
        prev_kind, prev_big = kind, big
        prev_end = s.span.end_line if s.span else None
        if isinstance(s, A.Import):
            mod = f'"{s.module}"' if s.is_path else s.module
            em.stmt(f"import {mod}" + (f" as {s.alias}" if s.alias else ""), s.span)
        elif isinstance(s, A.FromImport):
            mod = f'"{s.module}"' if s.is_path else s.module
            em.stmt(f"from {mod} import {', '.join(s.names)}", s.span)
        elif isinstance(s, A.Const):
            head = f"const {s.name.ljust(const_w)} = "
            em.stmt(head + _expr_fit(s.value, "", len(head)), s.span)
        elif isinstance(s, A.ComponentDecl):
            head = f"{s.kind} {s.name}{_formals(s.formals)} = "
            em.stmt(head + _expr_fit(s.value, "", len(head)) + _claims(s.claims), s.span)
        elif isinstance(s, A.Data):
            head = f"data {s.name} = "
            em.stmt(head + _expr_fit(s.value, "", len(head)), s.span)
        elif isinstance(s, A.Block):
            em.stmt(_block_header(s), _first_line(s.span))
            for b in s.body:
                em.stmt(_block_stmt(b), b.span, "  ")
            for c in em.take_before(s.span.end_line + 1 if s.span else 10**9):
                em.lines.append("  " + c.text)
            em.lines.append("}")
        elif isinstance(s, A.Train):
            em.stmt(f"train {s.name} {{", _first_line(s.span))
            w = max((len(e.key) for e in s.entries), default=0)
            for e in s.entries:
                head = f"{e.key.ljust(w)} = "
                em.stmt(head + _expr_fit(e.value, "", len(head) + 2), e.span, "  ")
            for c in em.take_before(s.span.end_line + 1 if s.span else 10**9):
                em.lines.append("  " + c.text)
            em.lines.append("}")
    for c in em.comments:
        em.lines.append(c.text)
    return "\n".join(em.lines).rstrip() + "\n"


def _had_blank_line(prev_end: int | None, span, comments: list[A.Comment]) -> bool:
    """Whether the source had an empty line between the previous statement and this one (comment
    lines in between do not count as empty)."""
    if prev_end is None or span is None:
        return False
    between = span.line - prev_end - 1
    own_line_comments = sum(1 for c in comments if prev_end < c.line < span.line and c.col == 1 or
                            (prev_end < c.line < span.line and c.col > 1))
    return between > own_line_comments


def _first_line(span):
    if span is None:
        return None
    from bkdsl.diagnostics import Span

    return Span(span.file, span.line, span.col, span.line, span.col + 1)

