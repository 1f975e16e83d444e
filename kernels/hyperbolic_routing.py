r"""Fused hyperbolic routing: Poincaré distances tokens → centroids, gate exp(−d), top-k, one kernel.

Specification: :func:`bkdsl.nn.hyperbolic_moe.hyperbolic_route_reference`. Registered as
``torch.ops.bkdsl.hyperbolic_route(x, mu, k, c) -> (gate, index, distance)``, each [T, k], nearest
first, with a fake implementation and an autograd formula
(:func:`bkdsl.nn.hyperbolic_moe.route_backward`, closed form, float64 inside).

One program owns ``BLOCK_T`` tokens and all E ≤ 256 centroids (padded to a power of two):

1. **Select.** t_e ∝ ‖x − μ_e‖² / (1 − c‖μ_e‖²) for every expert, with ‖x − μ‖² taken in the
   one-matmul form ‖x‖² + ‖μ‖² − 2 x·μ (``tl.dot`` over D tiles, fp32 accumulate, ``tf32x3`` by
   default: fp32-accurate products on the tensor cores). The k smallest are picked by k rounds of
   argmin. This form cancels digits when x ≈ μ (absolute error ~ 2⁻²³(‖x‖² + ‖μ‖²)); it only decides
   which experts are selected, and two experts whose keys differ by less than that error are a tie
   either way.
2. **Measure.** For the k selected experts the distance is recomputed in the accurate form: the
   difference x − μ then its square, tiled over D, fp32 (no cancellation); 1 − c‖x‖² from a float64
   sum of squares of the fp32 coordinates (exact to ~1e-16, so its digits survive ‖x‖ = 1 − 1e-6);
   1 − c‖μ‖² likewise, computed once per call on the host in float64; then
   d = (2/√c) asinh(√t), t = c‖x − μ‖² / ((1 − c‖x‖²)(1 − c‖μ‖²)), with
   asinh(r) = log1p(r + r²/(1 + √(1 + r²))) and log1p(u) = log(w)·u/(w − 1), w = 1 + u (Goldberg's
   trick: full relative precision for tiny u, where log(1 + u) would lose it).

Bytes: x is read twice (the second read mostly from L2); centroids (E·D·4 bytes) stay in L2.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from bkdsl.diagnostics import BkError
from bkdsl.kernels import dispatch
from bkdsl.nn.hyperbolic_moe import hyperbolic_route_reference, route_backward
from bkdsl.nn.poincare import conformal_denominator

__all__ = ["hyperbolic_route_triton", "MAX_EXPERTS"]

MAX_EXPERTS = 256
BLOCK_T = 64
BLOCK_D = 32
NUM_WARPS = 4


@triton.jit
def _log1p(u):
    """log(1 + u) to full relative precision for small u ≥ 0 (Goldberg 1991, Theorem 4)."""
    w = 1.0 + u
    return tl.where(w == 1.0, u, tl.log(w) * (u / tl.where(w == 1.0, 1.0, w - 1.0)))


@triton.jit
def _route_kernel(x_ptr, mu_ptr, beta_ptr, gate_ptr, idx_ptr, dist_ptr, T, E, D, c, two_over_sqrt_c,
                  K: tl.constexpr, KP: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr,
                  BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    tok = pid * BLOCK_T + tl.arange(0, BLOCK_T)
    exp_ = tl.arange(0, BLOCK_E)
    t_live = tok < T
    e_live = exp_ < E
    row_x = tok.to(tl.int64) * D

    # 1. select: one-matmul squared distances, scaled by 1/(1 − c‖μ‖²)
    dot = tl.zeros([BLOCK_T, BLOCK_E], tl.float32)
    xsq = tl.zeros([BLOCK_T], tl.float32)
    musq = tl.zeros([BLOCK_E], tl.float32)
    for d0 in range(0, D, BLOCK_D):
        col = d0 + tl.arange(0, BLOCK_D)
        c_live = col < D
        xt = tl.load(x_ptr + row_x[:, None] + col[None, :], mask=t_live[:, None] & c_live[None, :], other=0.0)
        mt = tl.load(mu_ptr + exp_[:, None] * D + col[None, :], mask=e_live[:, None] & c_live[None, :],
                     other=0.0)
        dot = tl.dot(xt, tl.trans(mt), dot, input_precision=PRECISION)
        xsq += tl.sum(xt * xt, axis=1)
        musq += tl.sum(mt * mt, axis=1)
    beta = tl.load(beta_ptr + exp_, mask=e_live, other=1.0)
    s_fast = tl.maximum(xsq[:, None] + musq[None, :] - 2.0 * dot, 0.0)
    key = tl.where(e_live[None, :], s_fast / beta[None, :], float("inf"))
    slot = tl.arange(0, KP)
    sel = tl.zeros([BLOCK_T, KP], tl.int32)
    for j in tl.static_range(K):
        best = tl.argmin(key, axis=1)
        sel = tl.where(slot[None, :] == j, best[:, None], sel)
        key = tl.where(exp_[None, :] == best[:, None], float("inf"), key)

    # 2. measure: ‖x − μ‖² by difference for the selected experts; 1 − c‖x‖² in float64
    s = tl.zeros([BLOCK_T, KP], tl.float32)
    xsq64 = tl.zeros([BLOCK_T], tl.float64)
    for d0 in range(0, D, BLOCK_D):
        col = d0 + tl.arange(0, BLOCK_D)
        c_live = col < D
        xt = tl.load(x_ptr + row_x[:, None] + col[None, :], mask=t_live[:, None] & c_live[None, :], other=0.0)
        x64 = xt.to(tl.float64)
        xsq64 += tl.sum(x64 * x64, axis=1)
        mg = tl.load(mu_ptr + sel[:, :, None] * D + col[None, None, :],
                     mask=t_live[:, None, None] & c_live[None, None, :], other=0.0)
        diff = xt[:, None, :] - mg
        s += tl.sum(diff * diff, axis=2)
    alpha = (1.0 - c * xsq64).to(tl.float32)
    beta_sel = tl.load(beta_ptr + sel)
    t = c * s / (alpha[:, None] * beta_sel)
    r = tl.sqrt(t)
    dist = two_over_sqrt_c * _log1p(r + t / (1.0 + tl.sqrt(1.0 + t)))
    gate = tl.exp(-dist)
    out = tok.to(tl.int64)[:, None] * K + slot[None, :]
    o_live = t_live[:, None] & (slot[None, :] < K)
    tl.store(dist_ptr + out, dist, mask=o_live)
    tl.store(gate_ptr + out, gate, mask=o_live)
    tl.store(idx_ptr + out, sel.to(tl.int64), mask=o_live)


def _check(x: torch.Tensor, mu: torch.Tensor, k: int) -> None:
    if x.dtype != torch.float32 or mu.dtype != torch.float32:
        raise BkError("E0403", f"the routing kernel takes float32 tokens and centroids, got {x.dtype} and "
                               f"{mu.dtype}", help="use the reference (BKDSL_KERNELS=reference) for float64")
    if mu.shape[0] > MAX_EXPERTS:
        raise BkError("E0201", f"the routing kernel holds at most {MAX_EXPERTS} experts per program, got "
                               f"{mu.shape[0]}")


def hyperbolic_route_triton(x: torch.Tensor, mu: torch.Tensor, k: int, c: float = 1.0,
                            block_t: int = BLOCK_T, block_d: int = BLOCK_D, num_warps: int = NUM_WARPS,
                            precision: str = "tf32x3"
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance) [T, k] by the fused kernel (no autograd; see the custom op)."""
    _check(x, mu, k)
    x, mu = x.contiguous(), mu.contiguous()
    T, D = x.shape
    E = mu.shape[0]
    # 1 − c‖μ‖² once per call, float64 → float32 (E numbers)
    beta = conformal_denominator(mu, c).to(torch.float32).contiguous()
    gate = torch.empty(T, k, dtype=x.dtype, device=x.device)
    dist = torch.empty_like(gate)
    idx = torch.empty(T, k, dtype=torch.int64, device=x.device)
    block_e = max(16, triton.next_power_of_2(E))
    grid = (triton.cdiv(T, block_t),)
    if dispatch.interpreting():
        precision = "ieee"  # the interpreter computes the dot in numpy float32 whatever the mode
    _route_kernel[grid](x, mu, beta, gate, idx, dist, T, E, D, float(c), 2.0 / math.sqrt(c),
                        K=k, KP=triton.next_power_of_2(k), BLOCK_T=block_t, BLOCK_E=block_e,
                        BLOCK_D=block_d, PRECISION=precision, num_warps=num_warps)
    return gate, idx, dist


# --- torch.library registration -------------------------------------------------------------------

@torch.library.custom_op("bkdsl::hyperbolic_route", mutates_args=())
def hyperbolic_route_op(x: torch.Tensor, mu: torch.Tensor, k: int, c: float
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance) of the k nearest centroids; Triton where the dispatcher says so."""
    if dispatch.use_triton(x, mu) and x.dtype == torch.float32 and mu.dtype == torch.float32 \
            and mu.shape[0] <= MAX_EXPERTS:
        return hyperbolic_route_triton(x, mu, k, c)
    with torch.no_grad():
        gate, idx, dist = hyperbolic_route_reference(x, mu, k, c)
    return gate.contiguous(), idx.contiguous(), dist.contiguous()


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


def _backward(ctx, grad_gate, grad_idx, grad_dist):
    x, mu, idx = ctx.saved_tensors
    grad_x, grad_mu = route_backward(x, mu, idx, grad_gate, grad_dist, ctx.c)
    return grad_x, grad_mu, None, None


torch.library.register_autograd("bkdsl::hyperbolic_route", _backward, setup_context=_setup_context)
