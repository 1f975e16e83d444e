"""Binding (vector-symbolic architectures) and the circulant layers built from it: circular
convolution (HRR), phasor binding, GHRR, tensor-product binding; the CCNN circulant layer and
holographic weight synthesis (source 001 §2, §4.2).

A binding's claims speak about the map y ↦ bind(x₀, y) for a fixed random key x₀ (``commutative``
about both arguments); each is decided by an analytic rule and a probe (:mod:`bkdsl.components.proofs`).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.components.proofs import proven, refuted, unestablished
from bkdsl.components.shapes import last_axis
from bkdsl.diagnostics import BkError
from bkdsl.registry import Component, Proof, component
from bkdsl.semantics.types import ValueType
from bkdsl.verify import probes

PROBE_DIM = 64  # the binding probes' vector size (a multiple of k² for the GHRR block sizes we allow)


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


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
                return refuted(self.name, prop, r) if not r.ok else unestablished(self.name, prop, r)
            return proven(rule, r)
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
                return refuted(self.name, prop, r, "for a random key x, y ↦ bind(x, y)") if not r.ok \
                    else unestablished(self.name, prop, r)
            return proven(rule, r)
        if prop == "reversible":
            if self._unbind(x0, x0) is None:
                r = probes.probe_reversible(U, lambda z: self._approx_unbind(z, x0.expand_as(z)), d)
                return refuted(self.name, prop, r, "its unbinding is only approximate") if not r.ok \
                    else unestablished(self.name, prop, r)
            r = probes.probe_reversible(U, lambda z: self._unbind(z, x0.expand_as(z)), d)
            return proven(f"`{self.name}` has an exact unbinding", r)
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
        d = last_axis(ins, ctx, "`ghrr_bind`")
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
            return refuted(self.name, prop, r, "bind(y, x) is the transpose of bind(x, y)")
        if prop == "reversible":
            from bkdsl.nn.binding import outer_unbind

            r = probes.probe_reversible(lambda y: _outer_bind(x0.expand_as(y), y),
                                        lambda W: outer_unbind(W, x0.expand(W.shape[0], d)), d)
            return proven("for one pair, W x / ‖x‖² = y (‖x‖² ≠ 0)", r)
        if prop in ("unitary", "isometric"):
            r = probes.probe_isometric(lambda y: _outer_bind(x0.expand_as(y), y), d)
            return refuted(self.name, prop, r, f"‖y ⊗ x‖ = ‖x‖ ‖y‖ and ‖x‖ = {float(x0.norm()):.2f} for the probe key")
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
        d = last_axis(ins, ctx, "`circulant`")
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
                return proven("a phasor spectrum is inverted by its conjugate", r)
            return refuted(self.name, prop, r) if not r.ok else unestablished(self.name, prop, r)
        fn = m if not b else (lambda x: m(x) - m.bias)
        r = {"unitary": probes.probe_unitary, "isometric": probes.probe_isometric,
             "contractive": probes.probe_contractive}[prop](fn, n)
        if b and prop != "contractive":
            return Proof(False, "analytic", f"`circulant(bias = true)` is affine, not {prop}")
        if sp == "phasor":
            return proven("|W_k| = 1 on every bin: an orthogonal circulant", r)
        if sp == "contractive" and prop == "contractive":
            return proven("|W_k| ≤ 1 on every bin: ‖w ⊛ x‖ ≤ ‖x‖ (Parseval)", r)
        return refuted(self.name, prop, r, f"spectrum = {sp}") if not r.ok else unestablished(self.name, prop, r)



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
        ctx.uni.unify(last_axis(ins, ctx, "`holographic_stack`"), self.params.n, ctx.span,
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
            return proven("every synthesised weight has a unit-modulus spectrum; a product of orthogonal "
                           "circulants is orthogonal (composition)", r)
        return refuted(self.name, prop, r, "HRR-synthesised weights scale each bin by |R_k||F_k|")
