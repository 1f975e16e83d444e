"""Names in scope: bindings of a module's top-level names, and the template/instance/value records
that constant evaluation and elaboration pass around."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bkdsl.diagnostics import BkError, Diagnostic, Span
from bkdsl.semantics import ir as I
from bkdsl.syntax import ast as A


@dataclass
class Binding:
    kind: str  # const | decl | loss | block | data | namespace | train | poisoned (a failed declaration)
    value: Any
    span: Span | None = None


@dataclass
class Scope:
    file: str
    names: dict[str, Binding] = field(default_factory=dict)
    program: I.Program | None = None
    # (len(names), {name: manifold component}) — see manifolds(); cleared by define()
    _manifolds: Any = field(default=None, init=False, repr=False, compare=False)

    def define(self, name: str, b: Binding) -> None:
        if name in self.names and self.names[name].kind not in ("namespace", "poisoned"):
            prev = self.names[name].span
            raise BkError("E0003", f"`{name}` is defined twice", span=b.span,
                          notes=[f"first defined at {prev}"] if prev else [], help="rename one of them")
        self.names[name] = b
        self._manifolds = None

    def manifolds(self) -> dict[str, Any]:
        """The manifold declarations in scope, name → component (do not mutate). Found once and
        kept while no name is added: a scan of every name per block was quadratic in the size of
        the spec (10 000-line specs)."""
        cached = self._manifolds
        if cached is None or cached[0] != len(self.names):
            cached = self._manifolds = (len(self.names), {
                n: b.value.component for n, b in self.names.items()
                if b.kind == "decl" and b.value.kind == "manifold"})
        return cached[1]

    def lookup(self, name: str) -> Binding | None:
        b = self.names.get(name)
        if b is not None and b.kind == "poisoned":
            raise Cascade(name, b.span)
        return b


class Cascade(BkError):
    """A use of a name whose declaration failed: its error was already reported, so this one is not
    (no cascades after the first error of a declaration). Never shown to a user."""

    def __init__(self, name: str, span: Span | None = None):
        super().__init__("E0101", f"`{name}` is unusable: its declaration has an error", span=span)


def report(diags: list[Diagnostic], e: BkError) -> None:
    """Append ``e``'s diagnostic unless it is a cascade of an error already reported."""
    if not isinstance(e, Cascade):
        diags.append(e.diagnostic)


def _declared_name(st) -> str | None:
    return getattr(st, "name", None) if isinstance(st, (A.Const, A.ComponentDecl, A.Block, A.Data, A.Train)) else None


@dataclass
class BlockTemplate:
    ast: A.Block
    scope: Scope

    @property
    def name(self) -> str:
        return self.ast.name


@dataclass
class BlockInstance:
    """A block with its config bound, not yet applied to values: ``bk_layer(d_model, 8)``."""

    template: BlockTemplate
    config: dict[str, Any]
    span: Span | None = None


@dataclass
class RepeatInstance:
    """``repeat(block_instance, n)``: n copies applied in sequence (separate weights)."""

    inner: BlockInstance
    n: int
    span: Span | None = None


@dataclass
class DF:
    """A dataflow value inside a block: a node reference with its type."""

    ref: I.NodeRef
    type: Any  # ValueType | tuple | dict
    label: str = ""
