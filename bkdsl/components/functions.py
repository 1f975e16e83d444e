"""Stateless function components: activations, reshaping, upsampling.

Each is lowered to an fx ``call_function`` of the function of the same name in :mod:`bkdsl.nn.ops`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, InferCtx, component
from bkdsl.diagnostics import BkError
from bkdsl.lazy import lazy_function
from bkdsl.semantics.types import ValueType


class _Elementwise(Component):
    kind = "function"
    inputs = ("x",)
    sequence = "pointwise"  # one scalar map per entry
    mixes_last_axis = False

    def infer(self, ins: list[ValueType], ctx: InferCtx) -> ValueType:
        self.check_manifolds(ins, ctx)
        if ins[0].dtype not in ("float", "complex"):
            raise BkError("E0403", f"`{self.name}` needs a float tensor, got {ins[0].dtype}", span=ctx.span)
        return ins[0].with_(unit=None)


def _elementwise(name: str, doc: str, lipschitz: float, bound: float | None) -> None:
    cls = type(f"Fn_{name}", (_Elementwise,), {"function": lazy_function("bkdsl.nn.ops", name), "__doc__": doc,
                                                "lipschitz_value": lipschitz, "output_bound_value": bound})
    component(name, kind="function", inputs=("x",))(cls)


# (name, formula, Lipschitz constant = sup |f'|, sup |f| or None). gelu: max of Φ(x) + xφ(x) at
# x = √2 is 1.1289; silu: max of σ(x)(1 + x(1 − σ(x))) at x ≈ 2.40 is 1.0998 (both rounded up).
for _n, _d, _l, _b in [("relu", "max(x, 0)", 1.0, None), ("gelu", "x Φ(x)", 1.129, None),
                       ("silu", "x σ(x)", 1.1, None), ("elu", "x if x > 0 else eˣ − 1", 1.0, None),
                       ("tanh", "tanh x", 1.0, 1.0), ("sigmoid", "1 / (1 + e⁻ˣ)", 0.25, 1.0),
                       ("softplus", "log(1 + eˣ)", 1.0, None)]:
    _elementwise(_n, _d, _l, _b)


class _UpP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: int = Field(2, ge=1, description="integer upsampling factor of the last two axes")
    mode: str = Field("nearest", pattern="^(nearest|bilinear)$")


@component("upsample", kind="function", inputs=("x",))
class Upsample(Component):
    """Nearest-neighbour ×scale upsampling of [B, C, H, W] (the thesis' decoder; no transposed conv)."""

    Params = _UpP
    function = lazy_function("bkdsl.nn.ops", "upsample")

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.rank != 4:
            raise BkError("E0401", f"`upsample` expects [B, C, H, W], got {t.show()}", span=ctx.span)
        s = self.params.scale
        h, w = t.shape[2], t.shape[3]
        return t.with_(shape=(t.shape[0], t.shape[1], _mul(h, s), _mul(w, s)))

    def call_kwargs(self) -> dict[str, Any]:
        return {"scale": self.params.scale, "mode": self.params.mode}


def _mul(d, s: int):
    return d * s if isinstance(d, int) else f"{s}*{d}"


@component("global_mean", kind="function", inputs=("x",))
class GlobalMean(Component):
    """Global average pooling: [B, C, H, W] → [B, C]."""

    function = lazy_function("bkdsl.nn.ops", "global_mean")

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        if ins[0].rank is not None and ins[0].rank < 3:
            raise BkError("E0401", f"`global_mean` expects [B, C, H, W], got {ins[0].show()}", span=ctx.span)
        return ins[0].with_(shape=ins[0].shape[:-2] if ins[0].shape else None)


@component("flatten", kind="function", inputs=("x",))
class Flatten(Component):
    """[B, d₁, d₂, …] → [B, d₁·d₂·…]."""

    function = lazy_function("bkdsl.nn.ops", "flatten")

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.shape is None:
            return t
        n = 1
        for d in t.shape[1:]:
            if not isinstance(d, int):
                raise BkError("E0404", f"`flatten` needs known sizes, got {t.show()}", span=ctx.span)
            n *= d
        return t.with_(shape=(t.shape[0], n))


class _ReshapeP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shape: list[int] = Field(description="the new shape after the batch axis")


@component("reshape", kind="function", inputs=("x",))
class Reshape(Component):
    """[B, n] → [B, *shape] with prod(shape) = n."""

    Params = _ReshapeP
    function = lazy_function("bkdsl.nn.ops", "reshape")

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        n_new = 1
        for d in self.params.shape:
            n_new *= d
        if t.shape is not None and all(isinstance(d, int) for d in t.shape[1:]):
            n_old = 1
            for d in t.shape[1:]:
                n_old *= d
            if n_old != n_new:
                raise BkError("E0401", f"cannot reshape {t.show()} to [{t.shape[0]}, "
                                       f"{', '.join(map(str, self.params.shape))}]: {n_old} ≠ {n_new} elements",
                              span=ctx.span)
        return t.with_(shape=(t.shape[0] if t.shape else "B", *self.params.shape))

    def call_kwargs(self):
        return {"shape": tuple(self.params.shape)}


@component("squeeze_last", kind="function", inputs=("x",))
class SqueezeLast(Component):
    """[…, 1] → […]."""

    sequence = "pointwise"  # acts on the last axis only
    mixes_last_axis = False  # entry by entry

    function = lazy_function("bkdsl.nn.ops", "squeeze_last")

    def infer(self, ins, ctx):
        t = ins[0]
        if t.shape and t.shape[-1] not in (1,) and isinstance(t.shape[-1], int):
            raise BkError("E0401", f"`squeeze_last` needs a last axis of size 1, got {t.show()}", span=ctx.span)
        return t.with_(shape=t.shape[:-1] if t.shape else None)


@component("magnitude", kind="function", inputs=("x",))
class Magnitude(Component):
    """|x|; the complex modulus for a complex tensor (e.g. |G_ii|)."""

    sequence = "pointwise"  # acts on the last axis only
    mixes_last_axis = False  # entry by entry

    accepts = "euclidean"
    function = lazy_function("bkdsl.nn.ops", "magnitude")

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        return ins[0].with_(dtype="float" if ins[0].dtype == "complex" else ins[0].dtype)
