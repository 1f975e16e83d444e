"""bkdsl.nn.optics against closed forms: the Gaussian beam (ASM, Fresnel-TF, Fraunhofer), Parseval,
linear (not circular) convolution, the band-limit and evanescent masks."""

from __future__ import annotations

import math

import pytest
import torch

from bkdsl.nn import optics as O

LAM, DX, N = 0.5e-6, 50e-6, 256          # 0.5 µm light, 50 µm pitch, 12.8 mm window
W0 = 6 * DX                              # waist 300 µm = 600 λ: paraxial error ~ (λ/w0)² ≪ 1e-6
ZR = math.pi * W0 ** 2 / LAM             # Rayleigh length 0.565 m


def rel_err(u: torch.Tensor, ref: torch.Tensor) -> float:
    return float((u.to(torch.complex128) - ref).norm() / ref.norm())


@pytest.mark.parametrize("zr_multiple", [0.5, 1.0, 2.0, 3.0])
def test_asm_gaussian_beam_complex128(zr_multiple):
    z = zr_multiple * ZR
    u0 = O.gaussian_beam(N, DX, LAM, W0, 0.0)
    assert O.SamplingReport(LAM, z, DX, N * DX, N).sampling_ok
    assert rel_err(O.angular_spectrum(u0, DX, LAM, z), O.gaussian_beam(N, DX, LAM, W0, z)) <= 1e-6


@pytest.mark.parametrize("zr_multiple", [0.5, 3.0])
def test_asm_gaussian_beam_complex64(zr_multiple):
    z = zr_multiple * ZR
    u0 = O.gaussian_beam(N, DX, LAM, W0, 0.0, dtype=torch.complex64)
    u = O.angular_spectrum(u0, DX, LAM, z)
    assert u.dtype == torch.complex64
    assert rel_err(u, O.gaussian_beam(N, DX, LAM, W0, z)) <= 1e-3


def test_phase_in_float32_would_fail():
    """Why H is built in complex128: kz ~ 10⁷ rad, float32 loses the phase (the test that shows the
    complex128 construction matters)."""
    z = 3 * ZR
    h64 = O.asm_transfer(N, DX, LAM, z)
    assert h64.dtype == torch.complex128
    f = O.fft_freqs(2 * N, DX).float()
    arg = 1.0 / LAM ** 2 - f[None, :] ** 2 - f[:, None] ** 2
    h32 = torch.polar(torch.ones_like(arg), 2 * math.pi * z * torch.sqrt(arg.clamp(min=0)))
    keep = h64.abs() > 0
    assert (h32[keep].to(torch.complex128) - h64[keep]).abs().max() > 0.1


@pytest.mark.parametrize("zr_multiple", [1.0, 3.0])
def test_fresnel_gaussian_beam(zr_multiple):
    z = zr_multiple * ZR
    u0 = O.gaussian_beam(N, DX, LAM, W0, 0.0)
    assert rel_err(O.fresnel(u0, DX, LAM, z), O.gaussian_beam(N, DX, LAM, W0, z)) <= 1e-10
    assert rel_err(O.fresnel(u0.to(torch.complex64), DX, LAM, z), O.gaussian_beam(N, DX, LAM, W0, z)) <= 1e-3


def test_fraunhofer_gaussian_far_field():
    z = 1e4 * ZR  # N_F = (D/2)²/(λz) ≈ 0.01; the neglected input phase π w0²/(λz) = 1e-4
    rep = O.SamplingReport(LAM, z, DX, N * DX, N)
    assert rep.fresnel_number <= 0.1
    u0 = O.gaussian_beam(N, DX, LAM, W0, 0.0)
    ref = O.gaussian_beam(N, O.fraunhofer_pitch(N, DX, LAM, z), LAM, W0, z)
    assert rel_err(O.fraunhofer(u0, DX, LAM, z), ref) <= 1e-3
    # energy in physical units: ‖U_z‖ Δx' = ‖U₀‖ Δx
    dxo = O.fraunhofer_pitch(N, DX, LAM, z)
    assert abs(float(O.fraunhofer(u0, DX, LAM, z).norm()) * dxo / (float(u0.norm()) * DX) - 1) < 1e-10


def _random_field(n, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(3, n, n, generator=g, dtype=torch.float64),
                         torch.randn(3, n, n, generator=g, dtype=torch.float64)).to(dtype)


def test_parseval_contraction_on_random_fields():
    """‖U_z‖ ≤ ‖U₀‖ for white fields (they fill the masked bins), and strictly less."""
    u = _random_field(64, seed=1)
    for z in (1e-3, 1e-2):
        out = O.angular_spectrum(u, 8e-6, 532e-9, z)
        r = out.flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)
        assert (r <= 1 + 1e-12).all() and (r < 0.999).all()


def test_parseval_equality_in_the_pass_band():
    """A beam whose spectrum lies in the pass band and that stays inside the window keeps its energy."""
    u0 = O.gaussian_beam(N, DX, LAM, W0, 0.0)
    u = O.angular_spectrum(u0, DX, LAM, 2 * ZR)
    assert abs(float(u.norm() / u0.norm()) - 1) < 1e-12


def test_transfer_bound_is_at_most_one_and_nan_fails():
    h = O.asm_transfer(32, 8e-6, 532e-9, 5e-3)
    assert O.transfer_bound(h) == pytest.approx(1.0)
    h[0, 0] = complex("nan")
    assert math.isnan(O.transfer_bound(h))


