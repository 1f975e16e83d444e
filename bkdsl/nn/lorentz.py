r"""The Lorentz (hyperboloid) model and its isometry with the Poincaré ball, on geoopt.

The hyperboloid of geoopt's ``Lorentz(k)``:  ℍ_k = {x ∈ ℝ^{d+1} : ⟨x, x⟩_L = −k, x₀ > 0},
⟨x, y⟩_L = −x₀y₀ + Σ xᵢyᵢ, sectional curvature −1/k (source 001 §3 writes −x₀² + ‖x‖² = −1/c: c = 1/k).
The origin is o = (√k, 0, …, 0); the tangent space at o is {(0, v)}, identified with ℝ^d here, so the
bk-level maps change the last axis: ``expmap0`` takes v ∈ ℝ^d to a point in ℝ^{d+1}, ``logmap0`` back.

    exp_o((0, v)) = (√k cosh(‖v‖/√k), √k sinh(‖v‖/√k) v/‖v‖)              (geoopt ``expmap0``)
    log_o(x)      = (0, √k arcosh(x₀/√k) x_s/‖x_s‖)                          (geoopt ``logmap0``)
    d(x, y)       = √k arcosh(−⟨x, y⟩_L / k)                                 (geoopt ``dist``)
    P_{x→y}(v)    = v + ⟨y, v⟩_L / (k − ⟨x, y⟩_L) · (x + y)                  (geoopt ``transp``, ``transp0``)

The isometry onto the Poincaré ball of the same curvature, 𝔻_c with c = 1/k (radius √k):

    π(x)   = √k x_s / (x₀ + √k)
    π⁻¹(p) = (√k (1 + c‖p‖²), 2p) / (1 − c‖p‖²)

(geoopt's ``lorentz_to_poincare`` divides by x₀ + √k without the √k factor, which lands on the *unit*
ball for every k — an isometry only for k = 1 — so the map is written here, with a float64 test that
d_𝔻(π(x), π(y)) = d_ℍ(x, y).)

Möbius scalar multiplication on the ball (Ganea et al. 2018, eq. 24):  r ⊗_c x = exp₀(r log₀(x)) =
tanh(r artanh(√c‖x‖)) x / (√c‖x‖). Möbius linear:  y = exp₀(W log₀(x) + b) (on the ball or the
hyperboloid: the exp/log of the manifold the input lives on).

Why fp32 prefers the hyperboloid: a point at distance r from o has x₀ = √k cosh(r/√k), which float32
holds to 7 digits for any r < 88√k, while its ball image sits at 1 − ‖p‖/√k ≈ 2e^{−r/√k}, which
float32 cannot tell from the boundary beyond r ≈ 16√k (bench/hyperbolic_vae.py measures both).
"""

from __future__ import annotations

import functools
import math

import geoopt
import torch

from bkdsl.nn import poincare


@functools.lru_cache(maxsize=None)
def hyperboloid(k: float = 1.0) -> geoopt.Lorentz:
    """The geoopt manifold −x₀² + ‖x_s‖² = −k (cached per k). Its k is held in float64: geoopt stores it
    as a float32 tensor, so √k would carry a 1e-8 relative error into float64 results for k ≠ 1 (a 0-dim
    float64 k does not promote float32 inputs, which stay float32)."""
    return geoopt.Lorentz(k=k).double().requires_grad_(False)


def _lift(v: torch.Tensor) -> torch.Tensor:
    """v ∈ ℝ^d ↦ (0, v) ∈ T_oℍ."""
    return torch.cat([torch.zeros_like(v[..., :1]), v], dim=-1)


