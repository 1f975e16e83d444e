r"""Gaussian-manifold VAE pieces (source 001 §3): the wrapped normal on the Lorentz model and the
Poincaré ball, the isotropy regularisers, and a synthetic branching tree with known hierarchy.

Wrapped normal 𝒢(μ, Σ) (Nagano et al. 2019, ICML; Mathieu et al. 2019 for the ball). Sample
v ~ N(0, Σ) in ℝ^d = T_o, transport it to μ and map it onto the manifold:

    z = exp_μ(P_{o→μ}(v))

Its log-density w.r.t. the Riemannian volume, with v recovered as P_{μ→o}(log_μ(z)) and r = ‖v‖ (the
geodesic distance d(μ, z); parallel transport is an isometry), on a space of curvature −1/k:

    log p(z) = log N(v; 0, Σ) − (d − 1) log( √k sinh(r/√k) / r )

(the Jacobian of exp_μ; for the ball 𝔻_c the same with k = 1/c). ``log_prob`` evaluates it in float64.

Isotropy regularisers on the tangent vectors t_i = log₀(z_i) ∈ ℝ^d:

* MMD² between {t_i} and N(0, I) with the Gaussian kernel κ(x, y) = exp(−‖x − y‖²/(2h²)); the two
  expectations involving N(0, I) are closed forms, so the estimate has no sampling noise:
      E_y κ(x, y)   = (h²/(h² + 1))^{d/2} exp(−‖x‖²/(2(h² + 1)))
      E_{y,y'} κ    = (h²/(h² + 2))^{d/2}
      MMD²          = mean_{i≠j} κ(t_i, t_j) − 2 mean_i E_y κ(t_i, y) + E_{y,y'} κ;
* effective rank (Roy & Vetterli 2007) erank(T) = exp(−Σ p_i log p_i), p_i = s_i / Σ s_j over the
  singular values s of the centred T (1 ≤ erank ≤ d; d when isotropic).
"""

from __future__ import annotations

import math

import torch

from bkdsl.nn import lorentz as L
from bkdsl.nn import poincare as P


# ------------------------------------------------------------------------------------ wrapped normal
def _log_jacobian(r: torch.Tensor, d: int, k: float) -> torch.Tensor:
    """(d − 1) log(√k sinh(r/√k)/r), with its r → 0 limit 0 (float64 recommended)."""
    sk = math.sqrt(k)
    x = r / sk
    small = x < 1e-4
    xs = torch.where(small, torch.ones_like(x), x)
    val = torch.log(torch.sinh(xs) / xs)             # log(√k sinh(x)/(√k x))
    return (d - 1) * torch.where(small, x * x / 6.0, val)


