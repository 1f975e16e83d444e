r"""Poincaré-ball operations that stay finite in float32 up to ‖x‖ = 1 − 10⁻⁶.

The ball of curvature −c is 𝔻_c = {x : c‖x‖² < 1} with conformal factor λ_x = 2 / (1 − c‖x‖²). The
maps come from geoopt's :class:`geoopt.PoincareBall` (Ganea et al. 2018, "Hyperbolic Neural
Networks"):

    exp₀(u)      = tanh(√c‖u‖) u / (√c‖u‖)
    log₀(y)      = artanh(√c‖y‖) y / (√c‖y‖)
    x ⊕ y        = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)
    M ⊗ x        = tanh(‖Mx‖/‖x‖ · artanh(√c‖x‖)) Mx / (√c‖Mx‖)

and the distance is computed in the form that keeps its digits near the boundary and between close
points (the arccosh form rewritten with arccosh(1 + 2t) = 2 asinh(√t)):

    d_c(x, y) = (2/√c) · asinh( √( c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²)) ) ).

Why not geoopt's float32 path as is. In float32 the stored norm of a point at ‖x‖ = 1 − 10⁻⁶ is
only 8 ulps from 1, so 1 − ‖x‖² carries a few % error, tanh(15) (geoopt's clamp) rounds to exactly 1
(a point *on* the boundary, then Inf/NaN downstream), and geoopt's ``dist`` goes through
artanh(‖(−x) ⊕ y‖) whose argument geoopt clamps at 1 − 10⁻⁷, so distances between far boundary points
saturate near 16.6 instead of reaching ~29. Here every op therefore

1. upcasts float32/float16/bfloat16 inputs to float64 (the norms and 1 − c‖x‖² are then exact to
   ~1e-16; the result is cast back to the input's dtype), and
2. pulls points inside the ball: inputs with the float64 bound (a guard that only moves points on or
   outside the sphere, since the arithmetic is float64), results with the bound of their own dtype
   (``BOUNDARY_EPS`` below), so that rounding the result cannot put it on the sphere.

Gradients flow through both steps (the cast is linear; ``project`` is the identity inside the ball).
"""

from __future__ import annotations

import functools

import geoopt
import torch

__all__ = ["BOUNDARY_EPS", "ball", "max_norm", "project", "expmap0", "logmap0", "mobius_add",
           "mobius_matvec", "dist", "dist_sq_stable", "conformal_denominator"]

#: How far inside the unit sphere (in units of the ball's radius 1/√c) points are kept, per dtype.
#: float32: 1e-6 is the stability target of this module — 1 − ‖x‖² ≥ 2e-6 (17 ulps of 1) stays
#: positive after a float32 point's coordinates are rounded (each moves the norm by ≤ 6e-8), and
#: λ_x ≤ 1e6, so gradients (∝ λ_x) stay far below float32's range. float64: 1e-12 keeps 1 − ‖x‖² ≥
#: 2e-12, 9000 ulps of 1, and λ_x² ≤ 2.5e23 (gradients of log₀ and d) inside float64's range. The
#: 16-bit types share float32's bound (their results are computed in float64 and rounded once).
BOUNDARY_EPS: dict[torch.dtype, float] = {
    torch.float64: 1e-12,
    torch.float32: 1e-6,
    torch.float16: 1e-3,   # float16 has 11 bits: 1 − 1e-3 is the last value it tells apart from 1
    torch.bfloat16: 1e-2,  # bfloat16 has 8 bits: 1 − 1e-2 likewise
}


@functools.lru_cache(maxsize=None)
def ball(c: float = 1.0) -> geoopt.PoincareBall:
    """The geoopt manifold for curvature −c (cached: one module per curvature)."""
    return geoopt.PoincareBall(c=c)


def max_norm(dtype: torch.dtype, c: float = 1.0) -> float:
    """(1 − ε)/√c, the largest Euclidean norm :func:`project` lets through for ``dtype``."""
    return (1.0 - BOUNDARY_EPS.get(dtype, 1e-6)) / c ** 0.5


def _wide(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.to(torch.float64)


def _project64(x64: torch.Tensor, dtype: torch.dtype, c: float) -> torch.Tensor:
    """Scale rows of a float64 tensor with ‖x‖ > max_norm(dtype) back onto that radius."""
    norm = torch.linalg.vector_norm(x64, dim=-1, keepdim=True)
    limit = max_norm(dtype, c)
    # where() keeps the gradient of points inside exactly the identity; the clamp only avoids 0/0
    # in the branch that where() discards (norm = 0 is inside the ball).
    return torch.where(norm > limit, x64 * (limit / norm.clamp_min(limit)), x64)


def project(x: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Pull points with ‖x‖ > (1 − ε)/√c radially onto that sphere (ε = ``BOUNDARY_EPS[dtype]``)."""
    return _project64(_wide(x), x.dtype, c).to(x.dtype)


def _guard(x: torch.Tensor, c: float) -> torch.Tensor:
    """An input in float64, pulled inside the float64 bound (moves only points on/outside the sphere)."""
    return _project64(_wide(x), torch.float64, c)


def conformal_denominator(x: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """1 − c‖x‖² in float64 (the norm is upcast before squaring, so no digit is lost near 1)."""
    return 1.0 - c * torch.linalg.vector_norm(_wide(x), dim=-1) ** 2


def expmap0(u: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """exp₀(u): a tangent vector at the origin to the ball; result kept at ‖·‖ ≤ max_norm."""
    y = ball(c).expmap0(_wide(u), project=False)
    return _project64(y, u.dtype, c).to(u.dtype)


def logmap0(y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """log₀(y): a point of the ball to the tangent space at the origin."""
    return ball(c).logmap0(_guard(y, c)).to(y.dtype)


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """x ⊕ y (Möbius addition); inputs and result kept at ‖·‖ ≤ max_norm."""
    dt = torch.promote_types(x.dtype, y.dtype)
    r = ball(c).mobius_add(_guard(x, c), _guard(y, c), project=False)
    return _project64(r, dt, c).to(dt)


def mobius_matvec(m: torch.Tensor, x: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """M ⊗ x = exp₀(M log₀ x) (Möbius matrix-vector product), m: [out, in], x: [..., in]."""
    dt = torch.promote_types(m.dtype, x.dtype)
    r = ball(c).mobius_matvec(_wide(m), _guard(x, c), project=False)
    return _project64(r, dt, c).to(dt)


def dist_sq_stable(x: torch.Tensor, y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """t = c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²)) in float64, broadcasting over leading dims.

    ‖x − y‖² is formed from the difference (not ‖x‖² + ‖y‖² − 2⟨x,y⟩, which cancels for close
    points); the denominators come from :func:`conformal_denominator`.
    """
    x64, y64 = _guard(x, c), _guard(y, c)
    diff2 = ((x64 - y64) ** 2).sum(-1)
    return c * diff2 / (conformal_denominator(x64, c) * conformal_denominator(y64, c))


def dist(x: torch.Tensor, y: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Poincaré distance d_c(x, y) = (2/√c) asinh(√t), t from :func:`dist_sq_stable`.

    The square root's gradient is infinite at t = 0 (x = y, where d has a cusp); the double
    ``where`` gives that point the subgradient 0 instead of 0·∞ = NaN.
    """
    dt = torch.promote_types(x.dtype, y.dtype)
    t = dist_sq_stable(x, y, c)
    pos = t > 0
    root = torch.where(pos, torch.where(pos, t, torch.ones_like(t)).sqrt(), torch.zeros_like(t))
    return (2.0 / c ** 0.5 * torch.asinh(root)).to(dt)
