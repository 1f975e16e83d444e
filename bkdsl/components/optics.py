"""Free-space propagators (``angular_spectrum``, ``fresnel``, ``fraunhofer``) and the diffractive-layer
ops (``field``, ``phase_mask``, ``intensity``, ``detector_readout``) — source 001 §5.

The formulas and conventions are in :mod:`bkdsl.nn.optics`. What this module adds is the compiler's
side:

* **compile-time sampling checks** in :meth:`from_args`, from the declared wavelength, distance,
  pitch and aperture (any length unit: nm, µm (``um``), mm, cm, m — converted by pint). A transfer-
  function propagator (ASM, Fresnel-TF) is refused (E0304, with the numbers) when the chirp of H is
  undersampled on the ×2 padded grid, Δx < λz/(2D), or when the Matsushima–Shimobaba band limit
  u_lim cuts into the sampled band 1/(2Δx); Fraunhofer is refused in the near field, N_F =
  (D/2)²/(λz) > 0.1;
* the ``contractive`` claim of every propagator, proven analytically from the *built* transfer
  function (max|H| ≤ 1 ⇒, by Parseval, ‖U_z‖ ≤ ‖U₀‖ on the padded grid, and the crop only removes
  energy) and backed by a probe on random complex fields that can fail; ``isometric``/``unitary``
  are refused by the probe (the band-limit and evanescent masks and the crop remove energy).
  Fraunhofer is contractive only in the pitch-weighted norm ‖U‖·Δx, which the claim does not speak
  about, so it makes no claim.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, InferCtx, Proof, component
from bkdsl.diagnostics import BkError
from bkdsl.nn import optics
from bkdsl.semantics.types import ValueType
from bkdsl.semantics.units import quantity
from bkdsl.verify.probes import ProbeResult

SAMPLING_HELP = "use fresnel/fraunhofer or the scalable ASM"
FRAUNHOFER_MAX_NF = 0.1  # N_F = (D/2)²/(λz) ≤ 0.1: the neglected quadratic phase π(D/2)²/(λz) ≤ 0.31 rad
PROBE_FIELDS = 4         # random complex fields per probe
PROBE_TOL = 1e-10        # float64 FFT round trip on ≤ 4096² bins is ~1e-14 relative


class _PropP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wavelength: quantity("m") = Field(gt=0, description="vacuum wavelength λ (e.g. 532 nm)")
    distance: quantity("m") = Field(gt=0, description="propagation distance z (e.g. 10 mm)")
    pitch: quantity("m") = Field(gt=0, description="sampling pitch Δx of the field (e.g. 8 um)")
    aperture: quantity("m") = Field(gt=0, description="side D = N·Δx of the input window (e.g. 512 um)")


def _fmt(x_m: float) -> str:
    """A length in the most readable of nm / µm / mm / m."""
    for unit, s in (("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9)):
        if abs(x_m) >= s:
            return f"{x_m / s:.4g} {unit}"
    return f"{x_m / 1e-9:.4g} nm"


def _samples(p: _PropP, name: str, span) -> int:
    n = p.aperture / p.pitch
    if abs(n - round(n)) > 1e-6 * max(1.0, n) or round(n) < 2:
        raise BkError("E0304", f"`{name}`: aperture / pitch = {_fmt(p.aperture)} / {_fmt(p.pitch)} = {n:.6g} "
                               "is not a whole number of samples (≥ 2)", span=span,
                      help="choose the aperture as N × pitch, e.g. `aperture = 512 um` with `pitch = 8 um` (N = 64)")
    return int(round(n))


class _Propagator(Component):
    kind = "propagator"
    inputs = ("u",)
    Params = _PropP

    def __init__(self, params, span=None, decl_name=None):
        super().__init__(params, span, decl_name)
        self.n = _samples(params, self.name, span)

    @property
    def report(self) -> optics.SamplingReport:
        p = self.params
        return optics.SamplingReport(p.wavelength, p.distance, p.pitch, p.aperture, self.n)

    # -- typing: a complex square field [..., N, N] with N = D/Δx ---------------------------------
    def infer(self, ins: list[ValueType], ctx: InferCtx) -> ValueType:
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.dtype != "complex" or t.rank is None or t.rank < 2:
            raise BkError("E0401", f"`{self.name}` propagates a complex field [..., N, N], got {t.show()}",
                          span=ctx.span, help="make one with `amplitude_field(x)` (amplitude) or `phase_mask`")
        for d in t.shape[-2:]:
            ctx.uni.unify(d, self.n, ctx.span, f"`{self.name}`'s field side (aperture / pitch = {self.n})")
        return t.with_(unit=None)

    # -- the map, for build() and the probes ------------------------------------------------------
    def transfer(self) -> torch.Tensor:
        raise NotImplementedError

    def build(self) -> torch.nn.Module:
        return optics.TransferPropagator(self.transfer(), pad=2)

    def prove(self, prop: str) -> Proof | None:
        if prop not in ("contractive", "isometric", "unitary"):
            return None
        h = self.transfer()
        bound = optics.transfer_bound(h)
        r = _probe_energy(lambda u: optics.apply_transfer(u, h), self.n, prop)
        if prop == "contractive":
            if not bound <= 1.0 + 1e-12:  # NaN fails
                return Proof(False, "analytic", f"max|H| = {bound:.3g} > 1 on the padded grid")
            rule = (f"max|H| = {bound:.6f} ≤ 1 on the {2 * self.n}² padded grid, so by Parseval "
                    "‖F⁻¹(H·F U)‖ ≤ ‖U‖ (equality iff F U lies in the pass band) and the crop removes "
                    "the rest")
            if not r.ok:
                return Proof(False, "probe", f"{rule}, but the implementation fails the probe: {r.detail}")
            return Proof(True, "analytic+probe", f"{rule}; {r.detail}")
        # isometric / unitary: the masks and the crop lose energy; the probe shows how much
        if not r.ok:
            return Proof(False, "probe", f"`{self.name}` is not {prop}: {r.detail} (the band-limit and "
                                         "evanescent masks and the crop to N × N remove energy)")
        return Proof(False, "analytic", f"no rule makes `{self.name}` {prop}; the probe saw {r.detail}, "
                                        "but a probe alone proves nothing")

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        rep = self.report
        d["sampling"] = {"n": self.n, "z_max_m": rep.z_max, "pitch_min_m": rep.pitch_min,
                         "u_limit_per_m": rep.u_limit, "nyquist_per_m": rep.nyquist,
                         "fresnel_number": rep.fresnel_number}
        return d


def _probe_energy(fn, n: int, prop: str, seed: int = 0) -> ProbeResult:
    """Random complex Gaussian fields [PROBE_FIELDS, n, n] in complex128: max(‖Ux‖/‖x‖ − 1)₊ for
    ``contractive``, max|‖Ux‖/‖x‖ − 1| otherwise. A non-finite output gives NaN, which fails."""
    g = torch.Generator().manual_seed(seed)
    x = torch.complex(torch.randn(PROBE_FIELDS, n, n, generator=g, dtype=torch.float64),
                      torch.randn(PROBE_FIELDS, n, n, generator=g, dtype=torch.float64))
    with torch.no_grad():
        y = fn(x)
    r = y.reshape(PROBE_FIELDS, -1).norm(dim=-1) / x.reshape(PROBE_FIELDS, -1).norm(dim=-1)
    if not torch.isfinite(r).all():
        dev = float("nan")
    elif prop == "contractive":
        dev = float(torch.clamp(r - 1, min=0).max())
    else:
        dev = float((r - 1).abs().max())
    what = "max(‖Ux‖/‖x‖ − 1)₊" if prop == "contractive" else "max|‖Ux‖/‖x‖ − 1|"
    return ProbeResult(prop, dev, PROBE_TOL, what, PROBE_FIELDS)


def _check_transfer_sampling(comp: _Propagator, span) -> None:
    """E0304 unless Δx ≥ λz/(2D) and u_lim ≥ 1/(2Δx) (see bkdsl.nn.optics)."""
    r = comp.report
    name = comp.name
    if not r.sampling_ok:
        raise BkError(
            "E0304",
            f"`{name}` is undersampled: Δx = {_fmt(r.pitch)} < λz/(2D) = {_fmt(r.wavelength)} × {_fmt(r.distance)} "
            f"/ (2 × {_fmt(r.aperture)}) = {_fmt(r.pitch_min)} (z = {_fmt(r.distance)} > z_max = 2DΔx/λ = {_fmt(r.z_max)})",
            span=span, help=SAMPLING_HELP)
    if not r.band_ok:
        raise BkError(
            "E0304",
            f"`{name}`: the band limit u_lim = 1/(λ√((2Δu z)² + 1)) = {r.u_limit:.4g} /m cuts the sampled band "
            f"1/(2Δx) = {r.nyquist:.4g} /m (λ = {_fmt(r.wavelength)}, z = {_fmt(r.distance)}, Δx = {_fmt(r.pitch)}, "
            f"Δu = 1/(2D), D = {_fmt(r.aperture)})",
            span=span, help=SAMPLING_HELP + (" (a pitch below λ/2 samples only evanescent waves beyond 1/λ)"
                                             if r.pitch < r.wavelength / 2 else ""))


@component("angular_spectrum", kind="propagator", inputs=("u",))
class AngularSpectrum(_Propagator):
    """Band-limited angular-spectrum propagation U_z = F⁻¹(F(pad U₀) · H), H = exp(i2πz√(1/λ² − f²))
    with the evanescent and band-limit masks, ×2 zero padding, H in complex128 (bkdsl.nn.optics)."""

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        comp = super().from_args(kwargs, span, decl_name, arg_spans)
        _check_transfer_sampling(comp, span)
        return comp

    def transfer(self) -> torch.Tensor:
        p = self.params
        return optics.asm_transfer(self.n, p.pitch, p.wavelength, p.distance)


@component("fresnel", kind="propagator", inputs=("u",))
class Fresnel(_Propagator):
    """Paraxial Fresnel propagation, transfer-function form H = e^{ikz} exp(−iπλz(f_x² + f_y²)) on the ×2
    padded grid. Its chirp has the ASM's sampling condition Δx ≥ λz/(2D)."""

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        comp = super().from_args(kwargs, span, decl_name, arg_spans)
        r = comp.report
        if not r.sampling_ok:
            raise BkError(
                "E0304",
                f"`fresnel` (transfer-function form) is undersampled: Δx = {_fmt(r.pitch)} < λz/(2D) = "
                f"{_fmt(r.pitch_min)} (z = {_fmt(r.distance)} > z_max = {_fmt(r.z_max)})",
                span=span, help="use fraunhofer for the far field (N_F = (D/2)²/(λz) ≤ 0.1), or the scalable ASM")
        return comp

    def transfer(self) -> torch.Tensor:
        p = self.params
        return optics.fresnel_transfer(self.n, p.pitch, p.wavelength, p.distance)


