"""Ops on the Lorentz hyperboloid, the Lorentz ↔ Poincaré isometry, Möbius scalar multiplication and the
Möbius linear layer, and the Stiefel map (source 001 §3). Formulas: bkdsl/nn/lorentz.py.

``expmap0`` / ``logmap0`` (bkdsl/components/manifolds.py) act on either model; here are the ops
that are specific to one. Values on the hyperboloid are ``[..., d + 1]``; tangent vectors at the origin
are Euclidean ``[..., d]``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.components.manifolds import Lorentz, Poincare, Stiefel, _last_plus
from bkdsl.registry import Component, InferCtx, Proof, component
from bkdsl.diagnostics import BkError
from bkdsl.nn import lorentz
from bkdsl.semantics.types import ValueType, broadcast
from bkdsl.verify import probes


class _OnM(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    manifold: Any = Field(None, description="a `manifold` declaration; inferred from the input when omitted")


def _manifold_of(comp: Component, ins: list[ValueType], ctx: InferCtx, want: type, what: str) -> tuple[str, Component]:
    """The manifold an op acts on: its explicit ``manifold`` argument, else the first input's."""
    m = comp.params.manifold if "manifold" in comp.Params.model_fields else None
    if m is not None:
        name, man = m.decl_name, m
    else:
        name = next((t.manifold for t in ins if t.manifold), None)
        if name is None:
            raise BkError("E0402", f"`{comp.name}` needs a value on {what}; no input lives on a manifold",
                          span=ctx.span, help=f"map one there first, e.g. `expmap0(M, v)`")
        man = ctx.manifolds[name]
    if not isinstance(man, want):
        raise BkError("E0402", f"`{comp.name}` acts on {what}, got `{name}` ({man.name})", span=ctx.span,
                      help="declare `manifold lor = lorentz(k = 1.0)`" if want is Lorentz
                      else "declare `manifold ball = poincare(c = 1.0)`")
    return name, man


def _require_on(comp: Component, t: ValueType, name: str, what: str, ctx: InferCtx) -> None:
    if t.manifold != name:
        raise BkError("E0402", f"`{comp.name}` needs `{what}` on `{name}`, got "
                               f"{'a Euclidean value' if t.manifold is None else 'a value on ' + t.manifold}",
                      span=ctx.span, help=f"map it with `expmap0({name}, {what})` first")


class _LorentzOp(Component):
    kind = "function"
    Params = _OnM
    accepts = "any"
    k: float = 1.0

    def call_kwargs(self):
        return {"k": self.k}


@component("lorentz_dist", kind="function", inputs=("x", "y"), positional=("x", "y", "manifold"))
class LorentzDist(_LorentzOp):
    """d(x, y) = √k arcosh(−⟨x, y⟩_L / k) on the hyperboloid: [..., d+1] × [..., d+1] → [...]."""

    function = staticmethod(lorentz.dist)

    def infer(self, ins, ctx):
        name, man = _manifold_of(self, ins, ctx, Lorentz, "a Lorentz hyperboloid")
        self.k = man.params.k
        for nm, t in zip(self.inputs, ins):
            _require_on(self, t, name, nm, ctx)
        shape = broadcast(ins[0], ins[1], ctx.uni, ctx.span, "`lorentz_dist`")
        return ValueType(shape[:-1] if shape else shape, "float", None, None)


@component("lorentz_transp0", kind="function", inputs=("x", "v"), positional=("x", "v", "manifold"))
class LorentzTransp0(_LorentzOp):
    """Parallel transport of (0, v) ∈ T_oℍ to T_xℍ along the geodesic o → x (geoopt ``transp0``):
    x [..., d+1] on the hyperboloid, v [..., d] Euclidean → a tangent vector [..., d+1] (Euclidean-typed)."""

    function = staticmethod(lorentz.transp0)

    def infer(self, ins, ctx):
        name, man = _manifold_of(self, ins, ctx, Lorentz, "a Lorentz hyperboloid")
        self.k = man.params.k
        _require_on(self, ins[0], name, "x", ctx)
        if ins[1].manifold is not None:
            raise BkError("E0402", "`lorentz_transp0` transports a Euclidean tangent vector `v`", span=ctx.span)
        if ins[0].shape and ins[1].shape:
            ctx.uni.unify(_last_plus(ins[1], 1, ctx).shape[-1], ins[0].shape[-1], ctx.span,
                          "`lorentz_transp0`'s point (d + 1) and tangent vector (d)")
        return ins[0].with_(manifold=None)


class _IsoP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    manifold: Any = Field(description="the target `manifold` declaration")


