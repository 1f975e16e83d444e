"""Fast-weight memories: the delta-rule (or additive) fast-weight layer and the associative-recall
network built on it (source 001 §4.3; the kernel is kernels/delta_rule)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.diagnostics import BkError
from bkdsl.registry import Component, component
from bkdsl.semantics.types import ValueType


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class _FastWeightP(_P):
    d_key: int = Field(32, gt=0, description="key/query size per head")
    d_value: int | None = Field(None, gt=0, description="value size per head (default d_key)")
    heads: int = Field(1, gt=0)
    rule: Literal["delta", "additive"] = Field("delta", description="delta rule (source 001 §4.3) or "
                                                                     "plain additive linear attention")
    normalize: bool = Field(True, description="divide by z_tᵀφ(q_t), z_t = Σ φ(k)")
    key_norm: bool = Field(False, description="L1-normalise φ(k), φ(q) (keeps β‖φ(k)‖² < 2)")
    mode: Literal["chunked", "recurrent"] = "chunked"
    chunk: int = Field(64, gt=0)


@component("fast_weight", kind="layer", inputs=("x",))
class FastWeight(Component):
    """Delta-rule fast-weight memory [B, T, d] → [B, T, d] (φ = ELU + 1, learned β_t, normaliser z_t)."""

    Params = _FastWeightP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if not t.shape or len(t.shape) != 3:
            raise BkError("E0401", f"`fast_weight` expects [B, T, d], got {t.show()}", span=ctx.span)
        d = ctx.uni.find(t.shape[-1])
        if not isinstance(d, int):
            raise BkError("E0404", "`fast_weight`'s model size must be known", span=ctx.span)
        self.d_model = d
        return t

    def build(self):
        from bkdsl.nn.fast_weights import FastWeightLayer

        p = self.params
        return FastWeightLayer(self.d_model, p.d_key, p.d_value, p.heads, p.rule, p.normalize, p.key_norm,
                               p.mode, p.chunk)


class _RecallNetP(_P):
    vocab: int = Field(gt=1, description="token vocabulary (keys, values, query marker)")
    d_model: int = Field(64, gt=0)
    d_key: int = Field(32, gt=0)
    heads: int = Field(1, gt=0)
    rule: Literal["delta", "additive"] = "delta"
    normalize: bool = True
    key_norm: bool = True


class _LastLogits(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, tokens):
        return self.net(tokens)[:, -1]


@component("fast_weight_recall_net", kind="layer", inputs=("tokens",))
class FastWeightRecallNet(Component):
    """tokens [B, T] → logits [B, vocab] at the last position (the query): embedding with a one-token
    shift, a fast-weight layer, an MLP read-out."""

    Params = _RecallNetP
    accepts = "any"

    def infer(self, ins, ctx):
        t = ins[0]
        if t.dtype != "int" or not t.shape or len(t.shape) != 2:
            raise BkError("E0401", f"`fast_weight_recall_net` expects int tokens [B, T], got {t.show()}", span=ctx.span)
        return ValueType((t.shape[0], self.params.vocab), "float", None, None)

    def build(self):
        from bkdsl.nn.fast_weights import FastWeightRecall

        p = self.params
        return _LastLogits(FastWeightRecall(p.vocab, p.d_model, p.d_key, p.heads, p.rule, p.normalize, p.key_norm))