@component("fraunhofer", kind="propagator", inputs=("u",))
class Fraunhofer(_Propagator):
    """Far-field propagation by one centred FFT, output pitch λz/(NΔx) (bkdsl.nn.optics.fraunhofer).
    Refused in the near field: the Fresnel number N_F = (D/2)²/(λz) must be ≤ 0.1."""

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        comp = super().from_args(kwargs, span, decl_name, arg_spans)
        r = comp.report
        if not r.fresnel_number <= FRAUNHOFER_MAX_NF:
            raise BkError(
                "E0304",
                f"`fraunhofer` needs the far field: N_F = (D/2)²/(λz) = ({_fmt(r.aperture)}/2)² / ({_fmt(r.wavelength)} × "
                f"{_fmt(r.distance)}) = {r.fresnel_number:.3g} > {FRAUNHOFER_MAX_NF}",
                span=span, help="use angular_spectrum or fresnel in the near field")
        return comp

    def build(self) -> torch.nn.Module:
        p = self.params
        return optics.FraunhoferPropagator(p.pitch, p.wavelength, p.distance)

    def prove(self, prop: str) -> Proof | None:
        return None


# =============================================================================================
# diffractive-layer ops
# =============================================================================================
@component("amplitude_field", kind="function", inputs=("x",))
class AmplitudeField(Component):
    """Amplitude encoding of a real image: U = x + 0i (complex)."""

    function = staticmethod(optics.amplitude_field)

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        if ins[0].dtype != "float":
            raise BkError("E0403", f"`amplitude_field` encodes a float image, got {ins[0].dtype}", span=ctx.span)
        return ins[0].with_(dtype="complex", unit=None)


