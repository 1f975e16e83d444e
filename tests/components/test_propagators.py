"""The optics components in specs: compile-time sampling refusals with their numbers and units, the
contractive claim, typing of fields and phase masks, and a diffractive layer built and run."""

from __future__ import annotations

import geoopt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bkdsl
from tests.conftest import pos

OK = "angular_spectrum(wavelength = 532 nm, distance = 10 mm, pitch = 8 um, aperture = 512 um)"


def errors(src: str):
    return [d for d in bkdsl.check_source(src) if d.is_error]


def test_sampling_refusal_with_numbers():
    src = "propagator p = angular_spectrum(wavelength = 532 nm, distance = 5 cm, pitch = 8 um, aperture = 512 um)\n"
    (d,) = errors(src)
    assert d.code == "E0304" and (d.span.line, d.span.col) == pos(src, "angular_spectrum")
    assert "Δx = 8 µm < λz/(2D)" in d.message and "25.98 µm" in d.message and "z_max = 2DΔx/λ = 15.4 mm" in d.message
    assert d.help == "use fresnel/fraunhofer or the scalable ASM"


def test_units_are_converted():
    """The same geometry in nm / µm / mm / cm: accepted alike; 5 cm = 50 mm refused alike."""
    for text in ("wavelength = 0.532 um, distance = 1 cm, pitch = 0.008 mm, aperture = 0.0512 cm",
                 "wavelength = 532 nm, distance = 10 mm, pitch = 8000 nm, aperture = 512 um"):
        assert errors(f"propagator p = angular_spectrum({text})\n") == []
    bad = "wavelength = 532 nm, distance = 50 mm, pitch = 8 um, aperture = 0.0512 cm"
    assert [d.code for d in errors(f"propagator p = angular_spectrum({bad})\n")] == ["E0304"]
    # a number without a length unit is refused by the schema
    assert [d.code for d in errors("propagator p = angular_spectrum(wavelength = 532, distance = 10 mm, "
                                   "pitch = 8 um, aperture = 512 um)\n")] == ["E0201"]


def test_band_limit_refusal_below_half_wavelength():
    src = "propagator p = angular_spectrum(wavelength = 532 nm, distance = 1 um, pitch = 200 nm, aperture = 6.4 um)\n"
    (d,) = errors(src)
    assert d.code == "E0304" and "band limit" in d.message and "evanescent" in d.help


def test_aperture_must_be_whole_samples():
    (d,) = errors("propagator p = angular_spectrum(wavelength = 532 nm, distance = 1 mm, pitch = 8 um, aperture = 500 um)\n")
    assert d.code == "E0304" and "62.5" in d.message


def test_fresnel_and_fraunhofer_regimes():
    assert errors("propagator p = fresnel(wavelength = 532 nm, distance = 10 mm, pitch = 8 um, aperture = 512 um)\n") == []
    (d,) = errors("propagator p = fresnel(wavelength = 532 nm, distance = 5 cm, pitch = 8 um, aperture = 512 um)\n")
    assert d.code == "E0304" and "fraunhofer" in d.help
    (d,) = errors("propagator p = fraunhofer(wavelength = 532 nm, distance = 10 mm, pitch = 8 um, aperture = 512 um)\n")
    assert d.code == "E0304" and "N_F" in d.message
    assert errors("propagator p = fraunhofer(wavelength = 532 nm, distance = 10 m, pitch = 8 um, aperture = 512 um)\n") == []


def test_contractive_claim_proven_and_unitary_refused():
    c = bkdsl.compile_source(f"propagator p = {OK} : contractive\n")
    (claim,) = c.ir.claims
    assert claim.proof.holds and claim.proof.how == "analytic+probe" and "max|H| = 1.000000 ≤ 1" in claim.proof.detail
    src = f"propagator p = {OK} : unitary\n"
    (d,) = errors(src)
    assert d.code == "E0302" and (d.span.line, d.span.col) == pos(src, "unitary")


def test_contractive_refused_when_the_transfer_function_gains(monkeypatch):
    """The proof reads the built H: an H with |H| > 1 somewhere is refused."""
    from bkdsl.components import optics as C
    from bkdsl.nn import optics as O

    real = O.asm_transfer
    monkeypatch.setattr(O, "asm_transfer", lambda *a, **k: 1.5 * real(*a, **k))
    (d,) = errors(f"propagator p = {OK} : contractive\n")
    assert d.code == "E0301" and "max|H| = 1.5" in d.label
    assert C.AngularSpectrum  # the component under test


D2NN = """
propagator prop = angular_spectrum(wavelength = 532 nm, distance = 10 mm, pitch = 8 um, aperture = 512 um) : contractive
manifold circle = sphere()

model d2nn {
  input image : [B, 64, 64]
  param mask : [64, 64, 2] on circle
  u = prop(phase_mask(amplitude_field(image), mask))
  output logits = detector_readout(intensity(prop(u)), classes = 10, size = 4)
}
"""


def test_field_side_must_match_aperture():
    src = D2NN.replace("[B, 64, 64]", "[B, 32, 32]").replace("[64, 64, 2]", "[32, 32, 2]")
    assert [d.code for d in errors(src)] == ["E0401"]


def test_propagator_needs_a_complex_field():
    src = D2NN.replace("prop(phase_mask(amplitude_field(image), mask))", "prop(image)")
    (d,) = errors(src)
    assert d.code == "E0401" and "complex field" in d.message


def test_phase_mask_needs_a_circle():
    src = D2NN.replace("on circle", "")
    (d,) = errors(src)
    assert d.code == "E0402" and "sphere" in d.message


def test_d2nn_builds_runs_and_masks_stay_on_the_circle():
    c = bkdsl.compile_source(D2NN)
    gm = c.module
    mask = dict(gm.named_parameters())["mask"]
    assert isinstance(mask, geoopt.ManifoldParameter) and isinstance(mask.manifold, geoopt.Sphere)
    x = torch.rand(2, 64, 64)
    out = gm(image=x)["logits"]
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    _steps_stay_on_circle(gm, x, lr=0.05, steps=3)


def _steps_stay_on_circle(gm, x, lr, steps):
    opt = geoopt.optim.RiemannianAdam(gm.parameters(), lr=lr)
    target = torch.arange(x.shape[0]) % 10
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(gm(image=x)["logits"], target)
        loss.backward()
        opt.step()
    mask = dict(gm.named_parameters())["mask"]
    assert (mask.detach().norm(dim=-1) - 1).abs().max() < 1e-5


@settings(max_examples=5, deadline=None)
@given(lr=st.floats(1e-3, 0.5), seed=st.integers(0, 2 ** 16))
def test_masks_stay_on_the_circle_after_optimizer_steps(lr, seed):
    torch.manual_seed(seed)
    gm = bkdsl.compile_source(D2NN.replace("64", "16").replace("512 um", "128 um").replace("10 mm", "2 mm")
                              .replace("size = 4", "size = 2")).module
    _steps_stay_on_circle(gm, torch.rand(4, 16, 16), lr=lr, steps=2)
