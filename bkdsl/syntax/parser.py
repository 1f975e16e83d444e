"""Text → AST: the Lark parser and the one small Transformer that builds :mod:`bkdsl.syntax.ast`.

``parse(text, file) -> (Module | None, list[Diagnostic])`` never raises for bad input: Lark's
unexpected-token and unexpected-character errors become E0001 diagnostics with the position and what
was expected.

Limits (E0004, documented in docs/errors.md): a parse tree deeper than :data:`MAX_DEPTH` levels (about
one level per parenthesis, per operand of a chained ``+``/``*``, per nested call) is refused before
any recursive stage sees it — the transformer, the evaluators and the formatter recurse once per
level; a number literal longer than :data:`MAX_LITERAL_CHARS` characters, or one that overflows a
64-bit float, is refused where it is read.
"""

from __future__ import annotations

import functools
import hashlib
import math

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from bkdsl import resources
from bkdsl.cachedir import private_cache_dir
from bkdsl.diagnostics import BkError, Diagnostic, Span, source_lines
from bkdsl.gcpause import paused_gc
from bkdsl.syntax import ast as A

GRAMMAR_PATH = resources.GRAMMAR_PATH

#: deepest parse tree accepted (E0004); the recursive stages after the parser need ~3 Python frames
#: per level, which keeps them well inside Python's default recursion limit of 1000.
MAX_DEPTH = 200
#: longest number literal accepted (E0004); Python refuses int() of more than 4300 digits.
MAX_LITERAL_CHARS = 4000


class _DropNewlinesInBrackets:
    """Post-lexer: inside ``( )`` and ``[ ]`` a newline is white space (multi-line calls and lists)."""

    always_accept = ("_NEWLINE",)

    def process(self, stream):
        depth = 0
        for tok in stream:
            t = tok.type
            if t in ("LPAR", "LSQB"):
                depth += 1
            elif t in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif t == "_NEWLINE" and depth > 0:
                continue
            yield tok


def table_cache_path(grammar: str) -> str | bool:
    """Where Lark may cache the LALR tables (building them costs ~0.1 s per process), or False.

    Lark *pickles* its cache and unpickles it at start-up, so the file must be one only this user can
    write: :func:`bkdsl.cachedir.private_cache_dir`. Lark's own default (``cache=True``) is the shared
    temp directory, where another user could plant the file. No usable directory: no cache."""
    base = private_cache_dir()
    if base is None:
        return False
    digest = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:16]
    return str(base / f"lark-lalr-{digest}.cache")


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=_DropNewlinesInBrackets(),
                propagate_positions=True, maybe_placeholders=True, cache=table_cache_path(grammar))


def _span(file: str, meta_or_tok) -> Span:
    m = meta_or_tok
    if isinstance(m, Token):
        return Span(file, m.line or 1, m.column or 1, m.end_line or m.line or 1, m.end_column or (m.column or 1) + 1)
    if getattr(m, "empty", False):
        return Span(file, 1, 1, 1, 1)
    return Span(file, m.line, m.column, m.end_line, m.end_column)


def _number(text: str, span: Span | None = None) -> float | int:
    if len(text) > MAX_LITERAL_CHARS:
        raise BkError("E0004", f"number literal of {len(text)} characters (the limit is {MAX_LITERAL_CHARS})",
                      span=span, help="write large values with an exponent, e.g. `1e30`")
    t = text.lower()
    if any(c in t for c in ".e"):
        v = float(text)
        if not math.isfinite(v):
            raise BkError("E0004", f"number `{_short(text)}` overflows a 64-bit float", span=span,
                          help="the largest finite value is about 1.8e308")
        return v
    return int(text)


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[:n] + "…"