@component("intensity", kind="function", inputs=("u",))
class Intensity(Component):
    """I = |U|² (what a detector measures)."""

    function = staticmethod(optics.intensity)

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        if ins[0].dtype != "complex":
            raise BkError("E0403", f"`intensity` needs a complex field, got {ins[0].dtype}", span=ctx.span)
        return ins[0].with_(dtype="float", unit=None)


@component("phase_mask", kind="function", inputs=("u", "mask"))
class PhaseMask(Component):
    """U ↦ U · (m₀ + i m₁) with the mask a parameter ``[N, N, 2] on`` a ``sphere`` manifold: each pixel's
    (m₀, m₁) lies on the unit circle S¹, so the modulation is a pointwise phase e^{iφ} — unitary by
    construction, and kept so by Riemannian optimisation (geoopt.Sphere projects the last axis)."""

    accepts = "any"
    function = staticmethod(optics.phase_modulate)

    def infer(self, ins, ctx):
        u, m = ins
        if u.manifold is not None:
            raise BkError("E0402", f"`phase_mask` modulates a Euclidean complex field; `u` lives on `{u.manifold}`",
                          span=ctx.span)
        if u.dtype != "complex":
            raise BkError("E0403", f"`phase_mask` needs a complex field, got {u.show()}", span=ctx.span,
                          help="make one with `amplitude_field(x)`")
        comp = ctx.manifolds.get(m.manifold) if m.manifold else None
        if comp is None or comp.name != "sphere" or m.rank != 3 or ctx.uni.find(m.shape[-1]) != 2:
            raise BkError("E0402", f"`phase_mask` needs a mask `[N, N, 2] on` a sphere manifold (each pixel on the "
                                   f"unit circle), got {m.show()}", span=ctx.span,
                          help="declare `manifold circle = sphere()` and `param mask : [N, N, 2] on circle`")
        if u.shape is not None:
            ctx.uni.unify(u.shape[-2], m.shape[0], ctx.span, "`phase_mask`'s field and mask rows")
            ctx.uni.unify(u.shape[-1], m.shape[1], ctx.span, "`phase_mask`'s field and mask columns")
        return u

    def prove(self, prop: str) -> Proof | None:
        if prop not in ("unitary", "isometric", "contractive"):
            return None
        g = torch.Generator().manual_seed(0)
        m = torch.nn.functional.normalize(torch.randn(8, 8, 2, generator=g, dtype=torch.float64), dim=-1)
        r = _probe_energy(lambda u: optics.phase_modulate(u, m), 8, "isometric")
        rule = "|m₀ + i m₁| = 1 on the sphere S¹, so U ↦ U·e^{iφ} is diagonal unitary"
        if not r.ok:
            return Proof(False, "probe", f"{rule}, but the implementation fails the probe: {r.detail}")
        return Proof(True, "analytic+probe", f"{rule}; {r.detail}")


