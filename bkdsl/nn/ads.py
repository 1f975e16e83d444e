"""The AdS/CFT deep-learning network (source 003; Hashimoto, Sugishita, Tanaka, Tomiya,
Phys. Rev. D 98, 046019 (2018), arXiv:1802.08313; the Runge–Kutta layers of Hashimoto et al. 2024,
arXiv:2411.16052).

Physics. A scalar φ with potential V(φ) = λφ⁴/4 and mass m lives in a (d+1)-dimensional black-hole
bulk ds² = −f(η)dt² + dη² + g(η)dx²; η is the radial proper distance, the AdS boundary is at η → ∞
and the horizon at η = 0. For a static homogeneous φ(η) the equation of motion, with π = ∂_η φ, is

    ∂_η π + h(η) π − m² φ − λ φ³ = 0,      h(η) = ∂_η log √(f g^{d−1})

so the whole metric enters through the one function h(η). AdS–Schwarzschild has h = d coth(dη); every
non-extremal horizon has h ≈ 1/η as η → 0.

Network. Depth is the radial direction: the input is the boundary pair (φ, π) at η_ini, each layer
is one integrator step of the EOM towards the horizon (η decreasing), and the learnable weight of
layer n is the metric value h at the layer's midpoint. The output is the horizon residual at η_fin,

    F = 2π/η − m²φ − λφ³ |_{η_fin},

which vanishes for a solution that is regular at the horizon: near η = 0, h ≈ 1/η and a regular
π ≈ aη gives 2a = m²φ + λφ³.

Layer grid (issue 18, item 6). With layers of equal width (the paper's grid) a 20-layer network
cannot reproduce data made in the true metric: h ≈ 1/η changes by 40 % across the last layer, a
piecewise-constant h there is a poor model, and the fit absorbs the bias into h. The layer edges
are therefore geometric by default, η_n = η_ini (η_fin/η_ini)^{n/N} (``grid = "log"``): equal steps
in log η, fine where h varies as 1/η. Measured with the true h at the layer midpoints (asinh squared
error against a 2000-step RK4 solve, 2000 samples, :func:`true_metric_loss`, bench/ads_floor.py): 20 layers,
AdS–Schwarzschild d = 3: 6.0e-5 (equal widths) → 5.7e-6 (geometric); d = 4: 4.8e-4 → 1.3e-5. The
floor falls as N⁻⁴ (40 layers: 3e-7). ``grid = "uniform"`` keeps the paper's grid.

The data (:mod:`bkdsl.nn.ads_data`) and the fit with its validation rule (:mod:`bkdsl.nn.ads_fit`)
live beside this module. Any metric in :data:`METRICS` works: add one with :func:`register_metric`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

# ---------------------------------------------------------------------------------------------
# bulk metrics h(η)
# ---------------------------------------------------------------------------------------------
MetricFn = Callable[[torch.Tensor], torch.Tensor]
METRICS: dict[str, Callable[..., MetricFn]] = {}


def register_metric(name: str):
    def deco(factory):
        METRICS[name] = factory
        return factory
    return deco


def _check_dimension(d: int) -> None:
    if not isinstance(d, int) or isinstance(d, bool) or d < 2:
        raise ValueError(f"d (the boundary dimension) must be an integer ≥ 2, got {d!r}")


@register_metric("ads_schwarzschild")
def ads_schwarzschild(d: int = 3) -> MetricFn:
    """AdS_{d+1}–Schwarzschild black hole: h(η) = d coth(dη) (→ d at the boundary, ≈ 1/η at the horizon)."""
    _check_dimension(d)
    return lambda eta: d / torch.tanh(d * eta)


@register_metric("deformed_bh")
def deformed_bh(d: int = 3, a: float = -2.0, center: float = 0.5, width: float = 0.12) -> MetricFn:
    """A black hole with a localised deformation of the geometry between horizon and boundary
    (a "wall"): h = d coth(dη) + a exp(−(η − center)²/(2 width²)). Keeps both asymptotics."""
    _check_dimension(d)
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    return lambda eta: d / torch.tanh(d * eta) + a * torch.exp(-((eta - center) ** 2) / (2 * width ** 2))


@register_metric("horizon_series")
def horizon_series(coeffs: tuple[float, ...] = (0.0, 2.0, -0.5)) -> MetricFn:
    """A generic non-extremal horizon: h = 1/η + Σ_k c_k η^k (k = 0, 1, …)."""
    cs = tuple(float(c) for c in coeffs)
    if not all(math.isfinite(c) for c in cs):
        raise ValueError(f"coeffs must be finite numbers, got {coeffs!r}")
    return lambda eta: 1.0 / eta + sum(c * eta ** k for k, c in enumerate(cs))


@register_metric("reissner_nordstrom_ads")
def reissner_nordstrom_ads(d: int = 3, q: float = 1.0, table: int = 20000) -> MetricFn:
    """The charged (Reissner–Nordström) AdS_{d+1} black brane, horizon at r = 1 (L = 1):

        ds² = r²(−F dt² + dx²) + dr²/(r² F),   F(r) = 1 − (1 + q²) r^{−d} + q² r^{−2(d−1)}.

    Proper radial distance from the horizon η(r) = ∫₁^r dr'/(r'√F(r')); then f = r²F, g = r² and

        h = ∂_η log(r^d √F) = d√F + r F'(r)/(2√F),

    tabulated against η and interpolated linearly. The quadrature substitutes r = 1 + s², which makes
    the integrand 2s/(r√F) finite at the horizon (F ≈ F'(1) s²), and uses the trapezoid rule on
    ``table`` points in s ∈ [0, s_max] (s_max: η reaches 3). Non-extremal (T ∝ F'(1) = d − (d − 2)q² > 0)
    only: q² < d/(d − 2). q = 0 is AdS–Schwarzschild, h = d coth(dη) (tested)."""
    _check_dimension(d)
    q2 = float(q) ** 2
    if not math.isfinite(q2) or d - (d - 2) * q2 <= 0:
        raise ValueError(f"q = {q!r} is extremal or beyond (needs q² < d/(d − 2) = {d / max(d - 2, 1e-300):.4g})")
    if not (isinstance(table, int) and table >= 100):
        raise ValueError(f"table must be an integer ≥ 100, got {table!r}")
    s = torch.linspace(0.0, 1.0, table + 1, dtype=torch.float64) ** 2  # dense near the horizon
    s_max = 1.0
    while True:  # grow the range until η(s_max) ≥ 3 (well past the boundary cut-off η_ini)
        ss = s * s_max
        r = 1 + ss ** 2
        # F without the cancellation near r = 1 (1 − (1 + q²) + q² = 0): with L = log r,
        # F = −(1 + q²) expm1(−dL) + q² expm1(−2(d − 1)L)
        L = torch.log1p(ss ** 2)
        F = -(1 + q2) * torch.expm1(-d * L) + q2 * torch.expm1(-2 * (d - 1) * L)
        # 2s/(r√F) with F/s² finite at s = 0: F'(1) = d − (d − 2) q²
        F_over_s2 = torch.where(ss > 0, F / ss.clamp_min(1e-150) ** 2, torch.full_like(ss, d - (d - 2) * q2))
        integrand = 2 / (r * F_over_s2.sqrt())
        eta = torch.cat([torch.zeros(1, dtype=torch.float64),
                         torch.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * (ss[1:] - ss[:-1]), 0)])
        if eta[-1] >= 3.0:
            break
        s_max *= 2
    Fp = d * (1 + q2) * r ** (-d - 1) - 2 * (d - 1) * q2 * r ** (-2 * d + 1)
    h = torch.where(ss > 0, d * F.clamp_min(0).sqrt() + r * Fp / (2 * F.clamp_min(1e-300).sqrt()),
                    torch.full_like(ss, math.inf))
    eta_t, h_t = eta[1:], h[1:]

    def h_of_eta(x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        i = torch.searchsorted(eta_t, x.clamp(float(eta_t[0]), float(eta_t[-1]))).clamp(1, len(eta_t) - 1)
        e0, e1 = eta_t[i - 1], eta_t[i]
        w = (x - e0) / (e1 - e0)
        return h_t[i - 1] * (1 - w) + h_t[i] * w

    return h_of_eta


def metric(name: str, **params) -> MetricFn:
    if name not in METRICS:
        raise ValueError(f"unknown bulk metric {name!r}; known: {', '.join(sorted(METRICS))}")
    return METRICS[name](**params)


# ---------------------------------------------------------------------------------------------
# the bulk equation of motion and its integrator steps
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bulk:
    """The scalar's parameters and the radial range. Defaults as in the paper: m² = −1, λ = 1,
    η from 1 (near the boundary) to 0.1 (near the horizon)."""

    m2: float = -1.0
    lam: float = 1.0
    eta_ini: float = 1.0
    eta_fin: float = 0.1


def eom(phi, pi, h, m2, lam):
    """(∂_η φ, ∂_η π) = (π, −hπ + m²φ + λφ³)."""
    return pi, -h * pi + m2 * phi + lam * phi ** 3


def euler_layer(phi, pi, h0, h1, deta, m2, lam):
    """The 2018 paper's layer: φ ← φ + Δη π, π ← π + Δη(−h(η_n)π + m²φ + λφ³)."""
    dphi, dpi = eom(phi, pi, h0, m2, lam)
    return phi + deta * dphi, pi + deta * dpi


def rk4_layer(phi, pi, h0, h1, deta, m2, lam):
    """The 2024 paper's Runge–Kutta layer; h at the half step is the mean of the two end values."""
    hm = 0.5 * (h0 + h1)
    k1 = eom(phi, pi, h0, m2, lam)
    k2 = eom(phi + 0.5 * deta * k1[0], pi + 0.5 * deta * k1[1], hm, m2, lam)
    k3 = eom(phi + 0.5 * deta * k2[0], pi + 0.5 * deta * k2[1], hm, m2, lam)
    k4 = eom(phi + deta * k3[0], pi + deta * k3[1], h1, m2, lam)
    return (phi + deta / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]),
            pi + deta / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]))


