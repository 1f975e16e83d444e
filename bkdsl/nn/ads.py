"""The AdS/CFT deep-learning network (source 003; Hashimoto, Sugishita, Tanaka, Tomiya,
Phys. Rev. D 98, 046019 (2018), arXiv:1802.08313; the Runge–Kutta layers of Hashimoto et al. 2024,
arXiv:2411.16052).

Physics. A scalar φ with potential V(φ) = λφ⁴/4 and mass m lives in a (d+1)-dimensional black-hole
bulk ds² = −f(η)dt² + dη² + g(η)dx²; η is the radial coordinate, the AdS boundary is at η → ∞ and the
horizon at η = 0. For a static homogeneous φ(η) the equation of motion, with π = ∂_η φ, is

    ∂_η π + h(η) π − m² φ − λ φ³ = 0,      h(η) = ∂_η log √(f g^{d−1})

so the whole metric enters through the one function h(η). AdS–Schwarzschild has h = d coth(dη).

Network. Depth is the radial direction: the input is the boundary pair (φ, π) at η_ini, each layer
is one integrator step of the EOM towards the horizon (η decreasing), and the learnable weights are
the metric values h(η_n) at the N + 1 layer points (linear in between, which an RK4 step needs at
its half-step). The output is the horizon residual at η_fin,

    F = 2π/η − m²φ − λφ³ |_{η_fin},

which vanishes for a solution that is regular at the horizon: near η = 0, h ≈ 1/η and a regular
π ≈ aη gives 2a = m²φ + λφ³.

Data. :func:`generate_response` integrates the EOM from η_ini to η_fin in the *true* metric with a
fine RK4 (``substeps`` per layer interval, independent of the network), for boundary data drawn
uniformly from the box φ ∈ [0, 1.5], π ∈ [−0.2, 0.2] of the paper, and labels each sample

* ``label = "horizon"`` — as in the paper: 0 ("positive", the boundary data of a regular solution)
  when |F| < ε, else 1 — a classification task; or
* ``label = "response"`` — the residual F itself (a regression on the same physics, which pins h
  down far more tightly: every sample says *how* irregular it is, not only whether).

Training recovers h(η_n); :func:`relative_rms` is the figure of merit, RMS(h_learned − h_true) /
RMS(h_true) over the learned range [η_fin, η_ini]. The smoothness regulariser of the paper,
c_reg Σ η_n⁴ (h_{n+1} − h_n)², is :meth:`AdSNetwork.smoothness`.

Any metric in :data:`METRICS` works (the tests recover each of them): add one with
:func:`register_metric`.
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


@register_metric("ads_schwarzschild")
def ads_schwarzschild(d: int = 3) -> MetricFn:
    """AdS_{d+1}–Schwarzschild black hole: h(η) = d coth(dη) (→ d at the boundary, ≈ 1/η at the horizon)."""
    return lambda eta: d / torch.tanh(d * eta)


@register_metric("deformed_bh")
def deformed_bh(d: int = 3, a: float = -2.0, center: float = 0.5, width: float = 0.12) -> MetricFn:
    """A black hole with a localised deformation of the geometry between horizon and boundary
    (a "wall"): h = d coth(dη) + a exp(−(η − center)²/(2 width²)). Keeps both asymptotics."""
    return lambda eta: d / torch.tanh(d * eta) + a * torch.exp(-((eta - center) ** 2) / (2 * width ** 2))


@register_metric("horizon_series")
def horizon_series(coeffs: tuple[float, ...] = (0.0, 2.0, -0.5)) -> MetricFn:
    """A generic non-extremal horizon: h = 1/η + Σ_k c_k η^k (k = 0, 1, …)."""
    cs = tuple(float(c) for c in coeffs)
    return lambda eta: 1.0 / eta + sum(c * eta ** k for k, c in enumerate(cs))


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


def horizon_residual(phi, pi, eta, m2, lam):
    """F = 2π/η − m²φ − λφ³: zero for a solution regular at the horizon."""
    return 2 * pi / eta - m2 * phi - lam * phi ** 3


def integrate_true(h: MetricFn, phi0, pi0, bulk: Bulk, steps: int = 2000):
    """Fine RK4 of the EOM in the true metric from η_ini to η_fin (the data generator's solver)."""
    etas = torch.linspace(bulk.eta_ini, bulk.eta_fin, steps + 1, dtype=torch.float64)
    deta = (bulk.eta_fin - bulk.eta_ini) / steps
    hs = h(etas)
    phi, pi = phi0, pi0
    for n in range(steps):
        phi, pi = rk4_layer(phi, pi, hs[n], hs[n + 1], deta, bulk.m2, bulk.lam)
    return phi, pi


def generate_response(h: MetricFn, samples: int, bulk: Bulk = Bulk(), label: str = "response",
                      eps: float = 0.1, phi_range=(0.0, 1.5), pi_range=(-0.2, 0.2), seed: int = 0,
                      substeps: int = 2000) -> dict[str, torch.Tensor]:
    """Boundary data x = (φ, π) at η_ini and labels from the bulk metric ``h`` (float64).

    Returns ``{"x": [S, 2], "y": [S], "F": [S]}``; for ``label="horizon"`` the set is balanced
    between regular (y = 0, |F| < eps) and irregular (y = 1) samples as in the paper, by drawing
    until each class has ``samples // 2``."""
    g = torch.Generator().manual_seed(seed)

    def draw(n):
        u = torch.rand(n, 2, generator=g, dtype=torch.float64)
        phi0 = phi_range[0] + (phi_range[1] - phi_range[0]) * u[:, 0]
        pi0 = pi_range[0] + (pi_range[1] - pi_range[0]) * u[:, 1]
        phi, pi = integrate_true(h, phi0, pi0, bulk, substeps)
        F = horizon_residual(phi, pi, bulk.eta_fin, bulk.m2, bulk.lam)
        return torch.stack([phi0, pi0], 1), F

    if label == "response":
        x, F = draw(samples)
        ok = torch.isfinite(F)
        return {"x": x[ok], "y": F[ok], "F": F[ok]}
    if label != "horizon":
        raise ValueError(f"label must be 'response' or 'horizon', got {label!r}")
    pos_x, neg_x, pos_F, neg_F = [], [], [], []
    need = samples // 2
    for _ in range(200):
        x, F = draw(max(4 * samples, 1024))
        reg = F.abs() < eps
        pos_x.append(x[reg]), pos_F.append(F[reg])
        neg_x.append(x[~reg & torch.isfinite(F)]), neg_F.append(F[~reg & torch.isfinite(F)])
        if sum(len(t) for t in pos_x) >= need and sum(len(t) for t in neg_x) >= need:
            break
    px, pf = torch.cat(pos_x)[:need], torch.cat(pos_F)[:need]
    nx, nf = torch.cat(neg_x)[:need], torch.cat(neg_F)[:need]
    if len(px) < need:
        raise ValueError(f"only {len(px)} regular samples found for {need} asked; widen the box or eps")
    x = torch.cat([px, nx])
    y = torch.cat([torch.zeros(need, dtype=torch.float64), torch.ones(need, dtype=torch.float64)])
    perm = torch.randperm(len(x), generator=g)
    return {"x": x[perm], "y": y[perm], "F": torch.cat([pf, nf])[perm]}


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
class AdSNetwork(nn.Module):
    """Boundary (φ, π) ``[B, 2]`` → horizon residual F ``[B]``.

    Layer n integrates the EOM over [η_{n+1}, η_n] (towards the horizon) with one ``layer`` step
    (``"rk4"``, 2024, default; ``"euler"``, 2018) in which the metric is the layer's weight
    ``h[n]`` — the value of h at the layer's midpoint η_mid[n] (as in the paper, one weight per
    layer; the midpoint makes a piecewise-constant h a second-order approximation and gives every
    weight the same footing, where node values at the two ends would be barely constrained).
    ``init``: the constant every weight starts from (no knowledge of the answer).
    ``learn_m2_lambda`` also fits m² and λ, as the paper does for experimental data."""

    def __init__(self, layers: int = 20, layer: str = "rk4", bulk: Bulk = Bulk(), init: float = 1.0,
                 learn_m2_lambda: bool = False):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {tuple(LAYERS)}, got {layer!r}")
        self.n, self.layer, self.bulk = layers, layer, bulk
        edges = torch.linspace(bulk.eta_ini, bulk.eta_fin, layers + 1, dtype=torch.float64)
        self.register_buffer("eta", 0.5 * (edges[1:] + edges[:-1]))  # the layers' midpoints
        self.h = nn.Parameter(torch.full((layers,), float(init), dtype=torch.float64))
        if learn_m2_lambda:
            self.m2 = nn.Parameter(torch.tensor(bulk.m2, dtype=torch.float64))
            self.lam = nn.Parameter(torch.tensor(bulk.lam, dtype=torch.float64))
        else:
            self.m2, self.lam = bulk.m2, bulk.lam

    @property
    def deta(self) -> float:
        return (self.bulk.eta_fin - self.bulk.eta_ini) / self.n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.h.dtype)
        phi, pi = x[..., 0], x[..., 1]
        step = LAYERS[self.layer]
        for n in range(self.n):
            phi, pi = step(phi, pi, self.h[n], self.h[n], self.deta, self.m2, self.lam)
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
    """RMS(h_learned − h_true) / RMS(h_true)."""
    return float(((h_learned - h_true) ** 2).mean().sqrt() / (h_true ** 2).mean().sqrt())