class _ToAst:
    """Tree → AST, one method per grammar rule: ``rule(meta, children)`` (Lark's ``Transformer`` with
    ``v_args(meta=True)``, written out). :meth:`transform` walks the tree iteratively, bottom-up, with
    each rule's method looked up once per rule name — on a 10 000-line spec the generic
    ``Transformer`` (a wrapper built per call by ``v_args``, a lookup per token) cost as much as the
    parse itself. A rule without a method keeps its ``Tree`` (Lark's default); tokens stay tokens."""

    def __init__(self, file: str):
        self.file = file

    def transform(self, tree: Tree):
        """The AST of ``tree``: post-order over an explicit stack (no recursion, whatever the depth)."""
        methods: dict[str, object] = {}
        done: list[list] = [[]]  # the transformed children of each open node, innermost last
        stack: list[tuple[Tree, bool]] = [(tree, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded is None:  # a token or a placeholder (None): itself
                done[-1].append(node)
                continue
            if not expanded:
                stack.append((node, True))
                done.append([])
                stack.extend((c, False if isinstance(c, Tree) else None) for c in reversed(node.children))
                continue
            children = done.pop()
            fn = methods.get(node.data)
            if fn is None:
                fn = methods[node.data] = getattr(self, node.data, None) or _keep_tree(node.data)
            done[-1].append(fn(node.meta, children))
        return done[0][0]

    def _s(self, meta) -> Span:
        return _span(self.file, meta)

    # ---- module
    def start(self, meta, children):
        return [c for c in children if c is not None and not isinstance(c, Token)]

    def dotted(self, meta, children):
        return ".".join(str(c) for c in children)

    def import_stmt(self, meta, ch):
        mod, alias = ch[0], ch[1]
        is_path = isinstance(mod, Token) and mod.type == "STRING"
        modname = _unquote(mod) if is_path else str(mod)
        return A.Import(modname, is_path, str(alias) if alias is not None else None, self._s(meta))

    def from_import(self, meta, ch):
        mod = ch[0]
        is_path = isinstance(mod, Token) and mod.type == "STRING"
        return A.FromImport(_unquote(mod) if is_path else str(mod), is_path, [str(c) for c in ch[1:]], self._s(meta))

    def const_decl(self, meta, ch):
        return A.Const(str(ch[0]), ch[1], self._s(meta))

    def key(self, meta, ch):
        return str(ch[0])

    def decl_kind(self, meta, ch):
        return str(ch[0])

    block_kind = dtype = decl_kind

    def component_decl(self, meta, ch):
        kind, name, formals, value, claims = ch
        return A.ComponentDecl(str(kind), str(name), formals, value, claims or [], self._s(meta),
                               _span(self.file, name))

    def claims(self, meta, ch):
        return list(ch)

    def claim(self, meta, ch):
        name, arg = ch
        return A.Claim(str(name), _span(self.file, name), arg)

    def claim_bound(self, meta, ch):
        measure, bound = ch
        return A.ClaimBound(str(measure) if measure is not None else None, bound, self._s(meta))

    def formals(self, meta, ch):
        return [c for c in ch if c is not None]

    def formal(self, meta, ch):
        name, tname, default = ch
        return A.Formal(str(name), str(tname) if tname is not None else None, default, self._s(meta))

    def block_def(self, meta, ch):
        kind, name, formals, claims = ch[0], ch[1], ch[2], ch[3]
        body = [c for c in ch[4:] if c is not None]
        return A.Block(str(kind) == "model", str(name), formals, claims or [], body, self._s(meta),
                       _span(self.file, name))

    def input_decl(self, meta, ch):
        return A.Input(str(ch[0]), ch[1], self._s(meta))

    def param_decl(self, meta, ch):
        return A.Param(str(ch[0]), ch[1], ch[2], self._s(meta))

    def output_stmt(self, meta, ch):
        name, value = ch
        return A.Output(str(name) if name is not None else None, value, self._s(meta))

    def assign(self, meta, ch):
        return A.Assign(str(ch[0]), ch[1], self._s(meta))

    def vtype(self, meta, ch):
        shape, dtype, manifold, unit = None, None, None, None
        for c in ch:
            if c is None:
                continue
            if isinstance(c, list):
                shape = c
            elif isinstance(c, str):
                dtype = c
            elif isinstance(c, tuple) and c[0] == "on":
                manifold = c[1]
            elif isinstance(c, tuple) and c[0] == "in":
                unit = c[1]
        return A.TypeExpr(shape, dtype, manifold, unit, self._s(meta))

    def shape(self, meta, ch):
        return [c for c in ch if c is not None]

    def dim_name(self, meta, ch):
        return A.DimExpr(None, str(ch[0]), span=self._s(meta))

    def dim_int(self, meta, ch):
        return A.DimExpr(None, _number(str(ch[0]), self._s(meta)), span=self._s(meta))

    def _dim_op(op):  # noqa: N805 - a tiny factory for the four dim operators
        def f(self, meta, ch):
            return A.DimExpr(op, None, ch[0], ch[1], span=self._s(meta))
        return f

    dim_add, dim_sub, dim_mul, dim_div = _dim_op("+"), _dim_op("-"), _dim_op("*"), _dim_op("/")

    def on_manifold(self, meta, ch):
        return ("on", str(ch[0]))

    def in_unit(self, meta, ch):
        return ("in", str(ch[0]))

    def data_decl(self, meta, ch):
        return A.Data(str(ch[0]), ch[1], self._s(meta))

    def train_decl(self, meta, ch):
        return A.Train(str(ch[0]), [c for c in ch[1:] if c is not None], self._s(meta))

    def train_entry(self, meta, ch):
        return A.TrainEntry(str(ch[0]), ch[1], self._s(meta))

    # ---- expressions
    def maybe_in(self, meta, ch):
        expr, unit = ch
        if unit is None:
            return expr
        return A.InUnit(expr, unit[1], self._s(meta))

    def _bin(op):  # noqa: N805
        def f(self, meta, ch):
            return A.BinOp(op, ch[0], ch[1], self._s(meta))
        return f

    add, sub, mul, div, pow = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("^")

    def neg(self, meta, ch):
        return A.Neg(ch[0], self._s(meta))

    def call(self, meta, ch):
        func, args = ch
        pos, kws = [], []
        for a in args or []:
            (kws if isinstance(a, A.Kwarg) else pos).append(a)
        return A.Call(func, pos, kws, self._s(meta))

    def arguments(self, meta, ch):
        return list(ch)

    def kwarg(self, meta, ch):
        return A.Kwarg(str(ch[0]), ch[1], self._s(meta))

    def index(self, meta, ch):
        return A.Index(ch[0], ch[1], self._s(meta))

    def index_list(self, meta, ch):
        return list(ch)

    def slice(self, meta, ch):
        return A.Slice(ch[0], ch[1], self._s(meta))

    def ellipsis(self, meta, ch):
        return A.EllipsisIdx(self._s(meta))

    def attr(self, meta, ch):
        return A.Attr(ch[0], str(ch[1]), self._s(meta))

    def number(self, meta, ch):
        return A.Num(_number(str(ch[0]), self._s(meta)), str(ch[0]), self._s(meta))

    def quantity(self, meta, ch):
        num = A.Num(_number(str(ch[0]), self._s(meta)), str(ch[0]), _span(self.file, ch[0]))
        return A.Quantity(num, str(ch[1]), self._s(meta))

    def imag(self, meta, ch):
        t = str(ch[0])
        v = _number(t[:-1], self._s(meta))
        if isinstance(v, int) and abs(v) > 2 ** 1023:
            raise BkError("E0004", f"number `{_short(t)}` overflows a 64-bit float", span=self._s(meta))
        return A.Imag(complex(0, float(v)), t, self._s(meta))

    def string(self, meta, ch):
        return A.Str(_unquote(ch[0]), self._s(meta))

    def true(self, meta, ch):
        return A.Bool(True, self._s(meta))

    def false(self, meta, ch):
        return A.Bool(False, self._s(meta))

    def name(self, meta, ch):
        return A.Name(str(ch[0]), self._s(meta))

    def kw_model(self, meta, ch):
        return A.Name("model", self._s(meta))

    def kw_data(self, meta, ch):
        return A.Name("data", self._s(meta))

    def list(self, meta, ch):
        return A.ListExpr([c for c in ch if c is not None], self._s(meta))

    def list_quantity(self, meta, ch):
        items, unit = [c for c in ch[:-1] if c is not None], ch[-1]
        lst = A.ListExpr(items, self._s(meta))
        return A.Quantity(lst, str(unit), self._s(meta))


def _keep_tree(data: str):
    def keep(meta, children):
        return Tree(data, children, meta)
    return keep


def _unquote(tok) -> str:
    s = str(tok)[1:-1]
    return s.encode("utf-8").decode("unicode_escape") if "\\" in s else s


_PRETTY = {
    "_NEWLINE": "end of line", "NAME": "a name", "NUMBER": "a number", "STRING": "a string",
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`",
    "EQUAL": "`=`", "COMMA": "`,`", "COLON": "`:`", "UNIT": "a unit", "DTYPE": "a dtype",
    "DECL_KIND": "a declaration", "BLOCK_KIND": "`block` or `model`", "$END": "end of file",
    "SEMICOLON": "`;`", "INT": "an integer", "IMAG": "an imaginary number",
}


def _pretty_terminal(name: str) -> str:
    """How a user reads a Lark terminal: keywords and punctuation as their text (`DOT` → `.`)."""
    if name in _PRETTY:
        return _PRETTY[name]
    try:
        pat = _parser().get_terminal(name).pattern
    except KeyError:
        return "a token"
    if pat.type == "str":
        return f"`{pat.value}`"
    return "a token"


def _expected(names) -> str:
    pretty = sorted({_pretty_terminal(n) for n in names if not n.startswith("__")})
    if len(pretty) > 6:
        pretty = pretty[:6] + ["…"]
    return ", ".join(pretty)


def parse(text: str, file: str = "<string>") -> tuple[A.Module | None, list[Diagnostic]]:
    """Parse bk source text. Returns the module (or None) and the syntax diagnostics.

    The cyclic garbage collector is paused meanwhile (:mod:`bkdsl.gcpause`: it made parsing
    quadratic in the size of the spec)."""
    with paused_gc():
        return _parse(text, file)


def _parse(text: str, file: str) -> tuple[A.Module | None, list[Diagnostic]]:
    comments: list[A.Comment] = []
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        return None, [_syntax_diag(e, text, file)]
    for tok in _comment_tokens(text):
        comments.append(tok)
    deep = _too_deep(tree)
    if deep is not None:
        return None, [Diagnostic("E0004", f"the expression is nested more than {MAX_DEPTH} levels deep",
                                 _span(file, deep), label="nesting limit reached here",
                                 help="name intermediate values (`const`, or `h = ...` in a block) to "
                                      "flatten it; see the limits in docs/errors.md")]
    try:
        stmts = _ToAst(file).transform(tree)
    except BkError as e:  # a user error (a literal out of range) is a diagnostic; anything else is our bug
        return None, [e.diagnostic]
    return A.Module(file, stmts, comments), []


def _too_deep(tree: Tree):
    """The meta of the first tree node found below depth :data:`MAX_DEPTH`, or None (iterative)."""
    stack = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        if d > MAX_DEPTH:
            return node.meta
        for c in node.children:
            if isinstance(c, Tree):
                stack.append((c, d + 1))
    return None


def _comment_tokens(text: str) -> list[A.Comment]:
    """Comments with positions, found by the lexer's own rules (a '#' outside strings)."""
    out = []
    for ln, line in enumerate(source_lines(text), start=1):
        in_str = False
        esc = False
        for col, ch in enumerate(line, start=1):
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "#":
                out.append(A.Comment(line[col - 1:].rstrip(), ln, col))
                break
    return out


def _content_lines(text: str) -> list[str]:
    """Lines up to the last one that holds text (where "end of file" is shown)."""
    lines = source_lines(text)
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return lines


def _show_char(ch: str) -> str:
    if not ch:
        return "(end of line)"
    if ch.isprintable() and ch != "`":
        return f"`{ch}`"
    return f"U+{ord(ch):04X}" + (" (`)" if ch == "`" else "")


def _syntax_diag(e: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line = getattr(e, "line", 1) or 1
    col = getattr(e, "column", 1) or 1
    if isinstance(e, UnexpectedCharacters):
        lines = source_lines(text)
        ch = lines[line - 1][col - 1:col] if line - 1 < len(lines) else ""
        msg = f"unexpected character {_show_char(ch)}"
        exp = _expected(e.allowed or [])
        label = "not valid here"
        help = f"expected {exp}" if exp else None
        end = col + 1
    elif isinstance(e, UnexpectedEOF):
        lines = _content_lines(text)
        line, col = len(lines), len(lines[-1]) + 1
        msg = "unexpected end of file"
        label = "the file ends here"
        exp = _expected(e.expected or [])
        help = f"expected {exp}; is a `}}` or `)` missing?" if exp else "is a `}` or `)` missing?"
        end = col + 1
    else:
        assert isinstance(e, UnexpectedToken)
        tok = e.token
        if tok.type == "$END":
            lines = _content_lines(text)
            line, col = len(lines), len(lines[-1]) + 1
            msg = "unexpected end of file"
            end = col + 1
        else:
            shown = "end of line" if tok.type == "_NEWLINE" else f"`{_short(str(tok), 40)}`"
            msg = f"unexpected {shown}"
            end = col + max(1, len(str(tok).split("\n")[0]) if str(tok) and tok.type != "_NEWLINE" else 1)
        label = "not valid here"
        exp = _expected(e.expected or e.accepts or [])
        help = f"expected {exp}" if exp else None
    return Diagnostic("E0001", msg, Span(file, line, col, line, end), label=label, help=help)
