r"""Hyperbolic mixture of experts: routerless experts chosen by Poincaré distance to centroids.

Reference: BK-Core Phase 8, §2 (``/work/shared/reference/README.md``). There is no learned router:

    d_e(x) = d_𝔻(x, μ_e)                      (Poincaré distance to centroid μ_e, :func:`poincare.dist`)
    top-k  = the k nearest centroids          (k = 1: the Voronoi cell of x)
    gate   = exp(−d_e(x)/T), renormalised over the top-k (w_j = e^{−d_j/T} / Σ_l e^{−d_l/T}; a softmax
             of −d/T) for k ≥ 2, raw for k = 1 — either way differentiable in the centroids

Experts act in the tangent space at the origin: y = exp₀( Σ_j w_j · MLP_{e_j}(log₀ x) ) — each expert
is a plain MLP on log₀ x, their outputs are mixed as tangent vectors (a convex combination, so the
mix is well defined), and one exp₀ maps back to the ball. Centroids are
:class:`geoopt.ManifoldParameter` on the ball, so :class:`geoopt.optim.RiemannianAdam` moves them by
μ ← exp_μ(−η grad_R), grad_R = grad_E / λ_μ², λ_μ = 2 / (1 − c‖μ‖²), and keeps them on it.

Initialisation (:func:`hyperbolic_kmeans`): Lloyd iterations with the Poincaré distance for the
assignment and, for the update, the Einstein midpoint in the Klein model — the hyperbolic barycentre
Σ γ_i k_i / Σ γ_i, with k_i = 2x_i / (1 + c‖x_i‖²) the Klein image of x_i and γ_i = 1/√(1 − c‖k_i‖²)
its Lorentz factor (Ungar, "A Gyrovector Space Approach to Hyperbolic Geometry", 2008). It is the
midpoint the hyperbolic attention literature uses as a closed-form stand-in for the Fréchet mean.
γ_i is computed as (1 + c‖x‖²)/(1 − c‖x‖²) straight from the Poincaré point (the same number without
the cancellation of 1 − ‖k‖² near the boundary).

No auxiliary load-balancing loss: :meth:`HyperbolicMoE.load_balance` reports the fraction of
(token, slot) assignments each expert received in the last forward pass.
"""

from __future__ import annotations

import math
from typing import Callable

import geoopt
import torch
from torch import nn

from bkdsl.diagnostics import BkError
from bkdsl.kernels import dispatch
from bkdsl.kernels.hyperbolic_routing import (check_route, hyperbolic_route, hyperbolic_route_reference, load_graphed,
                                              load_ops, route_backward)
from bkdsl.nn import poincare

__all__ = ["hyperbolic_route", "hyperbolic_route_reference", "route_backward", "hyperbolic_kmeans",
           "einstein_midpoint", "distance_gates", "HyperbolicMoE"]


# --- routing: distances, gates, top-k ---------------------------------------------------------------
# The reference, its closed-form backward and the dispatcher live beside the Triton kernels
# (kernels/hyperbolic_routing/); re-exported here where the layer and its users import them.

# --- initialisation -------------------------------------------------------------------------------

