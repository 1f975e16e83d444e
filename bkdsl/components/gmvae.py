r"""The Gaussian-manifold VAE in the language (source 001 §3; formulas in :mod:`bkdsl.nn.gmvae`).

``wrapped_normal(mu, sigma)`` (function)
    One reparameterised sample z = exp_μ(P_{o→μ}(v)), v = σ ⊙ ε, ε ~ N(0, I), on the manifold μ lives
    on: the hyperboloid ℍ_k (μ [..., d+1], σ [..., d]) or the ball 𝔻_c (μ, σ [..., d]). σ is a
    Riemannian length. ``hyperbolic``: z = exp_μ(·) is a point of the manifold by construction, so a
    block whose outputs are such samples establishes ``: hyperbolic`` (its type says so).

Loss terms over model tensors (they read ``model.OUT``; bkdsl/semantics/lossexpr.py):

``kl_wrapped_normal(model.z, mu = model.mu, sigma = model.sigma, manifold = M, prior_sigma = 1.0)``
    mean over the batch of log q(z | μ, σ) − log p(z): the one-sample Monte-Carlo estimate of
    KL(𝒢(μ, σ) ‖ 𝒢(o, s²I)), with the wrapped-normal density
    log 𝒢(z; μ, σ) = log N(v; 0, σ²) − (d − 1) log(√k sinh(r/√k)/r), evaluated in float64
    (unbiased; no closed form exists for d > 1). Dimensionless.
``mmd_isotropy(model.t, bandwidth = 1.0)``
    MMD² between the rows of t (e.g. log₀ z) and N(0, I) with a Gaussian kernel, the N(0, I)
    expectations in closed form. Dimensionless.
``effective_rank(model.t)``
    exp(H(s/Σs)) of the singular values of the centred t (1 … d); subtract it to reward an isotropic
    latent. Dimensionless.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.components.hyperbolic import _require_on
from bkdsl.components.manifolds import Lorentz, Poincare, _last_plus
from bkdsl.components.regularizers import Regularizer
from bkdsl.diagnostics import BkError
from bkdsl.nn import gmvae
from bkdsl.registry import Component, NoParams, Proof, component
from bkdsl.semantics.units import DIMENSIONLESS


def _model_and_curvature(man: Component) -> tuple[str, float]:
    return ("lorentz", man.params.k) if isinstance(man, Lorentz) else ("poincare", man.params.c)


# ------------------------------------------------------------------------------------- the sampler
class _WrappedP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    manifold: Any = Field(None, description="the ball or hyperboloid; inferred from `mu` when omitted")


@component("wrapped_normal", kind="function", inputs=("mu", "sigma"), positional=("mu", "sigma", "manifold"))
class WrappedNormal(Component):
    """z = exp_μ(P_{o→μ}(σ ⊙ ε)), ε ~ N(0, I): a reparameterised wrapped-normal sample on the manifold of μ."""

    kind = "function"
    Params = _WrappedP
    accepts = "any"
    sequence = "pointwise"
    function = staticmethod(gmvae.wrapped_normal_rsample)
    model: str = "lorentz"
    curv: float = 1.0

    def infer(self, ins, ctx):
        mu, sigma = ins
        want = (Lorentz, Poincare)
        m = self.params.manifold
        name = m.decl_name if m is not None else mu.manifold
        man = m if m is not None else (ctx.manifolds.get(name) if name else None)
        if not isinstance(man, want):
            raise BkError("E0402", "`wrapped_normal` samples on a Lorentz hyperboloid or a Poincaré ball; `mu` is "
                                   f"{'Euclidean' if mu.manifold is None else 'on ' + mu.manifold}",
                          span=ctx.span, help="map the mean there first: `mu = expmap0(lor, t)`")
        _require_on(self, mu, name, "mu", ctx)
        if sigma.manifold is not None:
            raise BkError("E0402", f"`wrapped_normal`'s `sigma` is a Euclidean scale vector; it lives on "
                                   f"`{sigma.manifold}`", span=ctx.span, help="e.g. `softplus(linear(h, d))`")
        self.model, self.curv = _model_and_curvature(man)
        if mu.shape and sigma.shape:
            d = 1 if self.model == "lorentz" else 0
            ctx.uni.unify(_last_plus(sigma, d, ctx).shape[-1], mu.shape[-1], ctx.span,
                          "`wrapped_normal`'s mean (d + 1 on the hyperboloid, d on the ball) and σ (d)")
        return mu

    def call_kwargs(self):
        return {"model": self.model, "curv": self.curv}

    def prove(self, prop):
        if prop != "hyperbolic":
            return None
        return Proof(True, "analytic", "z = exp_μ(P_{o→μ}(v)) is a point of the manifold for every tangent v")


# -------------------------------------------------------------------------------------- loss terms
class _KLP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    manifold: Any = Field(description="the `manifold` declaration z and mu live on (lorentz or poincare)")
    prior_sigma: float = Field(1.0, gt=0, description="σ of the prior 𝒢(o, σ²I) at the origin")


@component("kl_wrapped_normal", kind="loss")
class KLWrappedNormal(Regularizer):
    """mean of log q(z | μ, σ) − log p(z) (wrapped normals; one-sample Monte-Carlo KL); dimensionless."""

    Params = _KLP
    tensor_kwargs = ("mu", "sigma")

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        comp = super().from_args(kwargs, span, decl_name, arg_spans)
        if not isinstance(comp.params.manifold, (Lorentz, Poincare)):
            got = getattr(comp.params.manifold, "decl_name", None) or type(comp.params.manifold).__name__
            raise BkError("E0201", f"`kl_wrapped_normal` needs a hyperbolic `manifold` declaration, got `{got}`",
                          span=span, help="declare `manifold lor = lorentz(k = 1.0)` and pass `manifold = lor`")
        return comp

    USAGE = "`kl_wrapped_normal(model.z, mu = model.mu, sigma = model.sigma, manifold = M)`"

    def evaluate_one(self, x, mu=None, sigma=None):
        if isinstance(x, tuple) or mu is None or sigma is None:
            raise BkError("E0204", f"`kl_wrapped_normal` reads the sample and the posterior's parameters: {self.USAGE}")
        model, curv = _model_and_curvature(self.params.manifold)
        kl = gmvae.kl_sample(x, mu, sigma, model, curv, self.params.prior_sigma)
        return kl.mean().to(x.dtype)

    def loss_unit(self, u, mu=None, sigma=None):
        # called when the loss is checked (units), before any tensor exists: the place to refuse a
        # missing operand, so that `check` refuses what `train` would
        if mu is None or sigma is None:
            missing = " and ".join(k for k, v in (("mu", mu), ("sigma", sigma)) if v is None)
            raise BkError("E0204", f"`kl_wrapped_normal` needs {missing}: {self.USAGE}",
                          span=self.span, help="the posterior's mean and scale are model outputs; name them")
        return DIMENSIONLESS


class _MMDP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bandwidth: float = Field(1.0, gt=0, description="h of the Gaussian kernel exp(−‖x − y‖²/(2h²))")


def _one_tensor(name: str, x: Any) -> torch.Tensor:
    if isinstance(x, tuple) or x.ndim != 2:
        raise BkError("E0204", f"`{name}` reads one [batch, d] tensor of tangent vectors, e.g. `model.t` with "
                               "`output t = logmap0(lor, z)`",
                      help="name a model output, not all parameters of an op")
    return x


@component("mmd_isotropy", kind="loss")
class MMDIsotropy(Regularizer):
    """MMD² between the rows of t and N(0, I) (Gaussian kernel, closed-form expectations); dimensionless."""

    Params = _MMDP

    def evaluate_one(self, x):
        return gmvae.mmd_isotropy(_one_tensor(self.name, x), self.params.bandwidth)

    def loss_unit(self, u):
        return DIMENSIONLESS


@component("effective_rank", kind="loss")
class EffectiveRank(Regularizer):
    """exp(H(s/Σs)) of the centred rows' singular values (1 … d; d when isotropic); dimensionless."""

    Params = NoParams

    def evaluate_one(self, x):
        return gmvae.effective_rank(_one_tensor(self.name, x))

    def loss_unit(self, u):
        return DIMENSIONLESS


__all__ = ["WrappedNormal", "KLWrappedNormal", "MMDIsotropy", "EffectiveRank"]
