"""Primitive layers (stateful): linear, embedding, conv2d, batchnorm, layernorm.

Composite networks (ResNet encoders, decoders, MLPs) are written in bk over these, in stdlib/.
Input feature sizes are inferred from the input type, so a spec states only output sizes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, InferCtx, component
from bkdsl.diagnostics import BkError
from bkdsl.lazy import lazy_module
from bkdsl.semantics.types import ValueType

torch = lazy_module("torch")  # build() only: checking a spec reads the schemas and infer (bkdsl/lazy.py)


def _known(d: Any, what: str, ctx: InferCtx, t: ValueType) -> int:
    d = ctx.uni.find(d)
    if not isinstance(d, int):
        raise BkError("E0404", f"{what} must be known at compile time; the input is {t.show()}", span=ctx.span,
                      help="give the dimension a size through a block parameter")
    return d


class _LinearP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_features: int = Field(gt=0, description="size of the output's last axis")
    bias: bool = True


@component("linear", kind="layer", inputs=("x",), positional=("x", "out_features"))
class Linear(Component):
    """y = x Wᵀ + b over the last axis: [..., d_in] → [..., out_features]."""

    sequence = "pointwise"  # mixes the feature axis only

    Params = _LinearP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.dtype not in ("float",):
            raise BkError("E0403", f"`linear` needs a float tensor, got {t.dtype}", span=ctx.span,
                          help="embed integer tokens with `embedding(x, vocab, dim)`")
        if not t.shape:
            raise BkError("E0401", f"`linear` needs at least one axis, got {t.show()}", span=ctx.span)
        self.d_in = _known(t.shape[-1], "`linear`'s input size (last axis)", ctx, t)
        return t.with_(shape=t.shape[:-1] + (self.params.out_features,), unit=None)

    def build(self):
        return torch.nn.Linear(self.d_in, self.params.out_features, bias=self.params.bias)


class _EmbP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_embeddings: int = Field(gt=0, description="vocabulary size")
    dim: int = Field(gt=0, description="embedding dimension")


@component("embedding", kind="layer", inputs=("x",), positional=("x", "num_embeddings", "dim"))
class Embedding(Component):
    """Integer tokens [...] → vectors [..., dim]."""

    sequence = "pointwise"  # one lookup per position
    mixes_last_axis = False  # each token is looked up alone

    Params = _EmbP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.dtype != "int":
            raise BkError("E0403", f"`embedding` needs integer tokens, got {t.dtype}", span=ctx.span)
        return ValueType((t.shape or ()) + (self.params.dim,), "float", None, None)

    def build(self):
        return torch.nn.Embedding(self.params.num_embeddings, self.params.dim)


class _ConvP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_channels: int = Field(gt=0)
    kernel: int = Field(3, gt=0, description="square kernel size")
    stride: int = Field(1, gt=0)
    padding: int | None = Field(None, ge=0, description="default: kernel // 2 (odd) or (kernel − stride) // 2 (even)")
    bias: bool = False


def _conv_out(n: Any, k: int, s: int, p: int) -> Any:
    if isinstance(n, int):
        return (n + 2 * p - k) // s + 1
    return f"conv({n})"


@component("conv2d", kind="layer", inputs=("x",), positional=("x", "out_channels", "kernel", "stride"))
class Conv2d(Component):
    """2-D convolution [B, C, H, W] → [B, out, H', W'], H' = ⌊(H + 2p − k)/s⌋ + 1.

    An *even* kernel with stride 2 (k = 4, p = 1) samples both parities of the grid symmetrically —
    the thesis' remedy for parity-symmetry breaking in stride-2 downsampling."""

    sequence = "bidirectional"  # a stencil on both sides

    Params = _ConvP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.rank != 4:
            raise BkError("E0401", f"`conv2d` expects [B, C, H, W], got {t.show()}", span=ctx.span)
        self.c_in = _known(t.shape[1], "`conv2d`'s input channels", ctx, t)
        k, s = self.params.kernel, self.params.stride
        p = self.params.padding if self.params.padding is not None else (k // 2 if k % 2 else (k - s) // 2)
        self.pad = p
        h, w = (_conv_out(ctx.uni.find(d), k, s, p) for d in t.shape[2:])
        for d, nm in ((h, "height"), (w, "width")):
            if isinstance(d, int) and d < 1:
                raise BkError("E0401", f"`conv2d` leaves no {nm}: input {t.show()}, kernel {k}, stride {s}",
                              span=ctx.span)
        return t.with_(shape=(t.shape[0], self.params.out_channels, h, w), unit=None)

    def build(self):
        return torch.nn.Conv2d(self.c_in, self.params.out_channels, self.params.kernel, self.params.stride,
                               self.pad, bias=self.params.bias)


@component("batchnorm", kind="layer", inputs=("x",))
class BatchNorm(Component):
    """Batch normalisation over the channel axis 1 of [B, C, ...] (2-D for [B, C, H, W], 1-D otherwise)."""

    sequence = "global"  # statistics over the batch and every position

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.rank is None or t.rank < 2:
            raise BkError("E0401", f"`batchnorm` expects [B, C, ...], got {t.show()}", span=ctx.span)
        self.c = _known(t.shape[1], "`batchnorm`'s channels", ctx, t)
        self.rank = t.rank
        return t

    def build(self):
        return torch.nn.BatchNorm2d(self.c) if self.rank == 4 else torch.nn.BatchNorm1d(self.c)


@component("layernorm", kind="layer", inputs=("x",))
class LayerNorm(Component):
    """Layer normalisation over the last axis."""

    sequence = "pointwise"  # normalises over the feature axis only

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        self.d = _known(t.shape[-1], "`layernorm`'s size", ctx, t)
        return t

    def build(self):
        return torch.nn.LayerNorm(self.d)
