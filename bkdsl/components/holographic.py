"""Holographic propagators (source 000 §5) as components: ``bulk_to_boundary`` and ``boundary_to_bulk``.

    propagator encode = bulk_to_boundary(bulk = 64, boundary = 16) : contractive
    propagator decode = boundary_to_bulk(bulk = 64, boundary = 16) : isometric

Both hold W [bulk, boundary] on the Stiefel manifold (geoopt), initialised as the polar factor of the
discretised AdS₂ kernel K_Δ(z, x; x') √g (bkdsl/nn/holographic.py has the formulas). Claims:

* ``boundary_to_bulk : isometric`` — proven: WᵀW = I ⇒ ‖Wφ‖ = ‖φ‖, and probed on the built module;
* ``bulk_to_boundary : contractive`` — proven: ‖Wᵀφ‖² = φᵀWWᵀφ ≤ ‖φ‖² (WWᵀ an orthogonal projector);
  ``: isometric`` on it is refused by the probe when boundary < bulk (E0302) — a compression that
  keeps fewer numbers cannot preserve every norm; with boundary = bulk it is square orthogonal and
  the claim holds.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bkdsl.diagnostics import BkError
from bkdsl.nn import holographic as H
from bkdsl.registry import Component, Proof, component
from bkdsl.verify import probes


class HoloParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bulk: int = Field(gt=0, le=1 << 14, description="D: the bulk field's size (the vector being compressed)")
    boundary: int = Field(gt=0, description="d: the boundary's size (what is kept); compression D/d")
    delta: float = Field(1.0, gt=0, allow_inf_nan=False, description="Δ: the scaling dimension in K_Δ = (z/(z² + (x−x')²))^Δ")
    trainable: bool = Field(True, description="W a Stiefel ManifoldParameter (train with riemannian_adam); false: a fixed buffer")

    @model_validator(mode="after")
    def _fits(self) -> "HoloParams":
        if self.boundary > self.bulk:
            raise ValueError(f"boundary ({self.boundary}) must not exceed bulk ({self.bulk})")
        return self


class _Holo(Component):
    Params = HoloParams
    sequence = "pointwise"          # one map per position
    module_class: type = H.BulkToBoundary
    in_size: str = "bulk"
    out_size: str = "boundary"

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if not t.shape or t.dtype != "float":
            raise BkError("E0401", f"`{self.name}` expects a float tensor [..., {self.in_size}], got {t.show()}",
                          span=ctx.span)
        n_in = getattr(self.params, self.in_size)
        ctx.uni.unify(t.shape[-1], n_in, ctx.span, f"`{self.name}`'s {self.in_size} and the input's last axis")
        return t.with_(shape=(*t.shape[:-1], getattr(self.params, self.out_size)), unit=t.unit)

    def build(self):
        p = self.params
        return self.module_class(p.bulk, p.boundary, p.delta, p.trainable)

    def probe_elements(self) -> int:
        return 64 * self.params.bulk * self.params.boundary

    def _probe(self, prop: str) -> probes.ProbeResult:
        p = self.params  # built in float64: a float32 W is orthonormal only to ~1e-7, under the probe's 1e-10
        m = self.module_class(p.bulk, p.boundary, p.delta, p.trainable, dtype=torch.float64)
        n_in = getattr(self.params, self.in_size)
        fn = {"isometric": probes.probe_isometric, "contractive": probes.probe_contractive}[prop]
        return fn(lambda x: m(x), n_in)


@component("bulk_to_boundary", kind="propagator", inputs=("x",))
class BulkToBoundaryC(_Holo):
    """φ_∂ = Wᵀ φ_bulk, W on St(bulk, boundary) from the AdS₂ kernel: [..., bulk] → [..., boundary]."""

    module_class = H.BulkToBoundary

    def prove(self, prop):
        if prop not in ("isometric", "contractive", "unitary"):
            return None
        p = self.params
        if prop == "contractive":
            r = self._probe("contractive")
            return _decided("‖Wᵀφ‖² = φᵀWWᵀφ ≤ ‖φ‖² since WWᵀ is an orthogonal projector (WᵀW = I)", r)
        r = self._probe("isometric")
        if p.boundary == p.bulk:  # square: W is orthogonal, so Wᵀ = W⁻¹ preserves norms and is onto
            return _decided("boundary = bulk: W is square with WᵀW = I, an orthogonal matrix", r)
        why = (f"it keeps {p.boundary} of {p.bulk} numbers: WWᵀ projects away a {p.bulk - p.boundary}-dimensional "
               "subspace")
        if r.ok:  # cannot happen for a correct implementation; a probe alone proves nothing
            return Proof(False, "analytic", f"{why}, yet the probe saw {r.detail}")
        return Proof(False, "probe", f"{why}; {r.detail}")


def _decided(rule: str, r: probes.ProbeResult) -> Proof:
    """An analytic rule backed by its probe: the probe failing means the implementation is wrong."""
    if not r.ok:
        return Proof(False, "probe", f"{rule}, but the implementation fails the probe: {r.detail}")
    return Proof(True, "analytic+probe", f"{rule}; {r.detail}")


@component("boundary_to_bulk", kind="propagator", inputs=("x",))
class BoundaryToBulkC(_Holo):
    """φ_bulk = W φ_∂, W on St(bulk, boundary) from the AdS₂ kernel: [..., boundary] → [..., bulk]."""

    module_class = H.BoundaryToBulk
    in_size, out_size = "boundary", "bulk"

    def prove(self, prop):
        if prop not in ("isometric", "contractive"):
            return None
        return _decided("WᵀW = I on the Stiefel manifold, so ‖Wφ‖² = φᵀWᵀWφ = ‖φ‖²", self._probe(prop))

    def lipschitz(self):
        return 1.0, f"`{self.name}` is isometric (WᵀW = I)"
