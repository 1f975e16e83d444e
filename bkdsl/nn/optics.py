"""Scalar diffraction: band-limited angular-spectrum, Fresnel and Fraunhofer propagation (source 001 §5).

Conventions (one set, used by every function here and by the tests):

* A field is a complex tensor ``[..., N, N]`` sampled at pitch Δx (metres) on the *centred* grid
  x_j = (j − ⌊N/2⌋)·Δx, j = 0 … N−1 (the grid ``torch.fft.fftshift`` produces; the optical axis is
  the pixel ⌊N/2⌋).
* Frequencies are ``torch.fft.fftfreq(M, Δx)`` — the *unshifted* order of ``torch.fft.fft2`` — so a
  transfer function H(f_x, f_y) built on them multiplies ``fft2(U)`` directly. Where the field's origin
  is the pixel ⌊M/2⌋ the spectrum of a centred field carries a linear phase; multiplying by an H that
  depends only on (f_x, f_y) commutes with that phase, so no shift is needed around the product (and
  none is applied: the output sits on the same centred grid as the input). ``fftshift`` of these
  frequencies is the centred grid (k − ⌊M/2⌋)/(MΔx).
* Linear (not circular) convolution: the field is zero-padded ×2 (M = 2N, ⌊N/2⌋ zeros before) and the
  central N × N window is cropped after the inverse FFT.

Angular spectrum (exact scalar, non-paraxial)::

    U_z = F⁻¹( F(U₀) · H ),   H(f) = exp(i 2π z √(1/λ² − f_x² − f_y²)) · 1[1/λ² − f² > 0] · W_BL(f)

* evanescent mask: the root's argument is clamped at 0 and the bins with 1/λ² − f² ≤ 0 are zeroed
  (their exact factor exp(−2πz√(f² − 1/λ²)) is < 1 and would only be lost further on the grid);
* band-limit window (Matsushima & Shimobaba 2009, Opt. Express 17, 19662, eq. 13):
  W_BL = 1[|f_x| < u_lim] · 1[|f_y| < u_lim], u_lim = 1 / (λ √((2Δu z)² + 1)), Δu = 1/(MΔx) on the
  padded grid — the frequencies at which the sampled chirp H would alias;
* the phase 2πz√(·) is evaluated in float64 and H built in complex128 (2πz/λ is ~10⁷ rad for z ~ 1 m:
  float32 would lose the phase entirely), then cast to the field's dtype.

Every mask is 0 or 1 and |exp(iφ)| = 1, so |H| ≤ 1 on every bin; with Parseval (the DFT is unitary up
to 1/√M) ‖F⁻¹(H·F U)‖ ≤ ‖U‖ on the padded grid, with equality iff F U vanishes outside the pass
band; cropping can only remove more energy. That is the ``contractive`` claim of the propagators
(:func:`transfer_bound` returns max|H| for the proof).

Fresnel (transfer-function form, paraxial): H_F = exp(i 2π z/λ) · exp(−iπλz(f_x² + f_y²)), on the same
padded grid (|H_F| = 1, also contractive after the crop).

Fraunhofer (far field, one FFT): U_z(x') = e^{ikz} e^{iπx'²/(λz)} / (iλz) · Δx² · F(U₀)(x'/(λz)), on the
output grid of pitch Δx' = λz/(NΔx). It is a scaled unitary DFT times a unit phase, so
‖U_z‖·Δx' = ‖U₀‖·Δx (energy conserved in physical units).

The sampling condition for the transfer-function methods (ASM and Fresnel-TF): the chirp of H must be
sampled on the padded grid, Δx ≥ λz/(2D) with D = NΔx the input window (2D the padded window), i.e.
z ≤ z_max = 2DΔx/λ — beyond it (the far field) use Fraunhofer, single-FFT Fresnel or the scalable ASM.
(Source 001 §5.2 prints the inequality the other way round; its own remark that the condition fails
"e.g. in the far field", and the band limit above, which cuts into the Nyquist band exactly when
z > D√((2Δx/λ)² − 1), fix the direction used here.) :func:`sampling_report` computes both conditions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


# ----------------------------------------------------------------------------------------------- grids
def centred_coords(n: int, dx: float, dtype=torch.float64) -> torch.Tensor:
    """x_j = (j − ⌊n/2⌋)·dx, the spatial grid matching ``fftshift`` (metres)."""
    return (torch.arange(n, dtype=dtype) - n // 2) * dx


def fft_freqs(m: int, dx: float) -> torch.Tensor:
    """f_k = ``fftfreq(m, dx)`` in 1/m, float64, in the unshifted order of ``fft2``."""
    return torch.fft.fftfreq(m, d=dx, dtype=torch.float64)


def band_limit(wavelength: float, distance: float, dx: float, m: int) -> float:
    """u_lim = 1 / (λ √((2Δu z)² + 1)), Δu = 1/(mΔx) — Matsushima & Shimobaba (2009), eq. 13 (1/m)."""
    du = 1.0 / (m * dx)
    return 1.0 / (wavelength * math.sqrt((2.0 * du * abs(distance)) ** 2 + 1.0))


# ------------------------------------------------------------------------------------ transfer functions
def asm_transfer(n: int, dx: float, wavelength: float, distance: float, pad: int = 2,
                 band_limited: bool = True) -> torch.Tensor:
    """The band-limited angular-spectrum transfer function H on the padded grid M = pad·n,
    complex128 ``[M, M]`` in ``fft2`` order (see the module docstring for the formula)."""
    m = pad * n
    f = fft_freqs(m, dx)
    fx, fy = f[None, :], f[:, None]
    arg = 1.0 / wavelength ** 2 - fx ** 2 - fy ** 2          # 1/m², float64
    phase = 2.0 * math.pi * distance * torch.sqrt(torch.clamp(arg, min=0.0))
    mask = (arg > 0).to(torch.float64)                       # evanescent waves: zeroed
    if band_limited:
        ul = band_limit(wavelength, distance, dx, m)
        mask = mask * (fx.abs() < ul).to(torch.float64) * (fy.abs() < ul).to(torch.float64)
    return torch.polar(mask, phase)


def fresnel_transfer(n: int, dx: float, wavelength: float, distance: float, pad: int = 2) -> torch.Tensor:
    """H_F = exp(i2πz/λ) exp(−iπλz(f_x² + f_y²)) on the padded grid, complex128 ``[M, M]``.
    The carrier 2πz/λ is reduced mod 2π in float64 before it is added (it is ~10⁷ rad)."""
    m = pad * n
    f = fft_freqs(m, dx)
    carrier = math.fmod(2.0 * math.pi * distance / wavelength, 2.0 * math.pi)
    phase = carrier - math.pi * wavelength * distance * (f[None, :] ** 2 + f[:, None] ** 2)
    return torch.polar(torch.ones_like(phase), phase)


def transfer_bound(h: torch.Tensor) -> float:
    """max|H| over the grid (NaN if any bin is NaN): the contraction constant of U ↦ F⁻¹(H·F U)."""
    a = h.abs()
    if not torch.isfinite(a).all():
        return float("nan")
    return float(a.max())


# ------------------------------------------------------------------------------------------ propagation
def pad2(u: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Zero-pad the last two axes from N to pad·N, the field staying centred (⌊(pad−1)N/2⌋ zeros before)."""
    n0, n1 = u.shape[-2], u.shape[-1]
    a0, a1 = (pad - 1) * n0 // 2, (pad - 1) * n1 // 2
    return torch.nn.functional.pad(u, (a1, (pad - 1) * n1 - a1, a0, (pad - 1) * n0 - a0))


