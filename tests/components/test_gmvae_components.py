"""The GM-VAE in the language: the `wrapped_normal` sampler (types, refusals, samples on the manifold) and
the loss terms `kl_wrapped_normal` (against the d = 1 closed form, an independent d = 2 quadrature, the
q = p zero, and the Lorentz = ball isometry), `mmd_isotropy` and `effective_rank`; the `hyperbolic`
claim on a posterior block established, and refused when the block's output is a tangent vector."""

from __future__ import annotations

import math

import pytest
import torch

import bkdsl
from bkdsl.components.gmvae import EffectiveRank, KLWrappedNormal, MMDIsotropy
from bkdsl.components.manifolds import Euclid, Lorentz, Poincare
from bkdsl.diagnostics import BkError
from bkdsl.nn import gmvae as G
from bkdsl.nn import lorentz as L

LOR = Lorentz.from_args({"k": 1.0})
BALL = Poincare.from_args({"c": 1.0})


def _kl(manifold, prior_sigma=1.0):
    return KLWrappedNormal.from_args({"manifold": manifold, "prior_sigma": prior_sigma})


def errors(src):
    return [d for d in bkdsl.check_source(src) if d.is_error]


# ------------------------------------------------------------------------------------------ KL term
def test_kl_d1_matches_the_gaussian_closed_form():
    """On a 1-d hyperbolic space the log-Jacobian term vanishes and v ↦ z is an isometry of ℝ onto the
    geodesic, so KL(𝒢(exp₀ m, σ) ‖ 𝒢(o, s)) = log(s/σ) + (σ² + m²)/(2s²) − ½."""
    g = torch.Generator().manual_seed(0)
    n, m, sig, s = 200_000, 0.7, 0.3, 1.5
    mu = L.expmap0(torch.full((n, 1), m, dtype=torch.float64), 1.0)
    sigma = torch.full((n, 1), sig, dtype=torch.float64)
    z, _ = G.lorentz_wrapped_rsample(mu, sigma, 1.0, g)
    per = G.kl_sample(z, mu, sigma, "lorentz", 1.0, s)
    per = per.detach()
    est, se = float(per.mean()), float(per.std() / math.sqrt(n))
    exact = math.log(s / sig) + (sig ** 2 + m ** 2) / (2 * s ** 2) - 0.5
    assert abs(est - exact) < 4 * se, (est, exact, se)
    assert abs(float(_kl(LOR, s).evaluate_one(z, mu=mu, sigma=sigma)) - est) < 1e-12


