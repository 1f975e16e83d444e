"""Shape helpers shared by the component modules' ``infer``."""

from __future__ import annotations

from typing import Any

from bkdsl.diagnostics import BkError
from bkdsl.registry import InferCtx
from bkdsl.semantics.types import ValueType


def last_axis(ins: list[ValueType], ctx: InferCtx, what: str) -> Any:
    """The size of the first input's last axis (an int, or the unifier's symbol when not yet known);
    E0401 for a scalar."""
    t = ins[0]
    if not t.shape:
        raise BkError("E0401", f"{what} needs at least one axis, got {t.show()}", span=ctx.span)
    return ctx.uni.find(t.shape[-1])