def crop2(u: torch.Tensor, n0: int, n1: int, pad: int = 2) -> torch.Tensor:
    """The central window that :func:`pad2` embedded."""
    a0, a1 = (pad - 1) * n0 // 2, (pad - 1) * n1 // 2
    return u[..., a0:a0 + n0, a1:a1 + n1]


def apply_transfer(u: torch.Tensor, h: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """crop(F⁻¹(F(pad(U)) · H)): linear convolution of the field with the kernel whose spectrum is H.
    H (complex128) is cast to U's complex dtype; the FFTs run in that dtype."""
    if not u.is_complex():
        raise TypeError(f"a field is a complex tensor, got {u.dtype}")
    n0, n1 = u.shape[-2], u.shape[-1]
    up = pad2(u, pad)
    spec = torch.fft.fft2(up) * h.to(device=u.device, dtype=u.dtype)
    return crop2(torch.fft.ifft2(spec), n0, n1, pad)


def angular_spectrum(u: torch.Tensor, dx: float, wavelength: float, distance: float, pad: int = 2,
                     band_limited: bool = True) -> torch.Tensor:
    """U_z by the band-limited angular-spectrum method (lengths in metres)."""
    n = u.shape[-1]
    if u.shape[-2] != n:
        raise ValueError(f"a square field is expected, got {tuple(u.shape[-2:])}")
    return apply_transfer(u, asm_transfer(n, dx, wavelength, distance, pad, band_limited), pad)


def fresnel(u: torch.Tensor, dx: float, wavelength: float, distance: float, pad: int = 2) -> torch.Tensor:
    """U_z by the Fresnel transfer function on the ×pad grid (lengths in metres)."""
    n = u.shape[-1]
    return apply_transfer(u, fresnel_transfer(n, dx, wavelength, distance, pad), pad)


def fraunhofer_pitch(n: int, dx: float, wavelength: float, distance: float) -> float:
    """Δx' = λz/(NΔx), the output pitch of :func:`fraunhofer` (metres)."""
    return wavelength * distance / (n * dx)


def fraunhofer(u: torch.Tensor, dx: float, wavelength: float, distance: float) -> torch.Tensor:
    """Far field U_z(x') = e^{ikz} e^{iπ|x'|²/(λz)} / (iλz) · Δx² · Σ_j U₀(x_j) e^{−i2π x'·x_j/(λz)},
    on the centred output grid x' = (k − ⌊N/2⌋)·λz/(NΔx). The DFT over a centred grid is
    fftshift ∘ fft2 ∘ ifftshift; the prefactor phase is built in complex128."""
    n = u.shape[-1]
    dxo = fraunhofer_pitch(n, dx, wavelength, distance)
    xo = centred_coords(n, dxo)
    r2 = xo[None, :] ** 2 + xo[:, None] ** 2
    carrier = math.fmod(2.0 * math.pi * distance / wavelength, 2.0 * math.pi)
    phase = carrier + math.pi * r2 / (wavelength * distance) - math.pi / 2   # 1/i = e^{−iπ/2}
    pre = torch.polar(torch.full_like(r2, dx * dx / (wavelength * distance)), phase)
    spec = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(u, dim=(-2, -1))), dim=(-2, -1))
    return spec * pre.to(device=u.device, dtype=u.dtype)