def test_linear_not_circular_convolution():
    """A field at the window's edge: the ×2-padded result equals a much larger window's (its light is
    not wrapped around to the opposite edge), while the unpadded (circular) result is not."""
    n, dx, lam, z = 64, 8e-6, 532e-9, 4e-3
    x = O.centred_coords(n, dx)
    u = torch.polar(torch.exp(-((x[None, :] - 28 * dx) ** 2 + x[:, None] ** 2) / (2 * dx) ** 2),
                    torch.zeros(n, n, dtype=torch.float64))
    big = O.crop2(O.apply_transfer(O.pad2(u, 4), O.asm_transfer(4 * n, dx, lam, z, pad=2, band_limited=False)),
                  n, n, 4)
    padded = O.apply_transfer(u, O.asm_transfer(n, dx, lam, z, pad=2, band_limited=False), pad=2)
    circular = O.apply_transfer(u, O.asm_transfer(n, dx, lam, z, pad=1, band_limited=False), pad=1)
    e_pad, e_circ = rel_err(padded, big), rel_err(circular, big)
    assert e_pad < 0.05 * e_circ and e_circ > 0.05


def test_band_limit_formula_and_mask():
    n, dx, lam, z = 64, 8e-6, 532e-9, 0.1
    m = 2 * n
    ul = 1.0 / (lam * math.sqrt((2 * z / (m * dx)) ** 2 + 1))  # Matsushima & Shimobaba eq. 13, Δu = 1/(mΔx)
    assert O.band_limit(lam, z, dx, m) == pytest.approx(ul, rel=1e-14)
    h = O.asm_transfer(n, dx, lam, z)
    f = O.fft_freqs(m, dx)
    inside = (f.abs() < ul)
    assert (h.abs()[inside][:, inside] == 1).all()           # rows and columns inside the band: |H| = 1
    assert (h.abs()[~inside, :] == 0).all() and (h.abs()[:, ~inside] == 0).all()
    assert not O.SamplingReport(lam, z, dx, n * dx, n).band_ok


def test_evanescent_bins_are_zeroed():
    """With a pitch below λ/2 the grid reaches f > 1/λ: those bins are evanescent and H = 0 there."""
    n, dx, lam, z = 32, 0.2e-6, 532e-9, 1e-6
    h = O.asm_transfer(n, dx, lam, z, band_limited=False)
    f = O.fft_freqs(2 * n, dx)
    ev = (f[None, :] ** 2 + f[:, None] ** 2) >= 1 / lam ** 2
    assert ev.any() and (h[ev] == 0).all() and (h[~ev].abs() - 1).abs().max() < 1e-15


def test_sampling_report_numbers():
    r = O.SamplingReport(532e-9, 10e-3, 8e-6, 512e-6, 64)
    assert r.z_max == pytest.approx(2 * 512e-6 * 8e-6 / 532e-9)
    assert r.sampling_ok and r.band_ok
    r2 = O.SamplingReport(532e-9, 50e-3, 8e-6, 512e-6, 64)
    assert not r2.sampling_ok and r2.pitch_min == pytest.approx(532e-9 * 50e-3 / (2 * 512e-6))


def test_modules_match_functions_and_cast():
    n, dx, lam, z = 32, 8e-6, 532e-9, 2e-3
    mod = O.TransferPropagator(O.asm_transfer(n, dx, lam, z))
    u = _random_field(n, seed=3, dtype=torch.complex64)
    assert torch.allclose(mod(u), O.angular_spectrum(u, dx, lam, z))
    assert mod(u).dtype == torch.complex64


def test_diffractive_ops():
    g = torch.Generator().manual_seed(0)
    mask = torch.nn.functional.normalize(torch.randn(16, 16, 2, generator=g, dtype=torch.float64), dim=-1)
    u = _random_field(16, seed=4)
    v = O.phase_modulate(u, mask)
    assert torch.allclose(v.abs(), u.abs())                 # a pure phase
    i = O.intensity(v)
    assert torch.allclose(i, v.abs() ** 2)
    x = torch.rand(2, 16, 16, dtype=torch.float64)
    assert torch.equal(O.amplitude_field(x).real, x) and (O.amplitude_field(x).imag == 0).all()
    regions = O.detector_regions(16, 10, 2)
    assert len(set(regions)) == 10 and all(0 <= r and r + 2 <= 16 and 0 <= c and c + 2 <= 16 for r, c in regions)
    out = O.detector_readout(i, classes=10, size=2, normalize=False)
    r0, c0 = regions[3]
    assert out.shape == (3, 10) and torch.allclose(out[:, 3], i[:, r0:r0 + 2, c0:c0 + 2].sum((-2, -1)))
    norm = O.detector_readout(i, classes=10, size=2, temperature=5.0)
    assert torch.allclose(norm, 5.0 * out / out.sum(-1, keepdim=True))
    assert torch.allclose(O.detector_readout(7 * i, classes=10, size=2), O.detector_readout(i, classes=10, size=2))


def test_pado_agrees_in_the_near_field():
    """PADO's band-limited ASM on the same field, where float32 holds the phase (kz = 1.3e4 rad): the two
    agree to its float32 phase rounding (bench/optics_asm.py records the far-field disagreement)."""
    pytest.importorskip("pado")
    from pado.light import Light
    from pado.propagator import Propagator

    n, dx, z, w0 = 128, 2e-6, 1e-3, 12e-6
    u0 = O.gaussian_beam(n, dx, LAM, w0, 0.0, torch.complex64)
    ours = O.angular_spectrum(u0.to(torch.complex128), dx, LAM, z)
    light = Light((1, 1, n, n), pitch=dx, wvl=LAM, field=u0.reshape(1, 1, n, n), device="cpu")
    theirs = Propagator("ASM").forward(light, z, linear=True, band_limit=True).field.reshape(n, n)
    assert rel_err(theirs, ours) < 5e-3
