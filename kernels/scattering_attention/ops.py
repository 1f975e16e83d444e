"""The scattering attention as torch custom ops: ``torch.ops.bkdsl.scattering_attention(q, k, v, score, tau,
block, causal, scale) -> (o, lse)`` and its backward op, with fake and autograd registrations.

The op is the Triton path (launched with the tile tables' fallback, :mod:`.kernel`); whether it runs is
decided once per call by :func:`bkdsl.kernels.scattering_attention.scattering_attention_core`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bkdsl.kernels.scattering_attention.kernel import scattering_attention_backward, scattering_attention_forward

__all__ = ["scattering_attention_op", "scattering_attention_backward_op", "scattering_attention_triton"]


@torch.library.custom_op("bkdsl::scattering_attention", mutates_args=())
def scattering_attention_op(
    q: Tensor, k: Tensor, v: Tensor, score: Tensor, tau: float, block: int, causal: bool, scale: float
) -> tuple[Tensor, Tensor]:
    """(o, lse) of scattering-gated block-sparse attention (Triton)."""
    return scattering_attention_forward(q, k, v, score, tau, block, causal, scale)


@scattering_attention_op.register_fake
def _(q, k, v, score, tau, block, causal, scale):
    return torch.empty_like(q), q.new_empty(q.shape[:-1], dtype=torch.float32)


@torch.library.custom_op("bkdsl::scattering_attention_backward", mutates_args=())
def scattering_attention_backward_op(
    do: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, lse: Tensor, score: Tensor,
    tau: float, block: int, causal: bool, scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """(dq, dk, dv) of :func:`scattering_attention_op` (Triton)."""
    return scattering_attention_backward(do, q, k, v, o, lse, score, tau, block, causal, scale)


@scattering_attention_backward_op.register_fake
def _(do, q, k, v, o, lse, score, tau, block, causal, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, score, tau, block, causal, scale = inputs
    o, lse = output
    ctx.save_for_backward(q, k, v, score, o, lse)
    ctx.rule = (tau, block, causal, scale)


def _backward(ctx, do: Tensor, _dlse: Tensor | None):
    # lse is an auxiliary output for the backward pass; gradients arriving on it are ignored.
    q, k, v, score, o, lse = ctx.saved_tensors
    tau, block, causal, scale = ctx.rule
    dq, dk, dv = torch.ops.bkdsl.scattering_attention_backward(
        do, q, k, v, o, lse, score, tau, block, causal, scale
    )
    return dq, dk, dv, None, None, None, None, None


scattering_attention_op.register_autograd(_backward, setup_context=_setup_context)


def scattering_attention_triton(
    q: Tensor, k: Tensor, v: Tensor, score: Tensor, tau: float, block: int, causal: bool,
    scale: float | None = None,
) -> Tensor:
    """o of ``torch.ops.bkdsl.scattering_attention`` (differentiable in q, k, v; not in S)."""
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    o, _ = torch.ops.bkdsl.scattering_attention(q, k, v, score, float(tau), int(block), bool(causal), float(scale))
    return o