# -------------------------------------------------------------------------------------- closed forms
def gaussian_beam(n: int, dx: float, wavelength: float, w0: float, z: float,
                  dtype=torch.complex128) -> torch.Tensor:
    """The paraxial Gaussian beam (waist w0 at z = 0) on the centred grid, with its carrier:

        U(r, z) = (w0 / w(z)) exp(−r²/w(z)²) exp(i(kz + k r²/(2R(z)) − ψ(z))),
        z_R = π w0²/λ, w(z) = w0 √(1 + (z/z_R)²), 1/R = z/(z² + z_R²), ψ = arctan(z/z_R).

    Built in float64 (kz reduced mod 2π) and cast to ``dtype``."""
    k = 2.0 * math.pi / wavelength
    zr = math.pi * w0 ** 2 / wavelength
    x = centred_coords(n, dx)
    r2 = x[None, :] ** 2 + x[:, None] ** 2
    w = w0 * math.sqrt(1.0 + (z / zr) ** 2)
    inv_r = z / (z * z + zr * zr)
    psi = math.atan2(z, zr)
    amp = (w0 / w) * torch.exp(-r2 / w ** 2)
    phase = math.fmod(k * z, 2.0 * math.pi) + k * r2 * inv_r / 2.0 - psi
    return torch.polar(amp, phase).to(dtype)


