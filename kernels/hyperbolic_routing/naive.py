r"""Hyperbolic routing, the reference: Poincaré distances tokens → centroids, gate exp(−d), top-k, and the
closed-form backward. The specification of the Triton kernels beside it (:mod:`.kernel`).

On the Poincaré ball of curvature −c, with s = ‖x − μ‖², α = 1 − c‖x‖², β = 1 − c‖μ‖²:

    t = c s / (α β),      d_c(x, μ) = (2/√c) asinh √t

(the form of :func:`bkdsl.nn.poincare.dist`, written out here in float64 so that this module imports
nothing of bkdsl's layers above the kernels; a test checks the two agree). Plain PyTorch.
"""

from __future__ import annotations

import math

import torch

from bkdsl.diagnostics import BkError

__all__ = ["hyperbolic_route_reference", "route_backward", "check_route", "poincare_dist64"]

# Inputs are pulled inside the float64 bound before the distance, as bkdsl.nn.poincare does
# (BOUNDARY_EPS[float64] there): 1 − ‖x‖² ≥ 2e-12 keeps every denominator positive.
_BOUNDARY_EPS64 = 1e-12


def check_route(x: torch.Tensor, mu: torch.Tensor, k: int) -> None:
    """Tokens [T, D], centroids [E, D] of one D, 1 ≤ k ≤ E; coded diagnostics otherwise."""
    if x.dim() != 2 or mu.dim() != 2 or x.shape[1] != mu.shape[1]:
        raise BkError("E0401", f"hyperbolic_route expects tokens [T, D] and centroids [E, D], got "
                               f"{list(x.shape)} and {list(mu.shape)}")
    if not 1 <= k <= mu.shape[0]:
        raise BkError("E0201", f"top_k = {k} must lie in 1..{mu.shape[0]} (the number of experts)")


def _guard64(x: torch.Tensor, c: float) -> torch.Tensor:
    """x in float64, rows with ‖x‖ > (1 − ε)/√c scaled back onto that radius (ε = 1e-12)."""
    x64 = x.to(torch.float64)
    norm = torch.linalg.vector_norm(x64, dim=-1, keepdim=True)
    limit = (1.0 - _BOUNDARY_EPS64) / c ** 0.5
    return torch.where(norm > limit, x64 * (limit / norm.clamp_min(limit)), x64)


def _conformal64(x64: torch.Tensor, c: float) -> torch.Tensor:
    """1 − c‖x‖² in float64 (the norm upcast before squaring: no digit lost near the boundary)."""
    return 1.0 - c * torch.linalg.vector_norm(x64, dim=-1) ** 2


def poincare_dist64(x: torch.Tensor, y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """d_c(x, y) = (2/√c) asinh √t in float64, broadcasting; ‖x − y‖² from the difference (no
    cancellation for close points); subgradient 0 at x = y (the double ``where``), not 0·∞."""
    x64, y64 = _guard64(x, c), _guard64(y, c)
    t = c * ((x64 - y64) ** 2).sum(-1) / (_conformal64(x64, c) * _conformal64(y64, c))
    pos = t > 0
    root = torch.where(pos, torch.where(pos, t, torch.ones_like(t)).sqrt(), torch.zeros_like(t))
    return 2.0 / c ** 0.5 * torch.asinh(root)


def hyperbolic_route_reference(x: torch.Tensor, mu: torch.Tensor, k: int, c: float = 1.0
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance), each [T, k], nearest first: the specification of the kernel.

    All T×E distances by :func:`poincare_dist64` (difference then square, in float64), the k smallest
    by ``torch.topk``, gate = exp(−d). Differentiable w.r.t. x and μ by autograd.
    """
    check_route(x, mu, k)
    d_all = poincare_dist64(x[:, None, :], mu[None, :, :], c).to(torch.promote_types(x.dtype, mu.dtype))
    d, idx = torch.topk(d_all, k, dim=1, largest=False, sorted=True)
    return torch.exp(-d), idx, d


def route_backward(x: torch.Tensor, mu: torch.Tensor, idx: torch.Tensor, grad_gate: torch.Tensor | None,
                   grad_dist: torch.Tensor | None, c: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(∂L/∂x, ∂L/∂μ) of the selected gates and distances, in closed form (float64 inside).

    With s = ‖x − μ‖², α = 1 − c‖x‖², β = 1 − c‖μ‖², t = c s/(αβ), d = (2/√c) asinh √t:

        ∂d/∂x =  2 (x − μ) / (√s √(αβ) √(1+t)) + (2√c/α) √(t/(1+t)) x
        ∂d/∂μ = −2 (x − μ) / (√s √(αβ) √(1+t)) + (2√c/β) √(t/(1+t)) μ

    and ∂L/∂d = grad_dist − e^{−d} grad_gate. At x = μ (s = 0) the first term takes its subgradient 0.
    The selection (``idx``) is piecewise constant and carries no gradient.
    """
    x64, mu64 = x.to(torch.float64), mu.to(torch.float64)
    m = mu64[idx]                                   # [T, k, D]
    diff = x64[:, None, :] - m
    s = (diff * diff).sum(-1)
    alpha = _conformal64(x64, c)[:, None]
    beta = _conformal64(m, c)
    t = c * s / (alpha * beta)
    d = 2.0 / math.sqrt(c) * torch.asinh(t.sqrt())
    gd = torch.zeros_like(d)
    if grad_dist is not None:
        gd = gd + grad_dist.to(torch.float64)
    if grad_gate is not None:
        gd = gd - torch.exp(-d) * grad_gate.to(torch.float64)
    pos = s > 0
    a_coef = torch.where(pos, 2.0 / (torch.where(pos, s, 1.0).sqrt() * (alpha * beta).sqrt()
                                     * (1.0 + t).sqrt()), 0.0)
    r = (t / (1.0 + t)).sqrt() * 2.0 * math.sqrt(c)
    common = (gd * a_coef)[..., None] * diff         # [T, k, D]
    grad_x = common.sum(1) + (gd * r / alpha).sum(1)[:, None] * x64
    contrib = -common + (gd * r / beta)[..., None] * m
    grad_mu = torch.zeros_like(mu64).index_add_(0, idx.reshape(-1), contrib.reshape(-1, mu.shape[1]))
    return grad_x.to(x.dtype), grad_mu.to(mu.dtype)