def einstein_midpoint(x: torch.Tensor, weights: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Weighted Einstein midpoints of Poincaré points: x [N, D], weights [M, N] ≥ 0 → [M, D].

    Klein image k = 2x/(1 + c‖x‖²), Lorentz factor γ = (1 + c‖x‖²)/(1 − c‖x‖²), midpoint
    m_K = Σ w γ k / Σ w γ, and back: p = m_K / (1 + √(1 − c‖m_K‖²)). In float64.
    """
    x64 = poincare._guard(x, c)
    n2 = c * (x64 * x64).sum(-1, keepdim=True)
    klein = 2.0 * x64 / (1.0 + n2)
    gamma = ((1.0 + n2) / (1.0 - n2)).squeeze(-1)
    wg = weights.to(torch.float64) * gamma[None, :]
    # a row with no weight has no midpoint; the caller keeps its old value (den = 0 → NaN avoided)
    den = wg.sum(1, keepdim=True)
    m_k = (wg @ klein) / torch.where(den > 0, den, 1.0)
    back = m_k / (1.0 + (1.0 - c * (m_k * m_k).sum(-1, keepdim=True)).clamp_min(0.0).sqrt())
    return poincare._project64(back, x.dtype, c).to(x.dtype)


@torch.no_grad()
def hyperbolic_kmeans(x: torch.Tensor, k: int, iters: int = 10, c: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """k centroids [k, D] on the ball from points x [N, D]: Lloyd's algorithm, hyperbolic.

    Seeding: k-means++ with the Poincaré distance squared. Assignment: nearest centroid by
    :func:`poincare.dist`. Update: the Einstein midpoint of each cluster (module docstring); a cluster
    left empty keeps its centroid.
    """
    x = x.reshape(-1, x.shape[-1])
    n = x.shape[0]
    if n < k:
        raise BkError("E0201", f"hyperbolic_kmeans needs at least k = {k} points, got {n}")
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    chosen = [first]
    d2 = poincare.dist(x, x[first][None, :], c).to(torch.float64) ** 2
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        nxt = torch.multinomial(p.cpu(), 1, generator=generator).item()
        chosen.append(nxt)
        d2 = torch.minimum(d2, poincare.dist(x, x[nxt][None, :], c).to(torch.float64) ** 2)
    mu = x[chosen].clone()
    for _ in range(iters):
        assign = poincare.dist(x[:, None, :], mu[None, :, :], c).argmin(1)
        onehot = torch.zeros(k, n, dtype=torch.float64, device=x.device)
        onehot[assign, torch.arange(n, device=x.device)] = 1.0
        new = einstein_midpoint(x, onehot, c)
        mu = torch.where((onehot.sum(1) > 0)[:, None], new, mu)
    return mu


# --- the layer ------------------------------------------------------------------------------------

def distance_gates(d: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""Gates [T, k] from the distances [T, k] of the k selected centroids (source 000 §2).

    k ≥ 2: the top-k of exp(−d/T) renormalised, w_j = e^{−d_j/T} / Σ_l e^{−d_l/T} (a softmax of −d/T
    over the selected experts). Its derivative ∂w_j/∂d_l = −(δ_jl − w_l) w_j / T is non-zero whenever
    the selected distances differ, so the centroids receive gradient through the gate.
    k = 1: the raw gate exp(−d/T) (a renormalised single gate would be identically 1 and carry none).
    """
    if d.shape[-1] == 1:
        return torch.exp(-d / temperature)
    return torch.softmax(-d / temperature, dim=-1)


class HyperbolicMoE(nn.Module):
    """Mixture of tangent-space MLP experts routed by Poincaré distance (module docstring).

    Args:
        d: dimension of the ball.
        experts: number of experts E (and centroids).
        top_k: experts per token (default 2; see :func:`distance_gates` for the gate).
        hidden: width of each expert's MLP (default 2d).
        c: curvature magnitude (the ball has curvature −c).
        temperature: T of the gate exp(−d/T) (distance units of the ball).
        metric: ``"poincare"`` (centroids μ_e on the ball, geoopt ``ManifoldParameter``, distance
            d_𝔻(x, μ_e)) or ``"euclidean"`` (the ablation: centroids are plain vectors of the tangent
            space at the origin, distance ‖log₀x − μ_e‖₂; the same gate, experts and mixing).
        activation: the experts' nonlinearity.
        graphed_routing: route through CUDA graphs of the routing op's forward and backward
            (:class:`bkdsl.kernels.hyperbolic_routing.graphed.GraphedRoute`, one per token count; on CUDA,
            float32, Poincaré metric, with autograd recording, outside torch.compile; elsewhere — e.g.
            under ``torch.no_grad()`` — the op as usual). It removes the
            host's ≈ 1 ms per op forward + backward (#20.4). Contract: one recorded forward per backward
            (a second forward with autograd recording before the backward raises BkError E0811; run
            extra forwards under ``torch.no_grad()``).

    Input x: [..., d] points of the ball; output: [..., d] points of the ball.

    Statistics (not trained): ``load`` [E], the fraction of (token, slot) assignments each expert got
    in the last forward; ``centroids_start``, the centroids after construction or
    :meth:`init_from_batch`, from which :meth:`centroid_travel` measures how far they moved.
    """

    def __init__(self, d: int, experts: int, top_k: int = 2, hidden: int | None = None, c: float = 1.0,
                 temperature: float = 1.0, metric: str = "poincare",
                 activation: Callable[[], nn.Module] = nn.GELU, graphed_routing: bool = False):
        super().__init__()
        if not 1 <= top_k <= experts:
            raise BkError("E0201", f"top_k = {top_k} must lie in 1..{experts}")
        if not temperature > 0:
            raise BkError("E0201", f"temperature = {temperature} must be > 0")
        if metric not in ("poincare", "euclidean"):
            raise BkError("E0201", f"metric = {metric!r} must be 'poincare' or 'euclidean'")
        self.d, self.num_experts, self.top_k, self.c = d, experts, top_k, c
        self.temperature, self.metric = float(temperature), metric
        self.graphed_routing = bool(graphed_routing)
        self._graphs: dict[tuple, object] = {}  # (x shape, device, x.requires_grad) -> GraphedRoute
        hidden = hidden or 2 * d
        self.manifold = geoopt.PoincareBall(c=c)
        tangent = 0.5 * torch.randn(experts, d) / math.sqrt(d)
        if metric == "poincare":
            self.centroids = geoopt.ManifoldParameter(poincare.expmap0(tangent, c), manifold=self.manifold)
        else:
            self.centroids = nn.Parameter(tangent)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), activation(), nn.Linear(hidden, d)) for _ in range(experts))
        self.register_buffer("load", torch.zeros(experts), persistent=False)
        self.register_buffer("centroids_start", self.centroids.detach().clone(), persistent=False)

    @torch.no_grad()
    def init_from_batch(self, x: torch.Tensor, iters: int = 10, generator: torch.Generator | None = None
                        ) -> None:
        """Place the centroids by :func:`hyperbolic_kmeans` on a batch of embeddings [..., d]. For the
        Euclidean metric they are the same k-means centroids mapped by log₀, so that the ablation
        starts from the same seeds and differs only in the metric."""
        mu = hyperbolic_kmeans(x.detach().reshape(-1, self.d).to(self.centroids.dtype), self.num_experts,
                               iters, self.c, generator)
        if self.metric == "euclidean":
            mu = poincare.logmap0(mu, self.c)
        self.centroids.copy_(mu)
        self.centroids_start.copy_(mu)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(gates, index, distance) [T, k] for tokens x [T, d]; gates by :func:`distance_gates`."""
        if self.metric == "poincare" and self._graphable(x):
            _, idx, dist = self._graphed_route(x)
        elif self.metric == "poincare":
            _, idx, dist = hyperbolic_route(x, self.centroids, self.top_k, self.c)
        else:
            d_all = torch.cdist(poincare.logmap0(x, self.c), self.centroids.to(x.dtype))
            dist, idx = torch.topk(d_all, self.top_k, dim=1, largest=False, sorted=True)
        return distance_gates(dist, self.temperature), idx, dist

    def _graphable(self, x: torch.Tensor) -> bool:
        mu = self.centroids
        return (self.graphed_routing and torch.is_grad_enabled() and x.is_cuda and mu.is_cuda
                and x.dtype == torch.float32
                and mu.dtype == torch.float32 and not torch.compiler.is_compiling()
                and dispatch.use_triton(x, mu) and mu.shape[0] <= load_ops().MAX_EXPERTS)

    def _graphed_route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The routing op replayed from CUDA graphs captured for this token count (outputs live in the
        graphs' buffers until the next call: :meth:`forward` consumes them within the call)."""
        check_route(x, self.centroids, self.top_k)
        key = (tuple(x.shape), x.device, x.requires_grad)
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = load_graphed()(x, self.centroids, self.top_k, self.c)
        return graph(x.contiguous(), self.centroids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        tokens = x.reshape(-1, self.d)
        w, idx, _ = self.route(tokens)
        v = poincare.logmap0(tokens, self.c)
        mixed = torch.zeros_like(v)
        flat_idx = idx.reshape(-1)
        flat_tok = torch.arange(tokens.shape[0], device=x.device).repeat_interleave(self.top_k)
        flat_w = w.reshape(-1).to(v.dtype)
        for e, expert in enumerate(self.experts):
            sel = (flat_idx == e).nonzero(as_tuple=True)[0]
            if sel.numel() == 0:
                continue
            tok = flat_tok[sel]
            mixed = mixed.index_add(0, tok, flat_w[sel, None] * expert(v[tok]))
        with torch.no_grad():
            counts = torch.bincount(flat_idx, minlength=self.num_experts).to(self.load.dtype)
            self.load.copy_(counts / max(flat_idx.numel(), 1))
        return poincare.expmap0(mixed, self.c).reshape(shape)

    @torch.no_grad()
    def centroid_travel(self) -> torch.Tensor:
        """Distance [E] each centroid moved since ``centroids_start``: d_𝔻 on the ball (Poincaré metric),
        ‖·‖₂ in the tangent space (Euclidean metric)."""
        mu, mu0 = self.centroids.detach(), self.centroids_start
        if self.metric == "poincare":
            return poincare.dist(mu, mu0, self.c).to(mu.dtype)
        return (mu - mu0).norm(dim=-1)

    def load_balance(self) -> dict[str, torch.Tensor | float]:
        """Fraction of (token, slot) assignments per expert in the last forward, and summaries.

        ``fraction`` [E] sums to 1; ``max_over_mean`` is 1 for a perfectly balanced layer;
        ``max_over_min`` is the busiest over the idlest share (inf when an expert is idle);
        ``entropy`` is in nats (log E when balanced); ``idle`` counts experts that got no token.
        """
        f = self.load.clone()
        nz = f[f > 0]
        fmin = float(f.min())
        return {
            "fraction": f,
            "max_over_mean": float(f.max() * self.num_experts) if f.sum() > 0 else 0.0,
            "max_over_min": float(f.max()) / fmin if fmin > 0 else float("inf"),
            "entropy": float(-(nz * nz.log()).sum()),
            "idle": int((f == 0).sum()),
        }