LAYERS = {"euler": euler_layer, "rk4": rk4_layer}
GRIDS = ("log", "uniform")


def horizon_residual(phi, pi, eta, m2, lam):
    """F = 2π/η − m²φ − λφ³: zero for a solution regular at the horizon."""
    return 2 * pi / eta - m2 * phi - lam * phi ** 3


def regular_momentum(phi, eta, m2, lam, F=0.0):
    """The π at η that makes the horizon residual equal F: π = η(F + m²φ + λφ³)/2 (F = 0: regular)."""
    return eta * (F + m2 * phi + lam * phi ** 3) / 2


def integrate_true(h: MetricFn, phi0, pi0, bulk: Bulk, steps: int = 2000):
    """Fine RK4 of the EOM in the true metric from η_ini to η_fin (the data generator's solver; h is
    evaluated exactly at every stage). η_fin > η_ini integrates outward."""
    etas = torch.linspace(bulk.eta_ini, bulk.eta_fin, steps + 1, dtype=torch.float64)
    deta = (bulk.eta_fin - bulk.eta_ini) / steps
    hs = h(etas)
    hm = h(0.5 * (etas[1:] + etas[:-1]))
    phi, pi = phi0, pi0
    for n in range(steps):
        k1 = eom(phi, pi, hs[n], bulk.m2, bulk.lam)
        k2 = eom(phi + 0.5 * deta * k1[0], pi + 0.5 * deta * k1[1], hm[n], bulk.m2, bulk.lam)
        k3 = eom(phi + 0.5 * deta * k2[0], pi + 0.5 * deta * k2[1], hm[n], bulk.m2, bulk.lam)
        k4 = eom(phi + deta * k3[0], pi + deta * k3[1], hs[n + 1], bulk.m2, bulk.lam)
        phi = phi + deta / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        pi = pi + deta / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return phi, pi


