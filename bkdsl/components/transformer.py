"""The plain transformer's parts: multi-head self-attention (causal by default), the GELU MLP, and
learned absolute positions — what `specs/gpt_baseline.bk` (a pre-LN GPT, Radford et al. 2019) needs.

    attention    y = W_o · concat_h softmax(Q_h K_hᵀ / √d_h + M) V_h,  M_ij = −∞ for j > i (causal)
    gelu_mlp     y = W₂ GELU(W₁ x + b₁) + b₂                          (W₁: d → hidden, default 4d)
    positions    y_i = x_i + P_i                                       (P: [max_len, d], learned)

Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-
efficient kernels on the GPU, the math path elsewhere) with ``is_causal``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, InferCtx, component
from bkdsl.diagnostics import BkError
from bkdsl.semantics.types import ValueType


def _sequence_input(ins: list[ValueType], ctx: InferCtx, name: str) -> int:
    """d of a float [B, N, d] input, known at compile time."""
    t = ins[0]
    if t.rank != 3 or t.dtype != "float":
        raise BkError("E0401", f"`{name}` expects a float sequence [B, N, d], got {t.show()}", span=ctx.span)
    d = ctx.uni.find(t.shape[2])
    if not isinstance(d, int):
        raise BkError("E0404", f"`{name}` needs the hidden size known at compile time, got {t.show()}",
                      span=ctx.span, help="give the dimension a size through a block parameter")
    return d


# ------------------------------------------------------------------------------ attention
class SelfAttention(torch.nn.Module):
    """Multi-head self-attention, [B, N, d] → [B, N, d]; ``causal``: position i attends j ≤ i."""

    def __init__(self, d: int, heads: int, causal: bool = True, bias: bool = True):
        super().__init__()
        if d % heads:
            raise ValueError(f"d = {d} is not divisible by heads = {heads}")
        self.d, self.heads, self.causal = d, heads, causal
        self.qkv = torch.nn.Linear(d, 3 * d, bias=bias)
        self.out = torch.nn.Linear(d, d, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out(o.transpose(1, 2).reshape(b, n, d))

    def extra_repr(self) -> str:
        return f"d={self.d}, heads={self.heads}, causal={self.causal}"


class _AttP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heads: int = Field(gt=0, description="number of attention heads (d must be divisible by it)")
    causal: bool = Field(True, description="true: position i attends positions j ≤ i (language models)")
    bias: bool = Field(True, description="biases in the q/k/v and output projections")


@component("self_attention", kind="layer", inputs=("x",))
class SelfAttentionC(Component):
    """Multi-head scaled dot-product self-attention (SDPA), causal by default: [B, N, d] → [B, N, d]."""

    Params = _AttP

    def sequence_pattern(self) -> str:
        return "causal" if self.params.causal else "global"

    def flip_symmetric(self) -> bool:
        return not self.params.causal  # unmasked attention is permutation-equivariant

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        self.d = _sequence_input(ins, ctx, self.name)
        if self.d % self.params.heads:
            raise BkError("E0201", f"hidden size {self.d} is not divisible by heads = {self.params.heads}",
                          span=ctx.span, help="choose heads dividing the hidden size")
        return ins[0].with_(unit=None)

    def build(self):
        p = self.params
        return SelfAttention(self.d, p.heads, p.causal, p.bias)


# ------------------------------------------------------------------------------ MLP
class _MlpP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int | None = Field(None, gt=0, description="inner width (default 4·d)")


@component("gelu_mlp", kind="layer", inputs=("x",))
class GeluMlpC(Component):
    """The transformer's position-wise MLP, W₂ GELU(W₁x + b₁) + b₂: [..., d] → [..., d]."""

    Params = _MlpP
    sequence = "pointwise"

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        d = ctx.uni.find(t.shape[-1]) if t.shape else None
        if t.dtype != "float" or not isinstance(d, int):
            raise BkError("E0401", f"`gelu_mlp` expects a float tensor with a known last axis, got {t.show()}",
                          span=ctx.span)
        self.d = d
        return t.with_(unit=None)

    def build(self):
        h = self.params.hidden or 4 * self.d
        return torch.nn.Sequential(torch.nn.Linear(self.d, h), torch.nn.GELU(), torch.nn.Linear(h, self.d))


# ------------------------------------------------------------------------------ positions
class LearnedPositions(torch.nn.Module):
    """y_i = x_i + P_i with P [max_len, d] learned (GPT-2 initialises P ~ N(0, 0.01²))."""

    def __init__(self, d: int, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.table = torch.nn.Parameter(0.01 * torch.randn(max_len, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        if n > self.max_len:
            raise ValueError(f"position_embedding: sequence length {n} exceeds max_len = {self.max_len}")
        return x + self.table[:n].to(x.dtype)


class _PosP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_len: int = Field(gt=0, description="the longest sequence the table covers")


@component("position_embedding", kind="layer", inputs=("x",))
class PositionEmbeddingC(Component):
    """Learned absolute positions added to a sequence [B, N, d] (N ≤ max_len)."""

    Params = _PosP
    sequence = "pointwise"      # position i reads x_i (and its own index) only
    flip_equivariant = False    # the table is indexed by position

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        self.d = _sequence_input(ins, ctx, self.name)
        n = ctx.uni.find(ins[0].shape[1])
        if isinstance(n, int) and n > self.params.max_len:
            raise BkError("E0201", f"sequence length {n} exceeds `position_embedding`'s max_len = "
                                   f"{self.params.max_len}", span=ctx.span, help=f"use max_len >= {n}")
        return ins[0].with_(unit=None)

    def build(self):
        return LearnedPositions(self.d, self.params.max_len)