@dataclass
class FitResult:
    rel_rms: float
    eta: list[float]
    h_learned: list[float]
    h_true: list[float]
    final_loss: float
    epochs: int


def fit_metric(h_true: MetricFn, label: str = "response", layers: int = 20, layer: str = "rk4",
               samples: int = 2000, epochs: int = 40, lr: float = 1.0, c_reg: float = 1e-4,
               optimizer: str = "lbfgs", batch: int = 256, seed: int = 0, bulk: Bulk = Bulk(),
               eps: float = 0.1, init: float = 1.0,
               log: Callable[[int, float], None] | None = None) -> FitResult:
    """Generate data from ``h_true``, train an :class:`AdSNetwork` on it, compare h.

    The inverse problem is ill-conditioned (the response is a smooth function of two boundary
    numbers, and h enters it through nested integrals), so first-order optimizers crawl: full-batch
    L-BFGS with a strong-Wolfe line search reaches in seconds what Adam does not in minutes (both are
    available: ``optimizer="adam"`` uses minibatches of ``batch``). A line search that wanders into
    a metric where the integration overflows is undone: parameters restored, step halved."""
    torch.manual_seed(seed)
    data = generate_response(h_true, samples, bulk, label=label, eps=eps, seed=seed)
    x, y = data["x"], data["y"]
    net = AdSNetwork(layers, layer, bulk, init=init)

    def objective(xb, yb):
        F = net(xb)
        fit = asinh_mse(F, yb) if label == "response" else (horizon_probability(F, eps) - yb).abs().mean()
        return fit, fit + c_reg * net.smoothness()

    loss_v = math.nan
    if optimizer == "lbfgs":
        step_lr = lr
        opt = torch.optim.LBFGS(net.parameters(), lr=step_lr, max_iter=50, history_size=50,
                                line_search_fn="strong_wolfe")
        for ep in range(epochs):
            saved = net.h.detach().clone()

            def closure():
                opt.zero_grad()
                _, total = objective(x, y)
                total.backward()
                return total

            opt.step(closure)
            fit, total = objective(x, y)
            if not torch.isfinite(total) or not torch.isfinite(net.h).all():
                with torch.no_grad():
                    net.h.copy_(saved)
                step_lr /= 2
                opt = torch.optim.LBFGS(net.parameters(), lr=step_lr, max_iter=50, history_size=50,
                                        line_search_fn="strong_wolfe")
                continue
            loss_v = float(fit.detach())
            if log is not None:
                log(ep, loss_v)
    elif optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        for ep in range(epochs):
            perm = torch.randperm(len(x))
            for s in range(0, len(x), batch):
                idx = perm[s:s + batch]
                fit, total = objective(x[idx], y[idx])
                opt.zero_grad()
                total.backward()
                opt.step()
                loss_v = float(fit.detach())
            sched.step()
            if log is not None:
                log(ep, loss_v)
    else:
        raise ValueError(f"optimizer must be lbfgs or adam, got {optimizer!r}")
    with torch.no_grad():
        ht = h_true(net.eta)
    return FitResult(relative_rms(net.h.detach(), ht), net.eta.tolist(), net.h.detach().tolist(),
                     ht.tolist(), loss_v, epochs)
