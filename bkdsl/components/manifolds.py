"""Manifold components (geoopt) and the manifold-typed functional ops on them.

``manifold ball = poincare(c = 1.0)`` declares a ``geoopt.PoincareBall`` of curvature −c. Values typed
``on ball`` must be produced by ops that return points of ``ball`` (``expmap0``, ``mobius_add``,
``hyperbolic_moe``, …); Euclidean ops refuse them with a hint to take ``logmap0`` first (E0402).
The numerical guards near the boundary live in bkdsl/nn/poincare.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, InferCtx, Proof, component
from bkdsl.diagnostics import BkError
from bkdsl.lazy import lazy_function, lazy_module
from bkdsl.semantics.types import ValueType, broadcast

geoopt = lazy_module("geoopt")  # the manifolds' geoopt objects and the ops' torch code load when built


class _Curv(BaseModel):
    model_config = ConfigDict(extra="forbid")
    c: float = Field(1.0, gt=0, description="curvature magnitude c > 0 (the ball has curvature −c)")


class _Manifold(Component):
    kind = "manifold"

    def geoopt(self) -> geoopt.Manifold:  # pragma: no cover - each subclass defines it
        raise NotImplementedError


@component("poincare", kind="manifold")
class Poincare(_Manifold):
    """The Poincaré ball 𝔻ⁿ_c = {x : c‖x‖² < 1} with metric λ_x² g_E, λ_x = 2 / (1 − c‖x‖²)."""

    Params = _Curv
    guarantees = frozenset({"hyperbolic"})

    def geoopt(self) -> geoopt.Manifold:
        return geoopt.PoincareBall(c=self.params.c)


class _LorentzP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: float = Field(1.0, gt=0, description="the hyperboloid −x₀² + ‖x‖² = −k")


@component("lorentz", kind="manifold")
class Lorentz(_Manifold):
    """The hyperboloid (Lorentz) model — numerically safer than the ball far from the origin."""

    Params = _LorentzP
    guarantees = frozenset({"hyperbolic"})

    def geoopt(self) -> geoopt.Manifold:
        return geoopt.Lorentz(k=self.params.k)


@component("stiefel", kind="manifold")
class Stiefel(_Manifold):
    """Matrices with orthonormal columns, WᵀW = I (canonical metric). Maps by such W are isometries."""

    def geoopt(self) -> geoopt.Manifold:
        return geoopt.Stiefel()


@component("sphere", kind="manifold")
class Sphere(_Manifold):
    """The unit sphere ‖x‖ = 1."""

    def geoopt(self) -> geoopt.Manifold:
        return geoopt.Sphere()


@component("euclidean", kind="manifold")
class Euclid(_Manifold):
    """Flat space ℝⁿ: no constraint, the exponential map is x + v (the default manifold of a value)."""

    def geoopt(self) -> geoopt.Manifold:
        return geoopt.Euclidean()


# ------------------------------------------------------------------------------ ops on the ball
class _OnBall(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    manifold: Any = Field(None, description="a `manifold` declaration (poincare); inferred from the input when omitted")


def _ball(comp: Component, name: str, ctx: InferCtx) -> Component:
    if not isinstance(comp, Poincare):
        lor = isinstance(comp, Lorentz)
        raise BkError("E0402", f"`{name}` needs a Poincaré ball, got `{getattr(comp, 'decl_name', None) or comp}`",
                      span=ctx.span, help=("on the hyperboloid use the lorentz_* ops, or map with "
                                           "`lorentz_to_poincare(x, ball)` first") if lor
                      else "declare `manifold ball = poincare(c = 1.0)`")
    return comp


class _BallOp(Component):
    kind = "function"
    sequence = "pointwise"  # exp₀, log₀, ⊕ and d act on the last (feature) axis of each position
    Params = _OnBall
    accepts = "any"
    c: float = 1.0
    manifold_name: str | None = None

    def resolve_ball(self, ins: list[ValueType], ctx: InferCtx) -> str:
        m = self.params.manifold
        if m is not None:
            comp = _ball(m, self.name, ctx)
            name = comp.decl_name
        else:
            name = next((t.manifold for t in ins if t.manifold), None)
            if name is None:
                raise BkError("E0402", f"`{self.name}` needs to know the ball: no input lives on a manifold",
                              span=ctx.span, help=f"write `{self.name}(ball, ...)`")
            comp = _ball(ctx.manifolds[name], self.name, ctx)
        self.c = comp.params.c
        self.manifold_name = name
        return name

    def call_kwargs(self) -> dict[str, Any]:
        if self.k is not None:
            return {"k": self.k}
        return {"c": self.c}

    # -- ops that also act on the hyperboloid (expmap0, logmap0): the manifold picks the formula --
    k: float | None = None

    def resolve_hyperbolic(self, ins: list[ValueType], ctx: InferCtx) -> tuple[str, Component]:
        """The declared manifold (explicit, or the input's): a Poincaré ball or a Lorentz hyperboloid.
        On the hyperboloid ``function`` becomes the bkdsl.nn.lorentz form and the kwargs carry k."""
        m = self.params.manifold
        if m is not None:
            comp, name = m, m.decl_name
        else:
            name = next((t.manifold for t in ins if t.manifold), None)
            if name is None:
                raise BkError("E0402", f"`{self.name}` needs to know the manifold: no input lives on one",
                              span=ctx.span, help=f"write `{self.name}(ball, ...)`")
            comp = ctx.manifolds[name]
        if isinstance(comp, Lorentz):
            self.k = comp.params.k
            self.manifold_name = name
            return name, comp
        self.resolve_ball(ins, ctx)
        return name, comp


def _last_plus(t: ValueType, delta: int, ctx: InferCtx) -> ValueType:
    """The type with its last axis grown by ``delta`` (d ↔ d + 1 between ℝ^d and the hyperboloid); a
    symbolic last axis becomes a fresh symbol."""
    if not t.shape or delta == 0:
        return t
    d = ctx.uni.find(t.shape[-1])
    return t.with_(shape=(*t.shape[:-1], d + delta if isinstance(d, int) else ctx.uni.fresh()))


class _HyperbolicOp(_BallOp):
    """An op with a Poincaré-ball and a Lorentz form: ``function`` is the one :meth:`resolve_hyperbolic`
    chose (the Lorentz form once ``k`` is set)."""

    poincare_function: Any = None
    lorentz_function: Any = None

    @property
    def function(self):
        return self.lorentz_function if self.k is not None else self.poincare_function


@component("expmap0", kind="function", inputs=("x",), positional=("manifold", "x"))
class ExpMap0(_HyperbolicOp):
    """exp₀(v) = tanh(√c‖v‖) v / (√c‖v‖): a tangent vector at 0 → a point of the ball; on a Lorentz
    hyperboloid, v ∈ ℝ^d → exp_o((0, v)) ∈ ℝ^{d+1} (bkdsl.nn.lorentz)."""

    def infer(self, ins, ctx):
        if ins[0].manifold is not None:
            raise BkError("E0402", f"`expmap0` maps a Euclidean (tangent) vector; the value is already on "
                                   f"`{ins[0].manifold}`", span=ctx.span)
        name, comp = self.resolve_hyperbolic(ins, ctx)
        return _last_plus(ins[0], 1 if isinstance(comp, Lorentz) else 0, ctx).with_(manifold=name)

    poincare_function = lazy_function("bkdsl.nn.poincare", "expmap0")
    lorentz_function = lazy_function("bkdsl.nn.lorentz", "expmap0")


@component("logmap0", kind="function", inputs=("x",), positional=("manifold", "x"))
class LogMap0(_HyperbolicOp):
    """log₀(y) = artanh(√c‖y‖) y / (√c‖y‖): a point of the ball → the tangent space at 0 (Euclidean); on
    a Lorentz hyperboloid, x ∈ ℝ^{d+1} → the spatial part of log_o(x) ∈ ℝ^d (bkdsl.nn.lorentz)."""

    def infer(self, ins, ctx):
        name, comp = self.resolve_hyperbolic(ins, ctx)
        if ins[0].manifold != name:
            raise BkError("E0402", f"`logmap0` expects a value on `{name}`, got "
                                   f"{'a Euclidean value' if ins[0].manifold is None else ins[0].manifold}",
                          span=ctx.span)
        return _last_plus(ins[0], -1 if isinstance(comp, Lorentz) else 0, ctx).with_(manifold=None)

    poincare_function = lazy_function("bkdsl.nn.poincare", "logmap0")
    lorentz_function = lazy_function("bkdsl.nn.lorentz", "logmap0")


@component("mobius_add", kind="function", inputs=("x", "y"), positional=("x", "y", "manifold"))
class MobiusAdd(_BallOp):
    """x ⊕_c y = ((1 + 2c⟨x,y⟩ + c‖y‖²)x + (1 − c‖x‖²)y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)."""

    def infer(self, ins, ctx):
        name = self.resolve_ball(ins, ctx)
        for nm, t in zip(self.inputs, ins):
            if t.manifold != name:
                raise BkError("E0402", f"`mobius_add` needs both operands on `{name}`; `{nm}` is "
                                       f"{'Euclidean' if t.manifold is None else 'on ' + t.manifold}",
                              span=ctx.span, help=f"map it with `expmap0({name}, {nm})` first")
        shape = broadcast(ins[0], ins[1], ctx.uni, ctx.span, "`mobius_add`")
        return ins[0].with_(shape=shape, manifold=name)

    function = lazy_function("bkdsl.nn.poincare", "mobius_add")


@component("poincare_dist", kind="function", inputs=("x", "y"), positional=("x", "y", "manifold"))
class PoincareDist(_BallOp):
    """d_c(x, y) = (2/√c) artanh(√c ‖(−x) ⊕_c y‖)."""

    def infer(self, ins, ctx):
        name = self.resolve_ball(ins, ctx)
        for t in ins:
            if t.manifold != name:
                raise BkError("E0402", f"`poincare_dist` needs points on `{name}`", span=ctx.span)
        shape = broadcast(ins[0], ins[1], ctx.uni, ctx.span, "`poincare_dist`")
        return ValueType(shape[:-1] if shape else shape, "float", None, None)

    function = lazy_function("bkdsl.nn.poincare", "dist")


def proof_hyperbolic(comp: Component) -> Proof:
    return Proof(True, "analytic", f"`{comp.name}` returns points of the ball by construction (exp₀ / Möbius ops)")