def _log_normal(v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log N(v; 0, diag(σ²)), summed over the last axis."""
    return (-0.5 * (v / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)


def _nan_where_nonfinite(value: torch.Tensor, *xs: torch.Tensor) -> torch.Tensor:
    """``value`` with NaN wherever an input row holds NaN/Inf: the float64 re-projection (and geoopt's
    clamps) would otherwise turn a NaN coordinate into a finite density, and a NaN must stop training."""
    bad = torch.zeros(value.shape, dtype=torch.bool, device=value.device)
    for x in xs:
        bad = bad | ~torch.isfinite(x).all(-1)
    return torch.where(bad, torch.full_like(value, float("nan")), value)


def lorentz_wrapped_rsample(mu: torch.Tensor, sigma: torch.Tensor, k: float = 1.0,
                            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, v): z = exp_μ(P_{o→μ}((0, v))), v ~ N(0, diag σ²); μ [..., d+1] on ℍ_k, σ [..., d] (reparameterised)."""
    eps = torch.randn(sigma.shape, generator=generator, dtype=sigma.dtype, device=sigma.device)
    v = sigma * eps
    u = L.transp0(mu, v, k)
    return L.hyperboloid(k).expmap(mu, u), v


def lorentz_wrapped_log_prob(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """log 𝒢(z; μ, σ) on ℍ_k (module docstring), computed in float64. z and μ are first put back on ℍ_k in
    float64 by x₀ ← √(k + ‖x_s‖²) (geoopt's ``projx``): a float32 point far out (x₀ ~ 10³) misses
    ⟨x, x⟩_L = −k by 0.1–1 from the rounding of x₀ alone, which log_μ would turn into an O(1) error in
    the recovered v — and, for a narrow posterior (σ ~ 10⁻³), into log q → −∞."""
    m = L.hyperboloid(k)
    z64, mu64, s64 = m.projx(z.double()), m.projx(mu.double()), sigma.double()
    u = m.logmap(mu64, z64)
    v = m.transp0back(mu64, u)[..., 1:]
    r = v.norm(dim=-1)
    d = v.shape[-1]
    return _nan_where_nonfinite(_log_normal(v, s64) - _log_jacobian(r, d, k), z, mu, sigma)


LAMBDA0 = 2.0  # the ball's conformal factor at 0, λ₀ = 2/(1 − c·0): a Riemannian length v is v/λ₀ in coordinates


def poincare_wrapped_rsample(mu: torch.Tensor, sigma: torch.Tensor, c: float = 1.0,
                             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, v) on the ball 𝔻_c: z = exp_μ(P_{0→μ}(v/λ₀)) with geoopt's PoincareBall (Mathieu et al. 2019;
    v ~ N(0, Σ) in Riemannian units, so this is the image of the Lorentz wrapped normal under the
    isometry) — in the input's dtype, *without* bkdsl.nn.poincare's float64 guards (the fp32 comparison
    measures the plain ball)."""
    ball = P.ball(c)
    eps = torch.randn(sigma.shape, generator=generator, dtype=sigma.dtype, device=sigma.device)
    v = sigma * eps
    return ball.expmap(mu, ball.transp0(mu, v / LAMBDA0)), v


def poincare_wrapped_log_prob(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """log 𝒢(z; μ, σ) on 𝔻_c (the Riemannian volume of the ball), computed in float64."""
    ball = P.ball(c)
    z64, mu64, s64 = z.double(), mu.double(), sigma.double()
    u = ball.logmap(mu64, z64)
    v = LAMBDA0 * ball.transp0back(mu64, u)
    r = v.norm(dim=-1)  # = d_c(μ, z): parallel transport keeps the Riemannian length
    return _nan_where_nonfinite(_log_normal(v, s64) - _log_jacobian(r, v.shape[-1], 1.0 / c), z, mu, sigma)


def wrapped_normal_rsample(mu: torch.Tensor, sigma: torch.Tensor, model: str, curv: float,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """One reparameterised sample z ~ 𝒢(μ, σ) on the hyperboloid ℍ_k (``model = "lorentz"``, curv = k,
    μ [..., d+1], σ [..., d]) or the ball 𝔻_c (``"poincare"``, curv = c, μ and σ [..., d]); σ is a
    Riemannian length in both, so the two are images of each other under the isometry."""
    if model == "lorentz":
        return lorentz_wrapped_rsample(mu, sigma, curv, generator)[0]
    if model == "poincare":
        return poincare_wrapped_rsample(mu, sigma, curv, generator)[0]
    raise ValueError(f"wrapped normal on {model!r}: expected 'lorentz' or 'poincare'")


def origin(like_sigma: torch.Tensor, model: str, curv: float) -> torch.Tensor:
    """The origin o of the model, broadcast to σ's leading axes: (√k, 0, …) on ℍ_k, 0 on 𝔻_c."""
    zeros = torch.zeros_like(like_sigma)
    return L.expmap0(zeros, curv) if model == "lorentz" else zeros


def wrapped_normal_log_prob(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, model: str,
                            curv: float) -> torch.Tensor:
    """log 𝒢(z; μ, σ) on either model (float64; see the module docstring)."""
    if model == "lorentz":
        return lorentz_wrapped_log_prob(z, mu, sigma, curv)
    if model == "poincare":
        return poincare_wrapped_log_prob(z, mu, sigma, curv)
    raise ValueError(f"wrapped normal on {model!r}: expected 'lorentz' or 'poincare'")


def kl_sample(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, model: str, curv: float,
              prior_sigma: float = 1.0) -> torch.Tensor:
    """The one-sample Monte-Carlo KL estimate per sample, log q(z | μ, σ) − log p(z), with
    q = 𝒢(μ, σ) and the prior p = 𝒢(o, prior_sigma²·I) at the origin (Nagano et al. 2019, §3);
    its expectation over z ~ q is KL(q ‖ p) ≥ 0. No closed form exists for d > 1 (the log-Jacobian
    term depends on z); for d = 1 it reduces to KL(N(m, σ²) ‖ N(0, s²)) — the test's reference.
    Computed in float64; shape [...] (one value per sample)."""
    s_p = torch.full_like(sigma, float(prior_sigma))
    return (wrapped_normal_log_prob(z, mu, sigma, model, curv)
            - wrapped_normal_log_prob(z, origin(sigma, model, curv), s_p, model, curv))


# ------------------------------------------------------------------------------------------ isotropy
def mmd_isotropy(t: torch.Tensor, bandwidth: float = 1.0) -> torch.Tensor:
    """MMD² between the rows of t [n, d] and N(0, I), Gaussian kernel of bandwidth h (closed forms)."""
    n, d = t.shape
    h2 = bandwidth ** 2
    sq = torch.cdist(t, t).pow(2)
    k_xx = torch.exp(-sq / (2 * h2))
    off = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    k_xy = (h2 / (h2 + 1)) ** (d / 2) * torch.exp(-(t * t).sum(-1) / (2 * (h2 + 1)))
    k_yy = (h2 / (h2 + 2)) ** (d / 2)
    return off - 2 * k_xy.mean() + k_yy


def effective_rank(t: torch.Tensor) -> torch.Tensor:
    """exp(H(p)), p = normalised singular values of the centred t [n, d] (Roy & Vetterli 2007); NaN when t
    holds NaN/Inf (the SVD would raise instead, and a training loss must see the NaN and stop)."""
    if not bool(torch.isfinite(t).all()):
        return t.sum() * float("nan")
    s = torch.linalg.svdvals(t - t.mean(0, keepdim=True))
    p = s / s.sum().clamp_min(1e-30)
    h = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return torch.exp(h)


# ------------------------------------------------------------------------------------- the tree data
def branching_tree(depth: int = 6, branching: int = 2, dim: int = 32, noise: float = 1.0, copies: int = 4,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """A branching diffusion (Mathieu et al. 2019 §5.1): the root is 0 ∈ ℝ^dim, each child is its parent
    plus N(0, (noise/ (level+1))² I), down to ``depth`` levels; each node is observed ``copies`` times with
    N(0, (noise/ 10)² I) jitter. Returns features ``x`` [n, dim], ``node`` [n] (index in BFS order),
    ``depth`` [n], and the tree's ``parent`` [nodes] (−1 for the root)."""
    g = torch.Generator().manual_seed(seed)
    feats = [torch.zeros(dim)]
    parent, level = [-1], [0]
    frontier = [0]
    for lv in range(1, depth + 1):
        nxt = []
        for p in frontier:
            for _ in range(branching):
                feats.append(feats[p] + noise / lv * torch.randn(dim, generator=g))
                parent.append(p)
                level.append(lv)
                nxt.append(len(feats) - 1)
        frontier = nxt
    centres = torch.stack(feats)
    nodes = torch.arange(len(feats)).repeat_interleave(copies)
    x = centres[nodes] + noise / 10 * torch.randn(len(nodes), dim, generator=g)
    return {"x": x, "node": nodes, "depth": torch.tensor(level)[nodes], "parent": torch.tensor(parent)}


def tree_distances(parent: torch.Tensor) -> torch.Tensor:
    """Hop distances between all nodes of a tree given by its parent array (BFS order, root first)."""
    n = len(parent)
    anc = []
    for i in range(n):
        path, j = [], i
        while j >= 0:
            path.append(j)
            j = int(parent[j])
        anc.append(path)
    d = torch.zeros(n, n)
    for i in range(n):
        ai = {a: s for s, a in enumerate(anc[i])}
        for j in range(n):
            for s, a in enumerate(anc[j]):
                if a in ai:
                    d[i, j] = ai[a] + s
                    break
    return d