class _DetP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classes: int = Field(10, ge=1, le=64, description="number of detector regions (one per class)")
    size: int = Field(4, ge=1, description="side of each square detector region, in pixels")
    normalize: bool = Field(True, description="logits T·E_k/Σ E_j (fractions of the detected energy)")
    temperature: float = Field(10.0, gt=0, description="T, the softmax temperature of the normalised readout")


@component("detector_readout", kind="function", inputs=("intensity",))
class DetectorReadout(Component):
    """Integrated intensity over ``classes`` square detector regions of side ``size`` arranged on a
    centred ⌈√classes⌉ grid of the output plane (Lin et al., Science 2018): [B, N, N] → [B, classes]."""

    Params = _DetP
    function = staticmethod(optics.detector_readout)

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if t.dtype != "float" or t.rank is None or t.rank < 3:
            raise BkError("E0401", f"`detector_readout` reads an intensity [B, N, N], got {t.show()}",
                          span=ctx.span, help="take `intensity(u)` first")
        n = ctx.uni.find(t.shape[-1])
        k = math.ceil(math.sqrt(self.params.classes))
        if isinstance(n, int) and 2 * k * self.params.size > n:
            raise BkError("E0401", f"{self.params.classes} detectors of side {self.params.size} (a {k} × {k} grid "
                                   f"with gaps) do not fit in {n} × {n}", span=ctx.span,
                          help=f"use size ≤ {max(1, n // (2 * k))}")
        return ValueType((t.shape[0], self.params.classes), "float", None, None)

    def call_kwargs(self):
        p = self.params
        return {"classes": p.classes, "size": p.size, "normalize": p.normalize, "temperature": p.temperature}