# ------------------------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class SamplingReport:
    """The two compile-time conditions of the transfer-function propagators (SI units: metres)."""

    wavelength: float
    distance: float
    pitch: float
    aperture: float
    n: int

    @property
    def z_max(self) -> float:
        """z_max = 2DΔx/λ: the distance at which Δx = λz/(2D) (the chirp of H just sampled)."""
        return 2.0 * self.aperture * self.pitch / self.wavelength

    @property
    def pitch_min(self) -> float:
        """λz/(2D): the smallest pitch at which the transfer function's chirp is sampled."""
        return self.wavelength * self.distance / (2.0 * self.aperture)

    @property
    def sampling_ok(self) -> bool:
        return bool(self.pitch >= self.pitch_min)

    @property
    def u_limit(self) -> float:
        return band_limit(self.wavelength, self.distance, self.pitch, 2 * self.n)

    @property
    def nyquist(self) -> float:
        return 1.0 / (2.0 * self.pitch)

    @property
    def band_ok(self) -> bool:
        """The band-limit window keeps the whole sampled band: u_lim ≥ 1/(2Δx)."""
        return bool(self.u_limit >= self.nyquist)

    @property
    def fresnel_number(self) -> float:
        """N_F = (D/2)²/(λz): Fraunhofer needs N_F ≪ 1."""
        return (self.aperture / 2.0) ** 2 / (self.wavelength * self.distance)


# ------------------------------------------------------------------------------------------- modules
class TransferPropagator(torch.nn.Module):
    """U ↦ crop(F⁻¹(F(pad U) · H)) for a fixed transfer function H (complex128, kept on the module as a
    non-persistent buffer; cast once per dtype/device and cached)."""

    def __init__(self, h: torch.Tensor, pad: int = 2):
        super().__init__()
        self.register_buffer("h", h.to(torch.complex128), persistent=False)
        self.pad = pad
        self._cast: dict[tuple, torch.Tensor] = {}

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        key = (u.device, u.dtype)
        h = self._cast.get(key)
        if h is None or h.device != u.device:
            h = self.h.to(device=u.device, dtype=u.dtype)
            self._cast = {key: h}
        return apply_transfer(u, h, self.pad)


class FraunhoferPropagator(torch.nn.Module):
    """:func:`fraunhofer` with fixed pitch, wavelength and distance (metres)."""

    def __init__(self, dx: float, wavelength: float, distance: float):
        super().__init__()
        self.dx, self.wavelength, self.distance = dx, wavelength, distance

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return fraunhofer(u, self.dx, self.wavelength, self.distance)


# ------------------------------------------------------------------------------ diffractive-layer ops
def amplitude_field(x: torch.Tensor) -> torch.Tensor:
    """U = x + 0i (amplitude encoding of a real image)."""
    return torch.complex(x, torch.zeros_like(x))


def intensity(u: torch.Tensor) -> torch.Tensor:
    """I = |U|² = Re(U)² + Im(U)²."""
    return u.real ** 2 + u.imag ** 2


def phase_modulate(u: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """U · (m₀ + i m₁) for a mask ``[N, N, 2]`` whose pixels lie on the unit circle (a phase e^{iφ})."""
    m = torch.complex(mask[..., 0], mask[..., 1]).to(u.dtype)
    return u * m


def detector_regions(n: int, classes: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of ``classes`` square regions of side ``size`` on a centred k × k grid
    (k = ⌈√classes⌉, centres 2·size apart), filled row by row."""
    k = math.ceil(math.sqrt(classes))
    step = 2 * size
    origin = n // 2 - (k * step) // 2 + size // 2
    return [(origin + (c // k) * step, origin + (c % k) * step) for c in range(classes)]


def detector_readout(intensity: torch.Tensor, classes: int = 10, size: int = 4, normalize: bool = True,
                     temperature: float = 10.0) -> torch.Tensor:
    """[B, N, N] intensity → [B, classes]: E_k, the intensity integrated over each detector region; with
    ``normalize`` the logits are T·E_k / Σ_j E_j (the fraction of the detected energy, scaled by the
    temperature T, as in Lin et al. 2018's softmax readout), so they do not depend on the input power."""
    n = intensity.shape[-1]
    outs = [intensity[..., r:r + size, c:c + size].sum(dim=(-2, -1)) for r, c in detector_regions(n, classes, size)]
    e = torch.stack(outs, dim=-1)
    if normalize:
        e = temperature * e / (e.sum(dim=-1, keepdim=True) + torch.finfo(e.dtype).tiny)
    return e