def _check_curvatures(comp: Component, lor: Lorentz, ball: Poincare, ctx: InferCtx) -> None:
    k, c = lor.params.k, ball.params.c
    if abs(k * c - 1.0) > 1e-12:
        raise BkError("E0402", f"`{comp.name}` is an isometry only between curvatures that agree: the hyperboloid "
                               f"has k = {k:g} (curvature −1/k), the ball c = {c:g}; need c = 1/k = {1 / k:g}",
                      span=ctx.span, help=f"declare the ball as `poincare(c = {1 / k:g})`")


def _input_manifold(t, ctx, cls, need: str):
    """The declared manifold the input ``t`` lives on, which must be a ``cls``; E0402 (``need``, got …) otherwise."""
    src = t.manifold
    man = ctx.manifolds.get(src) if src else None
    if not isinstance(man, cls):
        raise BkError("E0402", f"{need}, got {'a Euclidean value' if src is None else 'a value on ' + src}",
                      span=ctx.span)
    return man


@component("lorentz_to_poincare", kind="function", inputs=("x",), positional=("x", "manifold"))
class LorentzToPoincare(Component):
    """π(x) = √k x_s / (x₀ + √k): the isometry ℍ_k → 𝔻_{1/k} ([..., d+1] → [..., d]). Compute on the
    hyperboloid, show on the ball."""

    kind = "function"
    Params = _IsoP
    accepts = "any"
    function = staticmethod(lorentz.to_poincare)
    k: float = 1.0

    def infer(self, ins, ctx):
        ball = self.params.manifold
        if not isinstance(ball, Poincare):
            raise BkError("E0402", "`lorentz_to_poincare` maps onto a Poincaré ball", span=ctx.span,
                          help="write `lorentz_to_poincare(x, ball)` with `manifold ball = poincare(c = 1.0)`")
        man = _input_manifold(ins[0], ctx, Lorentz, "`lorentz_to_poincare` needs a value on a Lorentz hyperboloid")
        _check_curvatures(self, man, ball, ctx)
        self.k = man.params.k
        return _last_plus(ins[0], -1, ctx).with_(manifold=ball.decl_name)

    def call_kwargs(self):
        return {"k": self.k}

    def prove(self, prop):
        if prop != "hyperbolic":
            return None
        return Proof(True, "analytic", "π maps ℍ_k onto 𝔻_{1/k} isometrically (‖π(x)‖ < √k since x₀ > ‖x_s‖)")


@component("poincare_to_lorentz", kind="function", inputs=("p",), positional=("p", "manifold"))
class PoincareToLorentz(Component):
    """π⁻¹(p) = (√k(1 + c‖p‖²), 2p) / (1 − c‖p‖²): the isometry 𝔻_{1/k} → ℍ_k ([..., d] → [..., d+1])."""

    kind = "function"
    Params = _IsoP
    accepts = "any"
    function = staticmethod(lorentz.from_poincare)
    k: float = 1.0

    def infer(self, ins, ctx):
        lor = self.params.manifold
        if not isinstance(lor, Lorentz):
            raise BkError("E0402", "`poincare_to_lorentz` maps onto a Lorentz hyperboloid", span=ctx.span,
                          help="write `poincare_to_lorentz(p, lor)` with `manifold lor = lorentz(k = 1.0)`")
        man = _input_manifold(ins[0], ctx, Poincare, "`poincare_to_lorentz` needs a value on a Poincaré ball")
        _check_curvatures(self, lor, man, ctx)
        self.k = lor.params.k
        return _last_plus(ins[0], 1, ctx).with_(manifold=lor.decl_name)

    def call_kwargs(self):
        return {"k": self.k}


class _SmulP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    r: float = Field(description="the scalar r of r ⊗_c x")
    manifold: Any = Field(None, description="the ball; inferred from the input when omitted")


@component("mobius_scalar_mul", kind="function", inputs=("x",), positional=("x", "r", "manifold"))
class MobiusScalarMul(Component):
    """r ⊗_c x = exp₀(r log₀(x)) = tanh(r artanh(√c‖x‖)) x/(√c‖x‖) on the Poincaré ball (Ganea et al.
    2018): d(0, r ⊗ x) = |r| d(0, x)."""

    kind = "function"
    Params = _SmulP
    accepts = "any"
    c: float = 1.0
    function = staticmethod(lorentz.mobius_scalar_mul)

    def infer(self, ins, ctx):
        name, man = _manifold_of(self, ins, ctx, Poincare, "a Poincaré ball")
        _require_on(self, ins[0], name, "x", ctx)
        self.c = man.params.c
        return ins[0]

    def call_kwargs(self):
        return {"r": self.params.r, "c": self.c}

    def prove(self, prop):
        if prop != "hyperbolic":
            return None
        return Proof(True, "analytic", "exp₀ returns points of the ball")