def layer_edges(bulk: Bulk, layers: int, grid: str = "log") -> torch.Tensor:
    """The N + 1 layer edges from η_ini to η_fin: geometric (``"log"``, η_n = η_ini (η_fin/η_ini)^{n/N})
    or equally spaced (``"uniform"``, the paper's grid)."""
    if grid == "log":
        return torch.exp(torch.linspace(math.log(bulk.eta_ini), math.log(bulk.eta_fin), layers + 1,
                                        dtype=torch.float64))
    if grid == "uniform":
        return torch.linspace(bulk.eta_ini, bulk.eta_fin, layers + 1, dtype=torch.float64)
    raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")


def layer_midpoints(bulk: Bulk, layers: int, grid: str = "log") -> torch.Tensor:
    """Where the layers' weights sit: the midpoints (η_n + η_{n+1})/2 of :func:`layer_edges`."""
    e = layer_edges(bulk, layers, grid)
    return 0.5 * (e[1:] + e[:-1])


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
class AdSNetwork(nn.Module):
    """Boundary (φ, π) ``[B, 2]`` → horizon residual F ``[B]``.

    Layer n integrates the EOM over [η_{n+1}, η_n] (towards the horizon) with ``substeps`` steps of
    ``layer`` (``"rk4"``, 2024, default; ``"euler"``, 2018) in which the metric is the layer's weight
    ``h[n]`` — the value of h at the layer's midpoint η_mid[n] (as in the paper, one weight per
    layer; the midpoint makes a piecewise-constant h a second-order approximation and gives every
    weight the same footing). ``grid``: the layer edges, :func:`layer_edges`.
    ``init``: the constant every weight starts from (no knowledge of the answer).
    ``learn_m2_lambda`` also fits m² and λ, as the paper does for experimental data."""

    def __init__(self, layers: int = 20, layer: str = "rk4", bulk: Bulk = Bulk(), init: float = 1.0,
                 learn_m2_lambda: bool = False, grid: str = "log", substeps: int = 1):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {tuple(LAYERS)}, got {layer!r}")
        if not (isinstance(layers, int) and layers >= 1 and isinstance(substeps, int) and substeps >= 1):
            raise ValueError(f"layers and substeps must be positive integers, got {layers!r}, {substeps!r}")
        self.n, self.layer, self.bulk, self.grid, self.substeps = layers, layer, bulk, grid, substeps
        edges = layer_edges(bulk, layers, grid)
        self.register_buffer("edges", edges)
        self.register_buffer("eta", 0.5 * (edges[1:] + edges[:-1]))  # the layers' midpoints
        self._steps = [float(edges[n + 1] - edges[n]) / substeps for n in range(layers)]
        self.h = nn.Parameter(torch.full((layers,), float(init), dtype=torch.float64))
        if learn_m2_lambda:
            self.m2 = nn.Parameter(torch.tensor(bulk.m2, dtype=torch.float64))
            self.lam = nn.Parameter(torch.tensor(bulk.lam, dtype=torch.float64))
        else:
            self.m2, self.lam = bulk.m2, bulk.lam

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.h.dtype)
        phi, pi = x[..., 0], x[..., 1]
        step = LAYERS[self.layer]
        for n, deta in enumerate(self._steps):
            for _ in range(self.substeps):
                phi, pi = step(phi, pi, self.h[n], self.h[n], deta, self.m2, self.lam)
        return horizon_residual(phi, pi, self.bulk.eta_fin, self.m2, self.lam)

    def smoothness(self) -> torch.Tensor:
        """Σ η_n⁴ (h_{n+1} − h_n)² (the paper's regulariser): lets h vary near the horizon (small η),
        keeps it smooth elsewhere."""
        return (self.eta[:-1] ** 4 * (self.h[1:] - self.h[:-1]) ** 2).sum()