def _log_normal(v, sigma):
    return (-0.5 * (v / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)


def test_kl_d2_matches_a_quadrature_written_independently():
    """d = 2, k = 1: KL = ∫ N(v; 0, σ²) [log N(v; 0, σ²) − log(sinh‖v‖/‖v‖) − log p(z(v))] dv with
    log p(z) = log N(u; 0, I) − log(sinh r / r), r = arcosh z₀ = ‖u‖ (the prior at o), on a grid over v;
    the loss term's Monte-Carlo mean agrees within 4 standard errors."""
    t = torch.tensor([0.8, -0.5], dtype=torch.float64)
    sig = torch.tensor([0.4, 0.25], dtype=torch.float64)
    mu1 = L.expmap0(t, 1.0)
    # quadrature over v ∈ [−7σ, 7σ]²
    k = 401
    a = torch.linspace(-7, 7, k, dtype=torch.float64)
    vx, vy = torch.meshgrid(a * sig[0], a * sig[1], indexing="ij")
    v = torch.stack([vx, vy], -1).reshape(-1, 2)
    dv = float((a[1] - a[0]) ** 2 * sig[0] * sig[1])
    z = L.hyperboloid(1.0).expmap(mu1.expand(len(v), 3), L.transp0(mu1.expand(len(v), 3), v, 1.0))
    rv = v.norm(dim=-1)
    log_q = _log_normal(v, sig) - torch.log(torch.sinh(rv) / rv)
    r = torch.acosh(z[:, 0])
    log_p = -0.5 * r ** 2 - math.log(2 * math.pi) - torch.log(torch.sinh(r) / r)
    w = torch.exp(_log_normal(v, sig)) * dv
    assert abs(float(w.sum()) - 1) < 1e-9
    exact = float((w * (log_q - log_p)).sum())
    # the loss term on reparameterised samples
    n = 100_000
    g = torch.Generator().manual_seed(1)
    mu = mu1.expand(n, 3)
    sigma = sig.expand(n, 2)
    zs = G.wrapped_normal_rsample(mu, sigma, "lorentz", 1.0, g)
    per = G.kl_sample(zs, mu, sigma, "lorentz", 1.0)
    se = float(per.std() / math.sqrt(n))
    est = float(_kl(LOR).evaluate_one(zs, mu=mu, sigma=sigma))
    assert exact > 0 and abs(est - exact) < 4 * se, (est, exact, se)


def test_kl_is_zero_when_the_posterior_is_the_prior():
    g = torch.Generator().manual_seed(2)
    sigma = torch.full((64, 3), 0.8, dtype=torch.float64)
    for model, man, mu in (("lorentz", LOR, L.expmap0(torch.zeros(64, 3, dtype=torch.float64), 1.0)),
                           ("poincare", BALL, torch.zeros(64, 3, dtype=torch.float64))):
        z = G.wrapped_normal_rsample(mu, sigma, model, 1.0, g)
        per = G.kl_sample(z, mu, sigma, model, 1.0, prior_sigma=0.8)
        assert per.abs().max() < 1e-9, (model, per.abs().max())
        assert abs(float(_kl(man, 0.8).evaluate_one(z, mu=mu, sigma=sigma))) < 1e-9


def test_kl_ball_equals_lorentz_through_the_isometry():
    g = torch.Generator().manual_seed(3)
    mu = L.expmap0(torch.randn(32, 2, generator=g, dtype=torch.float64), 1.0)
    sigma = 0.1 + torch.rand(32, 2, generator=g, dtype=torch.float64)
    z = G.wrapped_normal_rsample(mu, sigma, "lorentz", 1.0, g)
    a = _kl(LOR).evaluate_one(z, mu=mu, sigma=sigma)
    b = _kl(BALL).evaluate_one(L.to_poincare(z, 1.0), mu=L.to_poincare(mu, 1.0), sigma=sigma)
    assert abs(float(a - b)) < 1e-8


def test_kl_far_out_float32_point_stays_finite():
    """A float32 sample at x₀ ≈ 2·10³ misses the hyperboloid by ~0.5 in ⟨x, x⟩_L; without the float64
    re-projection log q was −10⁶ … −∞ in training (bench/hyperbolic_vae.py, β = 0)."""
    g = torch.Generator().manual_seed(4)
    d = torch.nn.functional.normalize(torch.randn(256, 2, generator=g, dtype=torch.float64), dim=-1)
    mu64 = L.expmap0(8.3 * d, 1.0)
    sigma = torch.full((256, 2), 1e-3, dtype=torch.float64)
    z64 = G.wrapped_normal_rsample(mu64, sigma, "lorentz", 1.0, g)
    exact = G.kl_sample(z64, mu64, sigma, "lorentz", 1.0)
    got = G.kl_sample(z64.float(), mu64.float(), sigma.float(), "lorentz", 1.0)
    assert torch.isfinite(got).all() and (got - exact).abs().max() < 0.5, (got - exact).abs().max()


def test_kl_gradients_reach_mean_and_scale():
    t = torch.randn(16, 2, dtype=torch.float64, requires_grad=True)
    ls = torch.zeros(16, 2, dtype=torch.float64, requires_grad=True)
    mu, sigma = L.expmap0(t, 1.0), torch.exp(ls)
    z = G.wrapped_normal_rsample(mu, sigma, "lorentz", 1.0, torch.Generator().manual_seed(5))
    _kl(LOR).evaluate_one(z, mu=mu, sigma=sigma).backward()
    assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0 and ls.grad.abs().sum() > 0


def test_kl_refuses_a_non_hyperbolic_manifold_and_missing_operands():
    with pytest.raises(BkError) as e:
        _kl(Euclid.from_args({}))
    assert e.value.diagnostic.code == "E0201" and "lorentz" in e.value.diagnostic.help
    with pytest.raises(BkError) as e:
        _kl(LOR).evaluate_one(torch.zeros(4, 3), mu=None, sigma=torch.ones(4, 2))
    assert e.value.diagnostic.code == "E0204"


def test_kl_returns_nan_for_nan_input_so_the_runner_stops():
    mu = L.expmap0(torch.zeros(4, 2), 1.0)
    z = mu.clone()
    z[0, 0] = float("nan")
    assert torch.isnan(_kl(LOR).evaluate_one(z, mu=mu, sigma=torch.ones(4, 2)))


# ------------------------------------------------------------------------------- isotropy loss terms
def test_mmd_and_effective_rank_terms_are_the_nn_functions():
    g = torch.Generator().manual_seed(6)
    t = torch.randn(200, 3, generator=g, dtype=torch.float64)
    squashed = t * torch.tensor([1.0, 0.1, 0.01], dtype=torch.float64)
    mmd = MMDIsotropy.from_args({"bandwidth": 1.5})
    assert float(mmd.evaluate_one(t)) == float(G.mmd_isotropy(t, 1.5))
    assert float(mmd.evaluate_one(squashed)) > 10 * abs(float(mmd.evaluate_one(t)))
    er = EffectiveRank.from_args({})
    assert 2.9 < float(er.evaluate_one(t)) <= 3.0 and float(er.evaluate_one(squashed)) < 1.5
    for term in (mmd, er):
        with pytest.raises(BkError) as e:
            term.evaluate_one((t, t))
        assert e.value.diagnostic.code == "E0204"
        with pytest.raises(BkError):
            term.evaluate_one(t[:, 0])
        bad = t.clone()
        bad[3, 1] = float("nan")
        assert torch.isnan(term.evaluate_one(bad))   # NaN in → NaN out (the runner stops with E0607)


# ----------------------------------------------------------------------------------- the sampler op
HEAD = "manifold lor = lorentz(k = 1.0)\nmanifold ball = poincare(c = 1.0)\n"


@pytest.mark.parametrize("man, d_out", [("lor", 4), ("ball", 3)])
def test_wrapped_normal_types_and_samples_on_the_manifold(man, d_out):
    src = HEAD + f"""model m {{
  input t : [B, 3]
  input s : [B, 3]
  output z = wrapped_normal(expmap0({man}, t), s)
}}
"""
    c = bkdsl.compile_source(src)
    sig = c.model_signature(c.main_call)
    assert sig.outputs["z"].shape == ("B", d_out) and sig.outputs["z"].manifold == man
    torch.manual_seed(0)
    t = torch.randn(500, 3, dtype=torch.float64)
    z = c.module.double()(t=t, s=torch.full((500, 3), 0.3, dtype=torch.float64))["z"]
    if man == "lor":
        resid = -z[:, 0] ** 2 + (z[:, 1:] ** 2).sum(-1) + 1.0
        assert resid.abs().max() < 1e-9 and (z[:, 0] > 0).all()
    else:
        assert (z.norm(dim=-1) < 1).all()
    # reparameterised: a second call draws new samples around the same means
    z2 = c.module(t=t, s=torch.full((500, 3), 0.3, dtype=torch.float64))["z"]
    assert not torch.equal(z, z2)


def test_wrapped_normal_refusals():
    (d,) = errors(HEAD + "model m {\n  input t : [B, 3]\n  output z = wrapped_normal(t, t)\n}\n")
    assert d.code == "E0402" and "expmap0(lor, t)" in d.help
    (d,) = errors(HEAD + "model m {\n  input t : [B, 3]\n  input s : [B, 4]\n"
                         "  output z = wrapped_normal(expmap0(lor, t), s)\n}\n")
    assert d.code == "E0401"
    (d,) = errors(HEAD + "model m {\n  input t : [B, 3]\n"
                         "  output z = wrapped_normal(expmap0(lor, t), expmap0(lor, t))\n}\n")
    assert d.code == "E0402" and "sigma" in d.message


# ------------------------------------------------------------------------------- the hyperbolic claim
CLAIM = HEAD + """block post : hyperbolic {{
  input t : [B, 2]
  input s : [B, 2]
  output {out}
}}
model m {{
  input t : [B, 2]
  output y = post(t, softplus(t))
}}
"""


def test_hyperbolic_claim_on_the_posterior_is_established():
    c = bkdsl.compile_source(CLAIM.format(out="wrapped_normal(expmap0(lor, t), s)"))
    (claim,) = c.ir.claims
    assert claim.prop == "hyperbolic" and claim.proof.holds and "wrapped_normal" in claim.proof.detail


def test_hyperbolic_claim_refused_for_a_tangent_latent():
    errs = errors(CLAIM.format(out="logmap0(lor, wrapped_normal(expmap0(lor, t), s))"))
    assert [d.code for d in errs] == ["E0301"] and "`logmap0` is not known to be hyperbolic" in errs[0].label