class _MobLinP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    out_features: int = Field(gt=0, description="d_out: the tangent dimension of the output")
    bias: bool = True
    manifold: Any = Field(None, description="the ball or hyperboloid; inferred from the input when omitted")


@component("mobius_linear", kind="layer", inputs=("x",), positional=("x", "out_features", "manifold"))
class MobiusLinearC(Component):
    """y = exp₀(W log₀(x) + b) on the manifold of x (Poincaré ball or Lorentz hyperboloid); W: [d_out, d_in]."""

    Params = _MobLinP
    accepts = "any"

    def infer(self, ins, ctx):
        m = self.params.manifold
        name = m.decl_name if m is not None else ins[0].manifold
        man = ctx.manifolds.get(name) if name else None
        if not isinstance(man, (Poincare, Lorentz)):
            raise BkError("E0402", "`mobius_linear` needs a value on a Poincaré ball or a Lorentz hyperboloid",
                          span=ctx.span, help="map it there with `expmap0(M, x)`; for Euclidean values use `linear`")
        _require_on(self, ins[0], name, "x", ctx)
        t = ins[0]
        d = ctx.uni.find(t.shape[-1]) if t.shape else None
        if not isinstance(d, int):
            raise BkError("E0404", f"`mobius_linear` needs the input size known, got {t.show()}", span=ctx.span)
        self.model = "lorentz" if isinstance(man, Lorentz) else "poincare"
        self.curv = man.params.k if self.model == "lorentz" else man.params.c
        self.d_in = d - 1 if self.model == "lorentz" else d
        d_out = self.params.out_features + (1 if self.model == "lorentz" else 0)
        return t.with_(shape=(*t.shape[:-1], d_out))

    def build(self):
        return lorentz.MobiusLinear(self.d_in, self.params.out_features, self.model, self.curv, self.params.bias)

    def prove(self, prop):
        if prop != "hyperbolic":
            return None
        return Proof(True, "analytic", "the output is exp₀ of a tangent vector: a point of the manifold")


@component("stiefel_map", kind="function", inputs=("x", "w"))
class StiefelMap(Component):
    """x ↦ W x for a parameter W [n, p] on a ``stiefel`` manifold (WᵀW = I): [..., p] → [..., n].
    Isometric: ‖Wx‖² = xᵀWᵀWx = ‖x‖² — proven for any point of the manifold, and probed."""

    accepts = "any"
    property_inputs = ("x",)  # isometric in x for the (fixed) parameter W
    function = staticmethod(lorentz.stiefel_map)

    def infer(self, ins, ctx):
        x, w = ins
        if x.manifold is not None:
            raise BkError("E0402", f"`stiefel_map` maps a Euclidean vector; `x` lives on `{x.manifold}`", span=ctx.span)
        man = ctx.manifolds.get(w.manifold) if w.manifold else None
        if not isinstance(man, Stiefel) or w.rank != 2:
            raise BkError("E0402", f"`stiefel_map` needs `w : [n, p] on` a stiefel manifold, got {w.show()}",
                          span=ctx.span, help="declare `manifold st = stiefel()` and `param W : [n, p] on st`")
        n, p = (ctx.uni.find(d) for d in w.shape)
        if isinstance(n, int) and isinstance(p, int) and n < p:
            raise BkError("E0401", f"a Stiefel matrix has at least as many rows as columns; got [{n}, {p}]",
                          span=ctx.span, help=f"use [{p}, {n}] and map the other way, or n ≥ p")
        if x.shape:
            ctx.uni.unify(x.shape[-1], w.shape[1], ctx.span, "`stiefel_map`'s input and W's columns")
        self.np = (n, p)
        return x.with_(shape=(*x.shape[:-1], w.shape[0]) if x.shape else None)

    def prove(self, prop):
        if prop not in ("isometric", "contractive"):
            return None
        n, p = self.np if hasattr(self, "np") and all(isinstance(d, int) for d in self.np) else (8, 5)
        # a random point of the manifold: the Q factor of a Gaussian matrix (geoopt.Stiefel.projx's polar
        # factor would do as well; QR is the float64 reference with WᵀW = I to 1e-16)
        w = torch.linalg.qr(torch.randn(n, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
        r = probes.probe_isometric(lambda x: lorentz.stiefel_map(x, w), p) if prop == "isometric" \
            else probes.probe_contractive(lambda x: lorentz.stiefel_map(x, w), p)
        rule = "WᵀW = I on the Stiefel manifold, so ‖Wx‖² = xᵀWᵀWx = ‖x‖²"
        if not r.ok:
            return Proof(False, "probe", f"{rule}, but the implementation fails the probe: {r.detail}")
        return Proof(True, "analytic+probe", f"{rule}; {r.detail}")
