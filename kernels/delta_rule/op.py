"""``torch.ops.bkdsl.delta_rule``: the chunked Triton delta rule as a custom op, and the dispatching entry.

``torch.ops.bkdsl.delta_rule(q, k, v, beta, feature_map, normalize)`` returns ``(y, den, T, W_k, U, S, z)``:
y is the output, the rest is the float32 scratch its backward reads (saved by the autograd
registration instead of recomputed). Its fake implementation gives the shapes, its autograd formula
calls ``torch.ops.bkdsl.delta_rule_backward``, so torch.compile traces the pair as two opaque nodes.

:func:`delta_rule` is what models call: one :func:`bkdsl.kernels.dispatch.use_triton` decision per call,
the custom op on CUDA (or with ``BKDSL_KERNELS=triton``), the PyTorch chunked reference
(:func:`bkdsl.kernels.delta_rule.naive.delta_rule_chunked`, autograd through PyTorch) elsewhere.
"""

from __future__ import annotations

import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.delta_rule.chunk import CHUNK, delta_rule_bwd_triton, delta_rule_fwd_triton
from bkdsl.kernels.delta_rule.naive import delta_rule_chunked

__all__ = ["delta_rule", "delta_rule_op", "delta_rule_backward_op"]


@torch.library.custom_op("bkdsl::delta_rule", mutates_args=())
def delta_rule_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, feature_map: bool,
                  normalize: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                            torch.Tensor, torch.Tensor]:
    """Chunked delta rule (Triton): y and the scratch of the backward."""
    return delta_rule_fwd_triton(q, k, v, beta, feature_map, normalize)


@delta_rule_op.register_fake
def _(q, k, v, beta, feature_map, normalize):
    B, H, N, dk = q.shape
    dv = v.shape[-1]
    nc = -(-N // CHUNK)
    f32 = dict(dtype=torch.float32)
    return (v.new_empty(B, H, N, dv), q.new_empty(B * H, nc * CHUNK, **f32),
            q.new_empty(B * H, nc * CHUNK, CHUNK, **f32), q.new_empty(B * H, nc * CHUNK, dk, **f32),
            q.new_empty(B * H, nc * CHUNK, dv, **f32),
            q.new_empty(B * H, nc, dv, dk, **f32), q.new_empty(B * H, nc, dk, **f32))


@torch.library.custom_op("bkdsl::delta_rule_backward", mutates_args=())
def delta_rule_backward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                           y: torch.Tensor, den: torch.Tensor, T: torch.Tensor, Wk: torch.Tensor, U: torch.Tensor,
                           S: torch.Tensor,
                           z: torch.Tensor, dy: torch.Tensor, feature_map: bool, normalize: bool,
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(∂L/∂q, ∂L/∂k, ∂L/∂v, ∂L/∂β) of the chunked delta rule (Triton)."""
    return delta_rule_bwd_triton(q, k, v, beta, y, den, T, Wk, U, S, z, dy, feature_map, normalize)


@delta_rule_backward_op.register_fake
def _(q, k, v, beta, y, den, T, Wk, U, S, z, dy, feature_map, normalize):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), torch.empty_like(beta)


def _setup_context(ctx, inputs, output):
    q, k, v, beta, feature_map, normalize = inputs
    y, den, T, Wk, U, S, z = output
    ctx.mark_non_differentiable(den, T, Wk, U, S, z)
    ctx.save_for_backward(q, k, v, beta, y, den, T, Wk, U, S, z)
    ctx.flags = (feature_map, normalize)


def _backward(ctx, dy, *_scratch_grads):
    q, k, v, beta, y, den, T, Wk, U, S, z = ctx.saved_tensors
    dq, dk, dv, db = torch.ops.bkdsl.delta_rule_backward(q, k, v, beta, y, den, T, Wk, U, S, z, dy.contiguous(),
                                                         *ctx.flags)
    return dq, dk, dv, db, None, None


torch.library.register_autograd("bkdsl::delta_rule", _backward, setup_context=_setup_context)


def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, feature_map: bool = True,
               normalize: bool = True) -> torch.Tensor:
    """y ``[B, H, N, d_v]`` of the delta rule with φ = ELU + 1 (when ``feature_map``) and the normaliser
    (when ``normalize``); q, k ``[B, H, N, d_k]``, v ``[B, H, N, d_v]``, β ``[B, H, N]``."""
    if dispatch.use_triton(q, k, v, beta):
        return torch.ops.bkdsl.delta_rule(q, k, v, beta, feature_map, normalize)[0]
    return delta_rule_chunked(q, k, v, beta, feature_map, normalize, CHUNK)
