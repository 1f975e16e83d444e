"""Wrapped normals against quadrature and Monte Carlo, the ball form as the isometric image of the
Lorentz form, the isotropy regularisers, the branching tree."""

from __future__ import annotations

import math

import pytest
import torch

from bkdsl.nn import gmvae as G
from bkdsl.nn import lorentz as L

MU_T = torch.tensor([[0.8, -0.5]], dtype=torch.float64)
SIG = torch.tensor([[0.7, 0.4]], dtype=torch.float64)


def _grid(R=9.0, n=601):
    ax = torch.linspace(-R, R, n, dtype=torch.float64)
    w = torch.stack(torch.meshgrid(ax, ax, indexing="ij"), -1).reshape(-1, 2)
    return w, float((ax[1] - ax[0]) ** 2)


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_lorentz_wrapped_density_normalised_and_matches_monte_carlo(k):
    """∫ p dvol = 1 by quadrature in exponential coordinates at the origin (dvol = (√k sinh(|w|/√k)/|w|) dw
    in d = 2), and E[f(z)] by quadrature against the mean over reparameterised samples."""
    w, da = _grid()
    z = L.expmap0(w, k)
    r = w.norm(dim=-1)
    jac = torch.where(r > 0, math.sqrt(k) * torch.sinh(r / math.sqrt(k)) / r.clamp_min(1e-300), torch.ones_like(r))
    mu = L.expmap0(MU_T, k)
    p = torch.exp(G.lorentz_wrapped_log_prob(z, mu.expand_as(z), SIG.expand(len(z), 2), k))
    assert abs(float((p * jac).sum()) * da - 1) < 1e-6
    e_quad = float((z[:, 1] * p * jac).sum()) * da
    zs, _ = G.lorentz_wrapped_rsample(mu.expand(100_000, 3), SIG.expand(100_000, 2), k, torch.Generator().manual_seed(1))
    vals = zs[:, 1]
    assert abs(float(vals.mean()) - e_quad) < 4 * float(vals.std()) / math.sqrt(len(vals))
    assert (L.minkowski_inner(zs, zs) + k).abs().max() < 1e-8


def test_dropping_the_jacobian_breaks_normalisation():
    """The test above can fail: without the (d − 1) log(sinh r / r) term the mass is not 1."""
    w, da = _grid()
    z = L.expmap0(w, 1.0)
    r = w.norm(dim=-1)
    jac = torch.where(r > 0, torch.sinh(r) / r.clamp_min(1e-300), torch.ones_like(r))
    mu = L.expmap0(MU_T, 1.0)
    logp = G.lorentz_wrapped_log_prob(z, mu.expand_as(z), SIG.expand(len(z), 2), 1.0)
    rr = L.dist(mu.expand_as(z), z, 1.0)
    wrong = torch.exp(logp + G._log_jacobian(rr, 2, 1.0))
    assert abs(float((wrong * jac).sum()) * da - 1) > 1e-2


def test_ball_wrapped_normal_is_the_isometric_image():
    k = 1.0
    mu = L.expmap0(MU_T, k)
    w = 2 * torch.randn(500, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = L.expmap0(w, k)
    a = G.lorentz_wrapped_log_prob(z, mu.expand_as(z), SIG.expand(500, 2), k)
    b = G.poincare_wrapped_log_prob(L.to_poincare(z, k), L.to_poincare(mu, k).expand(500, 2), SIG.expand(500, 2), 1 / k)
    assert (a - b).abs().max() < 1e-9
    zl, _ = G.lorentz_wrapped_rsample(mu.expand(8, 3), SIG.expand(8, 2), k, torch.Generator().manual_seed(3))
    zb, _ = G.poincare_wrapped_rsample(L.to_poincare(mu, k).expand(8, 2), SIG.expand(8, 2), 1 / k,
                                       torch.Generator().manual_seed(3))
    assert (L.to_poincare(zl, k) - zb).abs().max() < 1e-12


def test_mmd_closed_form_against_sampling():
    g = torch.Generator().manual_seed(4)
    iso = torch.randn(400, 4, generator=g, dtype=torch.float64)
    shifted = iso + 1.5
    assert abs(float(G.mmd_isotropy(iso))) < 5e-3
    assert float(G.mmd_isotropy(shifted)) > 0.1
    # the closed-form expectations against a sampled reference set
    y = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    kxy = torch.exp(-torch.cdist(shifted, y).pow(2) / 2).mean()
    kyy = torch.exp(-torch.cdist(y, y).pow(2) / 2)
    kyy = (kyy.sum() - kyy.diagonal().sum()) / (len(y) * (len(y) - 1))
    kxx = torch.exp(-torch.cdist(shifted, shifted).pow(2) / 2)
    kxx = (kxx.sum() - kxx.diagonal().sum()) / (len(shifted) * (len(shifted) - 1))
    assert abs(float(kxx - 2 * kxy + kyy) - float(G.mmd_isotropy(shifted))) < 1e-2


def test_effective_rank_bounds():
    g = torch.Generator().manual_seed(5)
    iso = torch.randn(2000, 6, generator=g, dtype=torch.float64)
    assert float(G.effective_rank(iso)) > 5.8
    line = torch.randn(2000, 1, generator=g, dtype=torch.float64) * torch.ones(1, 6, dtype=torch.float64)
    assert abs(float(G.effective_rank(line)) - 1) < 1e-6


def test_branching_tree_and_distances():
    t = G.branching_tree(depth=3, branching=2, dim=8, copies=2, seed=0)
    assert len(t["parent"]) == 15 and t["x"].shape == (30, 8) and int(t["depth"].max()) == 3
    d = G.tree_distances(t["parent"])
    assert d[0, 14] == 3 and d[7, 8] == 2 and d[7, 14] == 6 and torch.equal(d, d.T)