def horizon_probability(F: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """The classification read-out of the horizon mode: ≈ 0 for |F| ≪ ε, → 1 for |F| ≫ ε
    (a smooth step tanh((|F|/ε)²), differentiable at F = 0)."""
    return torch.tanh((F / eps) ** 2)


def asinh_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean (asinh F − asinh F_true)²: F spans four decades (π grows like 1/η towards the horizon for
    irregular data), and asinh is linear near 0 and logarithmic in the tails, so regular and
    strongly irregular samples both count."""
    return (torch.asinh(pred) - torch.asinh(target)).pow(2).mean()


def relative_rms(h_learned: torch.Tensor, h_true: torch.Tensor) -> float:
    """RMS(h_learned − h_true) / RMS(h_true); NaN if either holds a non-finite value (never a pass)."""
    if not (torch.isfinite(h_learned).all() and torch.isfinite(h_true).all()) or h_true.numel() == 0:
        return math.nan
    return float(((h_learned - h_true) ** 2).mean().sqrt() / (h_true ** 2).mean().sqrt())


def true_metric_loss(h_true: MetricFn, x: torch.Tensor, F: torch.Tensor, layers: int = 20, layer: str = "rk4",
                     bulk: Bulk = Bulk(), grid: str = "log", substeps: int = 1) -> float:
    """The data's own discretisation floor: asinh squared error of a network whose weights are the true
    h at its layer midpoints. A fit whose loss is far below it has absorbed discretisation bias into h."""
    net = AdSNetwork(layers, layer, bulk, grid=grid, substeps=substeps)
    with torch.no_grad():
        net.h.copy_(h_true(net.eta))
        return float(asinh_mse(net(x), F))