def expmap0(v: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """exp_o((0, v)): a tangent vector ℝ^d at the origin → a point of ℍ_k in ℝ^{d+1}."""
    return hyperboloid(k).expmap0(_lift(v))


def logmap0(x: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """log_o(x) without its zero time component: a point of ℍ_k → ℝ^d."""
    return hyperboloid(k).logmap0(x)[..., 1:]


def dist(x: torch.Tensor, y: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """d(x, y) = √k arcosh(−⟨x, y⟩_L / k) (geoopt; its arcosh is clamped at 1 + eps)."""
    return hyperboloid(k).dist(x, y)


def transp0(x: torch.Tensor, v: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """Parallel transport of (0, v) ∈ T_oℍ along the geodesic from o to x (geoopt ``transp0``), a vector
    of T_xℍ in ℝ^{d+1}; it preserves the Minkowski norm: ⟨P u, P u⟩_L = ‖v‖²."""
    return hyperboloid(k).transp0(x, _lift(v))


def transp(x: torch.Tensor, y: torch.Tensor, u: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """Parallel transport of u ∈ T_xℍ to T_yℍ along the geodesic (geoopt ``transp``)."""
    return hyperboloid(k).transp(x, y, u)


def minkowski_inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """⟨x, y⟩_L = −x₀y₀ + Σᵢ xᵢyᵢ."""
    return (x[..., 1:] * y[..., 1:]).sum(-1) - x[..., 0] * y[..., 0]


def to_poincare(x: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """π(x) = √k x_s / (x₀ + √k): ℍ_k → 𝔻_{1/k}, an isometry."""
    sk = math.sqrt(k)
    return sk * x[..., 1:] / (x[..., :1] + sk)


def from_poincare(p: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """π⁻¹(p) = (√k(1 + c‖p‖²), 2p) / (1 − c‖p‖²), c = 1/k: 𝔻_{1/k} → ℍ_k. The denominator is
    evaluated in float64 (1 − c‖p‖² near the boundary); the result is cast back."""
    c = 1.0 / k
    p64 = p.double()
    n2 = (p64 * p64).sum(-1, keepdim=True)
    den = 1.0 - c * n2
    out = torch.cat([math.sqrt(k) * (1.0 + c * n2), 2.0 * p64], dim=-1) / den
    return out.to(p.dtype)


def mobius_scalar_mul(x: torch.Tensor, r: torch.Tensor | float, c: float = 1.0) -> torch.Tensor:
    """r ⊗_c x = exp₀(r · log₀(x)) on the ball 𝔻_c (Ganea et al. 2018, eq. 24), through the guarded
    float64 exp₀/log₀ of :mod:`bkdsl.nn.poincare`."""
    return poincare.expmap0(r * poincare.logmap0(x, c=c), c=c)


def mobius_linear_ball(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, c: float = 1.0) -> torch.Tensor:
    """y = exp₀(W log₀(x) + b) on 𝔻_c."""
    t = torch.nn.functional.linear(poincare.logmap0(x, c=c), weight, bias)
    return poincare.expmap0(t, c=c)


def mobius_linear_lorentz(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, k: float = 1.0) -> torch.Tensor:
    """y = exp_o(W log_o(x) + b) on ℍ_k (tangent vectors in ℝ^d, points in ℝ^{d+1})."""
    return expmap0(torch.nn.functional.linear(logmap0(x, k), weight, bias), k)


class MobiusLinear(torch.nn.Module):
    """y = exp₀(W log₀(x) + b) on the ball (``model = "poincare"``, curvature −c) or the hyperboloid
    (``model = "lorentz"``, −x₀² + ‖x‖² = −k). W: [out, in] Euclidean, b: [out]."""

    def __init__(self, d_in: int, d_out: int, model: str, curvature: float, bias: bool = True):
        super().__init__()
        if model not in ("poincare", "lorentz"):
            raise ValueError(f"model must be poincare or lorentz, got {model!r}")
        self.model, self.curvature = model, curvature
        self.weight = torch.nn.Parameter(torch.randn(d_out, d_in) / math.sqrt(d_in))
        self.bias = torch.nn.Parameter(torch.zeros(d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.model == "poincare":
            return mobius_linear_ball(x, self.weight, self.bias, self.curvature)
        return mobius_linear_lorentz(x, self.weight, self.bias, self.curvature)


def stiefel_map(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x ↦ W x for W [n, p] with orthonormal columns (WᵀW = I): ℝ^p → ℝ^n, ‖W x‖ = ‖x‖
    (‖Wx‖² = xᵀWᵀWx = ‖x‖²). Batched: x [..., p] → x Wᵀ [..., n]."""
    return x @ w.transpose(-1, -2)
