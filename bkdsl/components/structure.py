"""Structure components: bindings, fast weights, Hamiltonians, integrators, the AdS/CFT network, and
the data sources and losses of their worked specs.

Every claim a spec makes on one of these (``binding b = phasor_bind() : unitary``) is decided by
:meth:`prove`: an analytic rule first (why it holds, or why no rule applies), then a numerical probe
of the *built* implementation (:mod:`bkdsl.verify.probes`, float64, fixed seed) that can fail.
``Proof.how`` is ``"analytic+probe"`` for a proven claim, ``"probe"`` when the probe refutes it (the
properties pass reports E0302 with the numbers), ``"analytic"`` when an analytic rule refutes it or
nothing can establish it (E0301). ``None`` means the component cannot speak to that property.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bkdsl.registry import Component, Proof, component
from bkdsl.diagnostics import BkError
from bkdsl.semantics.types import ValueType
from bkdsl.verify import probes

PROBE_DIM = 64  # the binding probes' vector size (a multiple of k² for the GHRR block sizes we allow)


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def _refuted(name: str, prop: str, r: probes.ProbeResult, why: str = "") -> Proof:
    return Proof(False, "probe", f"`{name}` is not {prop}: {r.detail}" + (f" ({why})" if why else ""))


def _proven(rule: str, r: probes.ProbeResult) -> Proof:
    if not r.ok:  # the analytic rule and the implementation disagree: a bug, and said so
        return Proof(False, "probe", f"{rule}, but the implementation fails the probe: {r.detail}")
    return Proof(True, "analytic+probe", f"{rule}; {r.detail}")


def _unestablished(name: str, prop: str, r: probes.ProbeResult) -> Proof:
    """No analytic rule, the probe did not refute: a probe alone proves nothing."""
    return Proof(False, "analytic", f"no rule makes `{name}` {prop}; the probe saw {r.detail}, "
                                    "but a probe alone proves nothing")


def _last_dim(ins: list[ValueType], ctx, what: str) -> Any:
    t = ins[0]
    if not t.shape:
        raise BkError("E0401", f"{what} needs at least one axis, got {t.show()}", span=ctx.span)
    return ctx.uni.find(t.shape[-1])


# =============================================================================================
# bindings
# =============================================================================================
class _Binding(Component):
    inputs = ("x", "y")
    sequence = "pointwise"  # binds the feature vectors of each position

    def claim_inputs(self):
        """``prove`` speaks about y ↦ bind(x₀, y); a commutative binding is the same map in x."""
        comm = self.prove("commutative") if self.commutative_rule() is not None else None
        return ("x", "y") if comm is not None and comm.holds else ("y",)

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        if len(ins) == 2 and ins[0].shape and ins[1].shape:
            ctx.uni.unify(ins[0].shape[-1], ins[1].shape[-1], ctx.span, f"`{self.name}`'s key and value")
        return ins[1] if len(ins) > 1 else ins[0]

    def call_kwargs(self):
        return {}

    # the map y ↦ bind(x0, y) for a fixed random key x0, and its claimed inverse
    def _key(self, d: int) -> torch.Tensor:
        return torch.randn(d, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)

    def _bind(self, x, y):
        return type(self).function(x, y, **self.call_kwargs())

    def _unbind(self, z, x):  # None when there is no exact inverse
        return None

    def prove(self, prop: str) -> Proof | None:
        d = PROBE_DIM
        x0 = self._key(d)
        U = lambda y: self._bind(x0.expand_as(y), y)  # noqa: E731
        if prop == "commutative":
            r = probes.probe_commutative(self._bind, d)
            rule = self.commutative_rule()
            if rule is None:
                return _refuted(self.name, prop, r) if not r.ok else _unestablished(self.name, prop, r)
            return _proven(rule, r)
        if prop in ("unitary", "isometric", "contractive"):
            inv = self._unbind
            if prop == "unitary":
                r = probes.probe_unitary(U, d, inverse=(lambda z: inv(z, x0.expand_as(z))) if inv(x0, x0) is not None else None)
            elif prop == "isometric":
                r = probes.probe_isometric(U, d)
            else:
                r = probes.probe_contractive(U, d)
            rule = self.norm_rule(prop)
            if rule is None:
                return _refuted(self.name, prop, r, "for a random key x, y ↦ bind(x, y)") if not r.ok \
                    else _unestablished(self.name, prop, r)
            return _proven(rule, r)
        if prop == "reversible":
            if self._unbind(x0, x0) is None:
                r = probes.probe_reversible(U, lambda z: self._approx_unbind(z, x0.expand_as(z)), d)
                return _refuted(self.name, prop, r, "its unbinding is only approximate") if not r.ok \
                    else _unestablished(self.name, prop, r)
            r = probes.probe_reversible(U, lambda z: self._unbind(z, x0.expand_as(z)), d)
            return _proven(f"`{self.name}` has an exact unbinding", r)
        return None

    def commutative_rule(self) -> str | None:
        return None

    def norm_rule(self, prop: str) -> str | None:
        return None

    def _approx_unbind(self, z, x):
        return z


def _circular_conv(x, y):
    from bkdsl.nn.binding import circular_conv

    return circular_conv(x, y)


@component("circular_conv", kind="binding", inputs=("x", "y"))
class CircularConv(_Binding):
    """HRR binding x ⊛ y = F⁻¹(F x ⊙ F y) through rfft/irfft. Commutative; not unitary (the key's
    spectrum scales the value's); its unbinding (circular correlation) is approximate."""

    Params = _P
    function = staticmethod(_circular_conv)

    def commutative_rule(self):
        return "the convolution theorem: F x ⊙ F y = F y ⊙ F x"

    def _approx_unbind(self, z, x):
        from bkdsl.nn.binding import hrr_unbind

        return hrr_unbind(z, x)


class _PhasorP(_P):
    normalize: Literal["key", "both"] = Field(
        "key", description="key: F⁻¹(P(Fx) ⊙ Fy), unitary in y; both: F⁻¹(P(Fx) ⊙ P(Fy)) (source 001 §2.3.1)")


def _phasor_bind(x, y, normalize="key"):
    from bkdsl.nn.binding import phasor_bind

    return phasor_bind(x, y, normalize)


@component("phasor_bind", kind="binding", inputs=("x", "y"))
class PhasorBind(_Binding):
    """Phasor binding: the key's spectrum is normalised to unit modulus, so binding is an orthogonal
    circulant map of the value (unitary), inverted exactly by :func:`phasor_unbind`."""

    Params = _PhasorP
    function = staticmethod(_phasor_bind)

    def call_kwargs(self):
        return {"normalize": self.params.normalize}

    def _unbind(self, z, x):
        if self.params.normalize != "key":
            return None
        from bkdsl.nn.binding import phasor_unbind

        return phasor_unbind(z, x)

    def _approx_unbind(self, z, x):
        from bkdsl.nn.binding import phasor_unbind

        return phasor_unbind(z, x)

    def commutative_rule(self):
        if self.params.normalize == "both":
            return "P(Fx) ⊙ P(Fy) = P(Fy) ⊙ P(Fx)"
        return None

    def norm_rule(self, prop):
        if self.params.normalize == "key":
            return "|P(F x)_k| = 1 on every bin, so y ↦ F⁻¹(P ⊙ F y) is an orthogonal circulant (unitary)"
        return None


class _GHRRP(_P):
    k: int = Field(2, ge=1, le=8, description="block size: each vector is d/k² blocks of k × k matrices")


def _ghrr_bind(x, y, k=2):
    from bkdsl.nn.binding import ghrr_bind

    return ghrr_bind(x, y, k)


@component("ghrr_bind", kind="binding", inputs=("x", "y"))
class GHRRBind(_Binding):
    """Non-commutative binding for order-sensitive data: blockwise products with the key's blocks
    projected to O(k). Unitary in the value, exactly invertible; never commutative (the key is projected to O(k), the value is not)."""

    Params = _GHRRP
    function = staticmethod(_ghrr_bind)

    def call_kwargs(self):
        return {"k": self.params.k}

    def infer(self, ins, ctx):
        out = super().infer(ins, ctx)
        d = _last_dim(ins, ctx, "`ghrr_bind`")
        k2 = self.params.k ** 2
        if isinstance(d, int) and d % k2:
            raise BkError("E0401", f"`ghrr_bind(k = {self.params.k})` needs a size divisible by k² = {k2}, got {d}",
                          span=ctx.span)
        return out

    def _unbind(self, z, x):
        from bkdsl.nn.binding import ghrr_unbind

        return ghrr_unbind(z, x, self.params.k)

    def norm_rule(self, prop):
        return "each key block is orthogonal, so ‖Q y_j‖_F = ‖y_j‖_F (unitary)"

    def prove(self, prop):
        if PROBE_DIM % self.params.k ** 2:
            return None
        return super().prove(prop)


def _outer_bind(x, y):
    from bkdsl.nn.binding import outer_bind

    return outer_bind(x, y)


@component("outer_bind", kind="binding", inputs=("x", "y"))
class OuterBind(_Binding):
    """Tensor-product binding y ⊗ x → ``[..., d_y, d_x]`` (the binding of fast weights, source 001
    §4.2). Unbinding W x / ‖x‖² is exact for one pair. Not commutative: bind(y, x) = bind(x, y)ᵀ."""

    Params = _P
    function = staticmethod(_outer_bind)

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        x, y = ins
        return ValueType((y.shape or ())[:-1] + (y.shape[-1], x.shape[-1]) if x.shape and y.shape else None,
                         "float", None, None)

    def prove(self, prop):
        d = 16
        x0 = self._key(d)
        if prop == "commutative":
            r = probes.probe_commutative(_outer_bind, d)
            return _refuted(self.name, prop, r, "bind(y, x) is the transpose of bind(x, y)")
        if prop == "reversible":
            from bkdsl.nn.binding import outer_unbind

            r = probes.probe_reversible(lambda y: _outer_bind(x0.expand_as(y), y),
                                        lambda W: outer_unbind(W, x0.expand(W.shape[0], d)), d)
            return _proven("for one pair, W x / ‖x‖² = y (‖x‖² ≠ 0)", r)
        if prop in ("unitary", "isometric"):
            r = probes.probe_isometric(lambda y: _outer_bind(x0.expand_as(y), y), d)
            return _refuted(self.name, prop, r, f"‖y ⊗ x‖ = ‖x‖ ‖y‖ and ‖x‖ = {float(x0.norm()):.2f} for the probe key")
        return None


class _CirculantP(_P):
    n: int = Field(gt=0, description="vector size N (N parameters, O(N log N) per application)")
    spectrum: Literal["free", "phasor", "contractive"] = Field(
        "free", description="free: any circulant; phasor: unit-modulus spectrum (unitary); "
                            "contractive: each bin clipped to modulus ≤ 1")
    bias: bool = False


@component("circulant", kind="layer", inputs=("x",), positional=("x", "n"))
class Circulant(Component):
    """A CCNN layer y = w ⊛ x (+ b) held as its N-vector w (source 001 §2.3.2)."""
    sequence = "pointwise"  # a circulant on the feature axis of each position

    Params = _CirculantP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        d = _last_dim(ins, ctx, "`circulant`")
        ctx.uni.unify(d, self.params.n, ctx.span, "`circulant`'s size n and the input's last axis")
        return ins[0]

    def build(self):
        from bkdsl.nn.binding import CirculantLinear

        return CirculantLinear(self.params.n, self.params.spectrum, self.params.bias)

    def prove(self, prop):
        if prop not in ("unitary", "isometric", "contractive", "reversible"):
            return None
        torch.manual_seed(0)
        m = self.build().double()
        with torch.no_grad():
            if self.params.spectrum == "contractive":  # make some bins exceed 1 so clipping matters
                m.weight.mul_(4.0)
        n, sp, b = self.params.n, self.params.spectrum, self.params.bias
        if prop == "reversible":
            r = probes.probe_reversible(m, m.inverse, n)
            if sp == "phasor":
                return _proven("a phasor spectrum is inverted by its conjugate", r)
            return _refuted(self.name, prop, r) if not r.ok else _unestablished(self.name, prop, r)
        fn = m if not b else (lambda x: m(x) - m.bias)
        r = {"unitary": probes.probe_unitary, "isometric": probes.probe_isometric,
             "contractive": probes.probe_contractive}[prop](fn, n)
        if b and prop != "contractive":
            return Proof(False, "analytic", f"`circulant(bias = true)` is affine, not {prop}")
        if sp == "phasor":
            return _proven("|W_k| = 1 on every bin: an orthogonal circulant", r)
        if sp == "contractive" and prop == "contractive":
            return _proven("|W_k| ≤ 1 on every bin: ‖w ⊛ x‖ ≤ ‖x‖ (Parseval)", r)
        return _refuted(self.name, prop, r, f"spectrum = {sp}") if not r.ok else _unestablished(self.name, prop, r)


# =============================================================================================
# fast weights
# =============================================================================================
class _FastWeightP(_P):
    d_key: int = Field(32, gt=0, description="key/query size per head")
    d_value: int | None = Field(None, gt=0, description="value size per head (default d_key)")
    heads: int = Field(1, gt=0)
    rule: Literal["delta", "additive"] = Field("delta", description="delta rule (source 001 §4.3) or "
                                                                     "plain additive linear attention")
    normalize: bool = Field(True, description="divide by z_tᵀφ(q_t), z_t = Σ φ(k)")
    key_norm: bool = Field(False, description="L1-normalise φ(k), φ(q) (keeps β‖φ(k)‖² < 2)")
    mode: Literal["chunked", "recurrent"] = "chunked"
    chunk: int = Field(64, gt=0)


@component("fast_weight", kind="layer", inputs=("x",))
class FastWeight(Component):
    """Delta-rule fast-weight memory [B, T, d] → [B, T, d] (φ = ELU + 1, learned β_t, normaliser z_t)."""

    Params = _FastWeightP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if not t.shape or len(t.shape) != 3:
            raise BkError("E0401", f"`fast_weight` expects [B, T, d], got {t.show()}", span=ctx.span)
        d = ctx.uni.find(t.shape[-1])
        if not isinstance(d, int):
            raise BkError("E0404", "`fast_weight`'s model size must be known", span=ctx.span)
        self.d_model = d
        return t

    def build(self):
        from bkdsl.nn.fast_weights import FastWeightLayer

        p = self.params
        return FastWeightLayer(self.d_model, p.d_key, p.d_value, p.heads, p.rule, p.normalize, p.key_norm,
                               p.mode, p.chunk)


class _RecallNetP(_P):
    vocab: int = Field(gt=1, description="token vocabulary (keys, values, query marker)")
    d_model: int = Field(64, gt=0)
    d_key: int = Field(32, gt=0)
    heads: int = Field(1, gt=0)
    rule: Literal["delta", "additive"] = "delta"
    normalize: bool = True
    key_norm: bool = True


class _LastLogits(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, tokens):
        return self.net(tokens)[:, -1]


@component("fast_weight_recall_net", kind="layer", inputs=("tokens",))
class FastWeightRecallNet(Component):
    """tokens [B, T] → logits [B, vocab] at the last position (the query): embedding with a one-token
    shift, a fast-weight layer, an MLP read-out."""

    Params = _RecallNetP
    accepts = "any"

    def infer(self, ins, ctx):
        t = ins[0]
        if t.dtype != "int" or not t.shape or len(t.shape) != 2:
            raise BkError("E0401", f"`fast_weight_recall_net` expects int tokens [B, T], got {t.show()}", span=ctx.span)
        return ValueType((t.shape[0], self.params.vocab), "float", None, None)

    def build(self):
        from bkdsl.nn.fast_weights import FastWeightRecall

        p = self.params
        return _LastLogits(FastWeightRecall(p.vocab, p.d_model, p.d_key, p.heads, p.rule, p.normalize, p.key_norm))


# =============================================================================================
# Hamiltonians and their terms
# =============================================================================================
class _MassP(_P):
    mass: float = Field(1.0, gt=0)


class _KP(_P):
    k: float = Field(1.0, description="strength")


class _MLPPotP(_P):
    hidden: int = Field(64, gt=0)
    depth: int = Field(2, ge=1)
    dim: int | None = Field(None, gt=0, description="configuration-space size (default: the Hamiltonian's)")


class _Term(Component):
    def build_term(self, dim: int) -> torch.nn.Module:
        raise NotImplementedError


@component("quadratic_kinetic", kind="potential")
class QuadraticKineticC(_Term):
    """T(p) = |p|²/(2m)."""

    Params = _MassP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import QuadraticKinetic

        return QuadraticKinetic(self.params.mass)


@component("pendulum", kind="potential")
class PendulumC(_Term):
    """V(q) = k Σ(1 − cos q)."""

    Params = _KP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import PendulumPotential

        return PendulumPotential(self.params.k)


@component("harmonic", kind="potential")
class HarmonicC(_Term):
    """V(q) = k|q|²/2."""

    Params = _KP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import HarmonicPotential

        return HarmonicPotential(self.params.k)


@component("mlp_potential", kind="potential")
class MLPPotentialC(_Term):
    """A neural potential V(q) = MLP(q), tanh hidden layers."""

    Params = _MLPPotP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import MLPPotential

        return MLPPotential(self.params.dim or dim, self.params.hidden, self.params.depth)


def _term(v: Any) -> Any:
    if isinstance(v, Component) and not isinstance(v, _Term):
        raise ValueError(f"`{v.name}` is a {v.kind}, not a kinetic term or potential")
    if isinstance(v, str):
        from bkdsl.registry import lookup

        cls = lookup(v, "potential")
        if cls is None:
            raise ValueError(f"unknown potential `{v}`")
        return cls.from_args({})
    return v


class _SeparableP(_P):
    T: Any = Field(description="kinetic term, e.g. quadratic_kinetic(mass = 1.0)")
    V: Any = Field(description="potential, e.g. pendulum(k = 1.0) or mlp_potential(hidden = 64)")
    dim: int = Field(1, gt=0, description="configuration-space size n (phase space 2n)")

    _t = field_validator("T", "V", mode="before")(classmethod(lambda cls, v: _term(v)))

    @field_validator("T", "V")
    @classmethod
    def _is_term(cls, v):
        if not isinstance(v, _Term):
            raise ValueError("expected a kinetic term or potential component, e.g. `pendulum(k = 1.0)`")
        return v


class _Hamiltonian(Component):
    separable = False

    def build(self):
        raise NotImplementedError

    def describe(self):
        d = super().describe()
        d["separable"] = self.separable
        return d


@component("separable", kind="hamiltonian")
class Separable(_Hamiltonian):
    """H(q, p) = T(p) + V(q)."""

    Params = _SeparableP
    separable = True

    def build(self):
        from bkdsl.nn.hamiltonians import SeparableHamiltonian

        n = self.params.dim
        return SeparableHamiltonian(self.params.T.build_term(n), self.params.V.build_term(n), dim=n)

    def describe(self):
        show = lambda c: f"{c.name}({', '.join(f'{k} = {v}' for k, v in c.params.model_dump().items() if v is not None)})"  # noqa: E731
        return {"component": self.name, "kind": self.kind, "separable": True,
                "params": {"T": show(self.params.T), "V": show(self.params.V), "dim": self.params.dim}}


class _DimP(_P):
    dim: int = Field(1, gt=0)


@component("product_hamiltonian", kind="hamiltonian")
class ProductH(_Hamiltonian):
    """The non-separable H = ½ Σ (q² + 1)(p² + 1)."""

    Params = _DimP

    def build(self):
        from bkdsl.nn.hamiltonians import ProductHamiltonian

        return ProductHamiltonian(self.params.dim)


class _MLPHP(_P):
    dim: int = Field(1, gt=0)
    hidden: int = Field(64, gt=0)
    depth: int = Field(2, ge=1)


@component("mlp_hamiltonian", kind="hamiltonian")
class MLPH(_Hamiltonian):
    """A general neural H(q, p) (not separable)."""

    Params = _MLPHP

    def build(self):
        from bkdsl.nn.hamiltonians import MLPHamiltonian

        return MLPHamiltonian(self.params.dim, self.params.hidden, self.params.depth)


# =============================================================================================
# integrators
# =============================================================================================
def _hamiltonian(v: Any) -> Any:
    if v is None or isinstance(v, _Hamiltonian):
        return v
    if isinstance(v, Component):
        raise ValueError(f"`H` must be a hamiltonian, got the {v.kind} `{v.name}`")
    raise ValueError("`H` must name a hamiltonian declaration, e.g. `H = pend`")


class _IntegratorP(_P):
    H: Any = Field(None, description="the Hamiltonian (a `hamiltonian` declaration); default: a "
                                     "separable test H (anharmonic pendulum) for the probes")
    dt: float = Field(0.1, description="step size")
    steps: int = Field(1, ge=1, description="steps per application")
    reversible: bool = Field(False, description="backpropagate by integrating backward (O(1) memory)")

    _h = field_validator("H", mode="before")(classmethod(lambda cls, v: _hamiltonian(v)))


def _test_hamiltonian(dim: int = 2):
    """What an integrator without H is probed on: a separable, strongly nonlinear H (a pendulum in
    each coordinate plus a quartic coupling), so a non-structured method shows its error."""
    from bkdsl.nn.hamiltonians import QuadraticKinetic, SeparableHamiltonian

    class _V(torch.nn.Module):
        def forward(self, q):
            return (1 - torch.cos(q)).sum(-1) + 0.25 * (q ** 2).sum(-1) ** 2

    return SeparableHamiltonian(QuadraticKinetic(1.0), _V(), dim=dim)


class _Integrator(Component):
    method = ""
    inputs = ("x",)
    Params = _IntegratorP
    sequence = "pointwise"  # integrates the phase-space vector [q, p] of each position

    def validate(self) -> None:
        """What the declaration alone already refuses (E0201), checked by the claims pass at check time."""
        self._check_method()

    def probe_elements(self) -> int:
        # the probes use at most 8 steps on a 2·dim phase space, whatever `steps` says
        dim = getattr(self.params.H.params, "dim", 1) if self.params.H is not None else 1
        return 64 * (2 * int(dim)) ** 2

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        d = _last_dim(ins, ctx, f"`{self.name}`")
        if isinstance(d, int) and d % 2:
            raise BkError("E0401", f"`{self.name}` integrates phase space [q, p]; its last axis must be even, got {d}",
                          span=ctx.span)
        H = self.params.H
        if H is not None and isinstance(d, int) and getattr(H.params, "dim", d // 2) != d // 2:
            raise BkError("E0401", f"`{self.name}`: the state has {d // 2} coordinates but H has "
                                   f"dim = {H.params.dim}", span=ctx.span)
        self._check_method(ctx.span)
        return ins[0]

    def _check_method(self, span=None):
        from bkdsl.nn.integrators import INVERTIBLE, NEEDS_SEPARABLE

        H = self.params.H
        if self.method in NEEDS_SEPARABLE and H is not None and not H.separable:
            raise BkError("E0201", f"`{self.name}` is explicit only for a separable H = T(p) + V(q); "
                                   f"`{H.decl_name or H.name}` is not separable", span=span or self.span,
                          help="use implicit_midpoint (symplectic for any H) or rk4")
        if self.params.reversible and self.method not in INVERTIBLE:
            raise BkError("E0201", f"`{self.name}` has no exact inverse, so `reversible = true` cannot "
                                   "backpropagate by integrating backward", span=span or self.span,
                          help="use leapfrog, symplectic_euler, yoshida4 or implicit_midpoint")

    def describe(self):
        H = self.params.H
        params = self.params.model_dump(exclude={"H"})
        params["H"] = (H.decl_name or H.name) if H is not None else None
        return {"component": self.name, "kind": self.kind, "params": params}

    def hamiltonian(self):
        H = self.params.H
        return H.build() if H is not None else _test_hamiltonian()

    def build(self):
        from bkdsl.nn.integrators import Integrator

        self._check_method()
        p = self.params
        return Integrator(self.hamiltonian(), self.method, p.dt, p.steps, p.reversible)

    def _probe_flow(self):
        from bkdsl.nn.integrators import Integrator, NEEDS_SEPARABLE

        torch.manual_seed(0)
        H = self.hamiltonian().double()
        if self.method in NEEDS_SEPARABLE and not H.separable:
            return None, H
        p = self.params
        # the probe flow: the declared step, at most 8 steps (symplecticity composes, and the
        # deviation of a non-symplectic method only grows with more steps)
        return Integrator(H, self.method, p.dt, min(p.steps, 8)), H

    def prove(self, prop):
        from bkdsl.nn.integrators import INVERTIBLE, NEEDS_SEPARABLE, SYMPLECTIC

        H = self.params.H
        nonsep = H is not None and not H.separable
        if prop == "symplectic":
            if self.method in NEEDS_SEPARABLE and nonsep:
                return Proof(False, "analytic", f"`{self.name}` is symplectic only for a separable H; "
                                                f"`{H.decl_name or H.name}` is not separable")
            flow, Hm = self._probe_flow()
            r = probes.probe_symplectic(flow, 2 * Hm.dim)
            if self.method in SYMPLECTIC:
                rule = {"leapfrog": "leapfrog on a separable H is a composition of symplectic shears",
                        "symplectic_euler": "symplectic Euler on a separable H is a composition of two shears",
                        "yoshida4": "Yoshida's triple jump composes symplectic leapfrog steps",
                        "implicit_midpoint": "the implicit midpoint rule is symplectic for every H "
                                             "(a Gauss–Legendre collocation method)"}[self.method]
                return _proven(rule, r)
            return _refuted(self.name, prop, r) if not r.ok else _unestablished(self.name, prop, r)
        if prop == "reversible":
            flow, Hm = self._probe_flow()
            if flow is None:
                return Proof(False, "analytic", f"`{self.name}` needs a separable H")
            d = 2 * Hm.dim
            if self.method in INVERTIBLE:
                r = probes.probe_reversible(flow, lambda x: torch.cat(flow.backward_flow(*x.chunk(2, -1)), -1), d)
                rule = ("symplectic Euler is inverted by its adjoint (drift back, then kick back)"
                        if self.method == "symplectic_euler" else
                        f"`{self.name}` is time-symmetric: the step with −dt inverts it")
                return _proven(rule, r)
            # no exact inverse: show what running it backward does
            from bkdsl.nn.integrators import STEPS

            def back(x):
                q, p = x.chunk(2, -1)
                for _ in range(flow.steps):
                    q, p = STEPS[self.method](Hm, q, p, -flow.dt)
                return torch.cat([q, p], -1)

            r = probes.probe_reversible(flow, back, d)
            return _refuted(self.name, prop, r, "it has no exact inverse; the probe runs it with −dt")
        return None


def _integrator(name: str, method: str, doc: str):
    cls = type(f"Integrator_{name}", (_Integrator,), {"method": method, "__doc__": doc})
    return component(name, kind="integrator", inputs=("x",))(cls)


_integrator("euler", "euler", "Explicit Euler: order 1, not symplectic, no exact inverse.")
_integrator("rk4", "rk4", "Classical Runge–Kutta: order 4, not symplectic, no exact inverse.")
_integrator("symplectic_euler", "symplectic_euler", "Symplectic Euler (kick-drift): order 1, symplectic, reversible.")
_integrator("leapfrog", "leapfrog", "Leapfrog / velocity Verlet: order 2, symplectic, time-symmetric.")
_integrator("verlet", "leapfrog", "Velocity Verlet (= leapfrog).")
_integrator("yoshida4", "yoshida4", "Yoshida's 4th-order triple jump of leapfrogs: symplectic, time-symmetric.")
_integrator("implicit_midpoint", "implicit_midpoint",
            "Implicit midpoint: order 2, symplectic for any H, time-symmetric (fixed-point solve to 1e-14).")


# =============================================================================================
# the AdS/CFT network
# =============================================================================================
class _BulkP(_P):
    m2: float = Field(-1.0, description="scalar mass squared m²")
    lam: float = Field(1.0, description="quartic coupling λ (V = λφ⁴/4)")
    eta_ini: float = Field(1.0, gt=0, description="radial cut-off near the boundary")
    eta_fin: float = Field(0.1, gt=0, description="radial position near the horizon")


class _AdSNetP(_BulkP):
    layers: int = Field(20, gt=0, description="layers N = integrator steps from η_ini to η_fin")
    layer: Literal["rk4", "euler"] = "rk4"
    init: float = Field(1.0, description="the constant every learned h(η_n) starts from")


class _AdSModule(torch.nn.Module):
    """x [B, 2] → [B, 1 + N]: the horizon residual F, then the learned h(η_n) (per sample, so the
    runner's metrics can compare it with the data's h_true)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        F = self.net(x)
        return torch.cat([F.unsqueeze(-1), self.net.h.unsqueeze(0).expand(F.shape[0], -1)], dim=-1)


@component("ads_network", kind="layer", inputs=("x",))
class AdSNetworkC(Component):
    """The AdS/CFT deep-learning network: boundary (φ, π) → [F, h(η_1) … h(η_N)]; layers are RK4 (or
    Euler) steps of the bulk EOM, weights the metric h(η_n) (bkdsl/nn/ads.py)."""

    Params = _AdSNetP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if not t.shape or ctx.uni.find(t.shape[-1]) not in (2,) and isinstance(ctx.uni.find(t.shape[-1]), int):
            raise BkError("E0401", f"`ads_network` takes boundary data (φ, π) [B, 2], got {t.show()}", span=ctx.span)
        return ValueType(tuple(t.shape[:-1]) + (1 + self.params.layers,), "float", None, None)

    def build(self):
        from bkdsl.nn.ads import AdSNetwork, Bulk

        p = self.params
        return _AdSModule(AdSNetwork(p.layers, p.layer, Bulk(p.m2, p.lam, p.eta_ini, p.eta_fin), p.init))


def _metric_spec(v: Any) -> tuple[str, dict]:
    from bkdsl.semantics.values import CallValue, Ref

    if isinstance(v, str):
        return v, {}
    if isinstance(v, Ref):
        return v.path, {}
    if isinstance(v, CallValue):
        return v.name, dict(v.kwargs)
    if isinstance(v, dict):
        d = dict(v)
        return d.pop("name"), d
    raise ValueError("expected a bulk metric such as `ads_schwarzschild(d = 3)`")


class _AdSDataP(_BulkP):
    metric: Any = Field("ads_schwarzschild", description="bulk metric: ads_schwarzschild(d = 3), "
                                                           "deformed_bh(...), horizon_series(coeffs = [...])")
    samples: int = Field(2000, gt=0)
    label: Literal["response", "horizon"] = "response"
    eps: float = Field(0.1, gt=0, description="horizon mode: |F| < eps is regular")
    layers: int = Field(20, gt=0, description="h_true is tabulated at the network's layer midpoints")
    substeps: int = Field(2000, gt=0, description="RK4 steps of the data generator's solver")
    split: list[float] | None = None
    normalize: Any = None
    augment: list[Any] | None = None
    seed: int | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v):
        from bkdsl.nn.ads import METRICS

        name, kw = _metric_spec(v)
        if name not in METRICS:
            raise ValueError(f"unknown bulk metric `{name}`; known: {', '.join(sorted(METRICS))}")
        try:
            METRICS[name](**kw)
        except TypeError as e:
            raise ValueError(f"bad parameters for `{name}`: {e}") from None
        return v


@component("ads_response", kind="data")
class AdSResponse(Component):
    """Boundary response data generated from a bulk metric: fields ``x`` [2] = (φ, π) at η_ini,
    ``F`` [1] the horizon residual (``label = response``) or ``y`` the paper's regular/irregular
    label (``label = horizon``), and ``h`` [layers] the true metric at the layer midpoints."""

    Params = _AdSDataP
    unnormalized_fields = ("x", "F", "y", "h")

    @classmethod
    def declared_fields(cls, call):
        return {"x": "1", "F": "1", "y": "1", "h": "1"}

    def metric_fn(self):
        from bkdsl.nn.ads import metric

        name, kw = _metric_spec(self.params.metric)
        return metric(name, **kw)

    def fields(self):
        from bkdsl.train.data import FieldInfo

        n = self.params.layers
        return {"x": FieldInfo("x", shape=(2,)), "F": FieldInfo("F", shape=(1,)), "y": FieldInfo("y", shape=(1,)),
                "h": FieldInfo("h", shape=(n,))}

    def generate(self, seed: int = 0) -> dict[str, torch.Tensor]:
        from bkdsl.nn.ads import Bulk, generate_response

        p = self.params
        bulk = Bulk(p.m2, p.lam, p.eta_ini, p.eta_fin)
        h = self.metric_fn()
        d = generate_response(h, p.samples, bulk, label=p.label, eps=p.eps, seed=seed, substeps=p.substeps)
        edges = torch.linspace(p.eta_ini, p.eta_fin, p.layers + 1, dtype=torch.float64)
        h_true = h(0.5 * (edges[1:] + edges[:-1]))
        n = len(d["x"])
        return {"x": d["x"].float(), "F": d["F"].unsqueeze(-1).float(), "y": d["y"].unsqueeze(-1).float(),
                "h": h_true.unsqueeze(0).expand(n, -1).float().contiguous()}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.data import Dataset

        fields = self.generate(seed if self.params.seed is None else self.params.seed)
        return Dataset(fields, self.fields(), meta={"source": "ads_response"})


# =============================================================================================
# data sources of the worked specs
# =============================================================================================
class _RecallP(_P):
    samples: int = Field(4096, gt=0)
    pairs: int = Field(24, gt=0, description="key–value pairs written before the query")
    keys: int = Field(8, gt=0, description="distinct keys (fewer keys than pairs: keys are rewritten)")
    values: int = Field(16, gt=0, description="distinct values")
    split: list[float] | None = None
    normalize: Any = None
    augment: list[Any] | None = None
    seed: int | None = None


def associative_recall(samples: int, pairs: int, keys: int, values: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Sequences k₁ v₁ k₂ v₂ … k_P v_P q with keys drawn (with repeats) from ``keys`` symbols and values
    from ``values``; the target is the value written *last* for q. Token ids: keys 0…K−1, values
    K…K+V−1. Rewrites are what separates the delta rule (which replaces the old value) from the
    additive update (which averages old and new: source 001 §4.2's retrieval collapse)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, keys, (samples, pairs), generator=g)
    v = torch.randint(0, values, (samples, pairs), generator=g)
    qi = torch.randint(0, pairs, (samples,), generator=g)
    q = k[torch.arange(samples), qi]
    # the last position at which q was written
    hit = (k == q.unsqueeze(1))
    last = (hit * torch.arange(pairs).unsqueeze(0)).argmax(1)
    target = v[torch.arange(samples), last] + keys
    seq = torch.stack([k, v + keys], dim=2).reshape(samples, 2 * pairs)
    tokens = torch.cat([seq, q.unsqueeze(1)], dim=1)
    return {"tokens": tokens, "answer": target}


@component("associative_recall", kind="data")
class AssociativeRecall(Component):
    Params = _RecallP
    unnormalized_fields = ("tokens", "answer")

    @classmethod
    def declared_fields(cls, call):
        return {"tokens": "1", "answer": "1"}

    def fields(self):
        from bkdsl.train.data import FieldInfo

        return {"tokens": FieldInfo("tokens", shape=(2 * self.params.pairs + 1,), dtype="int"),
                "answer": FieldInfo("answer", shape=(), dtype="int")}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.data import Dataset

        p = self.params
        return Dataset(associative_recall(p.samples, p.pairs, p.keys, p.values, seed if p.seed is None else p.seed),
                       self.fields(), meta={"source": "associative_recall"})


class _TrajP(_P):
    samples: int = Field(1024, gt=0, description="(state, next state) pairs")
    dt: float = Field(0.1, gt=0, description="time between the two states")
    k: float = Field(1.0, gt=0, description="pendulum strength (ω₀² = k/m)")
    mass: float = Field(1.0, gt=0)
    energy: list[float] = Field([0.1, 1.5], description="range of H for the initial states")
    split: list[float] | None = None
    normalize: Any = None
    augment: list[Any] | None = None
    seed: int | None = None


def pendulum_pairs(samples: int, dt: float, k: float = 1.0, mass: float = 1.0, energy=(0.1, 1.5),
                   seed: int = 0, time_reverse: bool = False) -> dict[str, torch.Tensor]:
    """Pendulum states x = (q, p) with H uniform in ``energy`` and random phase, and x' the state dt
    later (exact up to a 1000-substep Yoshida-4 solve, error ~1e-13). ``time_reverse`` appends the
    reversed pairs ((q', −p') → (q, −p)), source 000 §4.3."""
    from bkdsl.nn.hamiltonians import PendulumPotential, QuadraticKinetic, SeparableHamiltonian
    from bkdsl.nn.integrators import Integrator

    g = torch.Generator().manual_seed(seed)
    E = energy[0] + (energy[1] - energy[0]) * torch.rand(samples, 1, generator=g, dtype=torch.float64)
    q0 = torch.zeros(samples, 1, dtype=torch.float64)
    p0 = torch.sqrt(2 * mass * E)
    H = SeparableHamiltonian(QuadraticKinetic(mass), PendulumPotential(k), dim=1)
    # a random phase: run each state for a random time up to one small-amplitude period
    T = 2 * torch.pi * (mass / k) ** 0.5
    t0 = T * torch.rand(samples, 1, generator=g, dtype=torch.float64)
    sub = 400
    q, p = q0, p0
    fine = Integrator(H, "yoshida4", 1.0, 1)
    with torch.no_grad():
        for _ in range(sub):
            q, p = fine.step(q, p, dt=t0 / sub)
        q1, p1 = q, p
        for _ in range(1000):
            q1, p1 = fine.step(q1, p1, dt=dt / 1000)
    x, x1 = torch.cat([q, p], 1), torch.cat([q1, p1], 1)
    if time_reverse:
        x, x1 = torch.cat([x, torch.cat([q1, -p1], 1)]), torch.cat([x1, torch.cat([q, -p], 1)])
    return {"x": x.float(), "x_next": x1.float()}


@component("hamiltonian_trajectories", kind="data")
class HamiltonianTrajectories(Component):
    """Pendulum (state, state dt later) pairs: fields ``x`` [2], ``x_next`` [2]."""

    Params = _TrajP
    unnormalized_fields = ("x", "x_next")

    @classmethod
    def declared_fields(cls, call):
        return {"x": "1", "x_next": "1"}

    def fields(self):
        from bkdsl.train.data import FieldInfo

        return {"x": FieldInfo("x", shape=(2,)), "x_next": FieldInfo("x_next", shape=(2,))}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.data import Dataset

        p = self.params
        return Dataset(pendulum_pairs(p.samples, p.dt, p.k, p.mass, tuple(p.energy), seed if p.seed is None else p.seed),
                       self.fields(), meta={"source": "hamiltonian_trajectories"})


class _HoloP(_P):
    samples: int = Field(2048, gt=0)
    dim: int = Field(64, gt=0, description="signal length N")
    seed: int | None = None
    split: list[float] | None = None
    normalize: Any = None
    augment: list[Any] | None = None


def holographic_task(samples: int, dim: int, seed: int = 0, channel_seed: int = 99) -> dict[str, torch.Tensor]:
    """Channel equalisation: y = c ⊛ x with c a fixed random all-pass (phasor) filter, the target is
    x. The inverse filter is an orthogonal circulant (conj spectrum) — exactly what holographic
    weight synthesis with phasor binding represents (source 001 §2)."""
    from bkdsl.nn.binding import circular_conv, random_phasor

    c = random_phasor(dim, generator=torch.Generator().manual_seed(channel_seed))
    x = torch.randn(samples, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return {"signal": circular_conv(c.expand_as(x), x).float(), "clean": x.float()}


@component("holographic_task", kind="data")
class HolographicTask(Component):
    Params = _HoloP
    unnormalized_fields = ("signal", "clean")

    @classmethod
    def declared_fields(cls, call):
        return {"signal": "1", "clean": "1"}

    def fields(self):
        from bkdsl.train.data import FieldInfo

        return {"signal": FieldInfo("signal", shape=(self.params.dim,)),
                "clean": FieldInfo("clean", shape=(self.params.dim,))}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.data import Dataset

        p = self.params
        return Dataset(holographic_task(p.samples, p.dim, seed if p.seed is None else p.seed), self.fields(),
                       meta={"source": "holographic_task"})


# =============================================================================================
# layers of the worked specs: holographic weight synthesis, a Hamiltonian flow model
# =============================================================================================
class _HoloStackP(_P):
    n: int = Field(gt=0, description="signal length N")
    depth: int = Field(8, gt=0, description="synthesised circulant layers in sequence")
    binding: Literal["phasor", "hrr"] = Field("phasor", description="how each layer's weight is synthesised")


@component("holographic_stack", kind="layer", inputs=("x",), positional=("x", "n"))
class HolographicStackC(Component):
    """``depth`` circulant layers whose N-vector weights are synthesised by binding a learned role with
    a learned filler: w_l = bind(r_l, f_l) (phasor: F⁻¹(P(Fr) ⊙ P(Ff)); hrr: r ⊛ f)."""

    Params = _HoloStackP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        ctx.uni.unify(_last_dim(ins, ctx, "`holographic_stack`"), self.params.n, ctx.span,
                      "`holographic_stack`'s n and the input's last axis")
        return ins[0]

    def build(self):
        from bkdsl.nn.binding import HolographicStack

        return HolographicStack(self.params.n, self.params.depth, self.params.binding)

    def prove(self, prop):
        if prop not in ("unitary", "isometric"):
            return None
        torch.manual_seed(0)
        m = self.build().double()
        r = {"unitary": probes.probe_unitary, "isometric": probes.probe_isometric}[prop](m, self.params.n)
        if self.params.binding == "phasor":
            return _proven("every synthesised weight has a unit-modulus spectrum; a product of orthogonal "
                           "circulants is orthogonal (composition)", r)
        return _refuted(self.name, prop, r, "HRR-synthesised weights scale each bin by |R_k||F_k|")


class _HamFlowP(_P):
    method: Literal["euler", "rk4", "symplectic_euler", "leapfrog", "yoshida4", "implicit_midpoint"] = "leapfrog"
    dt: float = Field(0.1, gt=0, description="time per application")
    steps: int = Field(1, ge=1, description="integrator steps per application (substep dt/steps)")
    hidden: int = Field(64, gt=0, description="width of the neural potential V(q)")
    depth: int = Field(2, ge=1)
    mass: float = Field(1.0, gt=0)


@component("hamiltonian_flow", kind="layer", inputs=("x",))
class HamiltonianFlowC(Component):
    """A learned separable Hamiltonian T(p) + V_θ(q) (neural V) advanced by ``method``: x [B, 2n] →
    x after ``dt``. Claims on it are decided as for the integrator of that method."""

    Params = _HamFlowP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        d = _last_dim(ins, ctx, "`hamiltonian_flow`")
        if not isinstance(d, int) or d % 2:
            raise BkError("E0401", f"`hamiltonian_flow` needs a known even last axis [q, p], got {ins[0].show()}",
                          span=ctx.span)
        self.dim = d // 2
        return ins[0]

    def build(self):
        from bkdsl.nn.hamiltonians import MLPPotential, QuadraticKinetic, SeparableHamiltonian
        from bkdsl.nn.integrators import Integrator

        p = self.params
        n = getattr(self, "dim", 1)
        H = SeparableHamiltonian(QuadraticKinetic(p.mass), MLPPotential(n, p.hidden, p.depth), dim=n)
        return Integrator(H, p.method, p.dt / p.steps, p.steps)

    def prove(self, prop):
        proxy = _INTEGRATOR_BY_METHOD[self.params.method].from_args({"dt": self.params.dt / self.params.steps,
                                                                    "steps": self.params.steps})
        proxy.hamiltonian = lambda: self.build().H  # probe the neural H itself
        return proxy.prove(prop)


_INTEGRATOR_BY_METHOD = {}


def _fill_methods():
    from bkdsl.registry import lookup

    for m in ("euler", "rk4", "symplectic_euler", "leapfrog", "yoshida4", "implicit_midpoint"):
        _INTEGRATOR_BY_METHOD[m] = lookup(m, "integrator")


# =============================================================================================
# losses
# =============================================================================================
class _LossP(_P):
    pass


from bkdsl.components.losses import LossTerm  # noqa: E402


class _StructureLoss(LossTerm):
    kind = "loss"

    def loss_unit(self, u):
        from bkdsl.semantics.units import DIMENSIONLESS

        return DIMENSIONLESS


@component("asinh_mse", kind="loss")
class AsinhMSE(_StructureLoss):
    """mean (asinh ŷ − asinh y)²: a squared error linear near 0 and logarithmic in the tails (the AdS
    horizon residual spans four decades). Dimensionless."""

    Params = _LossP

    def evaluate(self, pred, target):
        from bkdsl.nn.ads import asinh_mse

        return asinh_mse(pred.reshape(target.shape).double(), target.double()).float()


class _HorizonP(_P):
    eps: float = Field(0.1, gt=0)


@component("horizon_l1", kind="loss")
class HorizonL1(_StructureLoss):
    """The horizon-classification loss: mean |tanh((F/ε)²) − y| (y = 0 regular, 1 irregular)."""

    Params = _HorizonP

    def evaluate(self, pred, target):
        from bkdsl.nn.ads import horizon_probability

        return (horizon_probability(pred.reshape(target.shape), self.params.eps) - target).abs().mean()


_fill_methods()
