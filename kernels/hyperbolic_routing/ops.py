"""The routing kernels as the torch custom op ``torch.ops.bkdsl.hyperbolic_route(x, mu, k, c) -> (gate,
index, distance)``, with a fake implementation and an autograd formula (the Triton backward pair).

The op is the Triton path, nothing else: :func:`bkdsl.kernels.hyperbolic_routing.hyperbolic_route`
decides once per call whether it runs (CUDA, float32, at most ``MAX_EXPERTS`` experts) or the reference
does. On CPU tensors the op needs ``TRITON_INTERPRET=1`` (the tests).
"""

from __future__ import annotations

import torch

from bkdsl.kernels.hyperbolic_routing.kernel import MAX_EXPERTS, hyperbolic_route_triton, route_backward_triton

__all__ = ["hyperbolic_route_op", "MAX_EXPERTS"]


@torch.library.custom_op("bkdsl::hyperbolic_route", mutates_args=())
def hyperbolic_route_op(x: torch.Tensor, mu: torch.Tensor, k: int, c: float
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance) of the k nearest centroids by the fused kernel."""
    return hyperbolic_route_triton(x, mu, k, c)


@hyperbolic_route_op.register_fake
def _(x, mu, k, c):
    T = x.shape[0]
    return (x.new_empty(T, k), x.new_empty(T, k, dtype=torch.int64), x.new_empty(T, k))


def _setup_context(ctx, inputs, output):
    x, mu, k, c = inputs
    _, idx, _ = output
    ctx.save_for_backward(x, mu, idx)
    ctx.c = c
    ctx.mark_non_differentiable(idx)
    # no zero-filled [T, k] int64 gradient for the index, nor zeros for an unused gate or distance:
    # the backward takes None for either (HAS_GGATE / HAS_GDIST)
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_gate, grad_idx, grad_dist):
    x, mu, idx = ctx.saved_tensors
    grad_x, grad_mu = route_backward_triton(x, mu, idx, grad_gate, grad_dist, ctx.c)
    return grad_x, grad_mu, None, None


torch.library.register_autograd("bkdsl::hyperbolic_route", _backward, setup_context=_setup_context)
