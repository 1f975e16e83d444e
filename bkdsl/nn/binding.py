"""Binding operations of vector-symbolic architectures (source 001 §2, §4).

A *binding* combines a key (role) ``x`` and a value (filler) ``y`` of the same size into one vector;
an *unbinding* recovers the value from the bound vector and the key. Every op here works on the last
dimension(s) and broadcasts over the leading ones.

=====================  ==============================  =========  ============  ================
op                     formula                         unbind     commutative   unitary in ``y``
=====================  ==============================  =========  ============  ================
``circular_conv``      F⁻¹(F x ⊙ F y)   (HRR)          approx.    yes           no
``phasor_bind``        F⁻¹(P(F x) ⊙ F y), P = X/|X|    exact      no*           yes
``ghrr_bind``          z_j = Q(x_j) y_j, Q ∈ O(k)      exact      no (k > 1)    yes
``outer_bind``         W = y ⊗ x                       exact**    n/a           no
=====================  ==============================  =========  ============  ================

\\* ``phasor_bind(normalize="both")`` is the literal formula of source 001 §2.3.1,
P(F x) ⊙ P(F y): commutative, and its output always has a flat unit spectrum (so ‖z‖ = 1 whatever
‖y‖ is: a projection onto the complex torus followed by a group product, not a unitary map of y).
The default ``normalize="key"`` keeps the value's spectrum, so y ↦ bind(x, y) is an orthogonal
(real unitary) circulant map for every key x, and unbinding is exact for every y, not only for
phasor vectors. On phasor vectors the two coincide.

\\** for a single pair: ``outer_unbind(y ⊗ x, x) = y`` exactly; for a superposition of pairs only
when the keys are orthogonal (the capacity limit of the outer-product memory is d keys).

Real FFTs (``rfft`` / ``irfft`` with ``n = d``) are used throughout: a real vector's spectrum is
Hermitian, so the product of two such spectra is Hermitian again and ``irfft`` returns the exact real
result without the imaginary leakage of a full complex FFT (source 001 §2.1.1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

# |X_k| under this is treated as a zero bin: its phase is undefined, and we take phase 1 there.
# 1e-30 is far under any float32/float64 value a real input produces, and far above the denormals.
_TINY = 1e-30


def _rfft(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.rfft(x, n=x.shape[-1], dim=-1)


def _irfft(z: torch.Tensor, d: int) -> torch.Tensor:
    return torch.fft.irfft(z, n=d, dim=-1)


def phase(spec: torch.Tensor) -> torch.Tensor:
    """P(X) = X / |X| with P = 1 on (numerically) empty bins — exactly unit modulus everywhere."""
    mag = spec.abs()
    safe = torch.where(mag > _TINY, mag, torch.ones_like(mag))
    p = spec / safe
    return torch.where(mag > _TINY, p, torch.ones_like(p))


# --------------------------------------------------------------------------------------------
# HRR: circular convolution and correlation
# --------------------------------------------------------------------------------------------
def circular_conv(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HRR binding z_i = Σ_j x_j y_{(i−j) mod d} = F⁻¹(F x ⊙ F y). Commutative, associative."""
    d = x.shape[-1]
    return _irfft(_rfft(x) * _rfft(y), d)


def circular_corr(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Circular correlation (x ⊘ z)_i = Σ_j x_j z_{(i+j) mod d} = F⁻¹(conj(F x) ⊙ F z).

    The approximate inverse of HRR binding: ``circular_corr(x, circular_conv(x, y)) ≈ y`` when x has
    i.i.d. N(0, 1/d) entries (then F x has |X_k|² ≈ 1 on average, but not exactly: the recovered
    vector is y plus crosstalk noise of relative size ~1 per bound pair — the HRR capacity limit)."""
    d = x.shape[-1]
    return _irfft(torch.conj(_rfft(x)) * _rfft(z), d)


def hrr_unbind(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Recover the value bound to key ``x`` in ``z`` (approximately): correlation with the key."""
    return circular_corr(x, z)


# --------------------------------------------------------------------------------------------
# phasor binding
# --------------------------------------------------------------------------------------------
def phasor_bind(x: torch.Tensor, y: torch.Tensor, normalize: str = "key") -> torch.Tensor:
    """Phasor (unitary Fourier) binding.

    ``normalize="key"``: z = F⁻¹(P(F x) ⊙ F y) — y ↦ z is orthogonal for every key x (exact inverse
    :func:`phasor_unbind`). ``normalize="both"``: z = F⁻¹(P(F x) ⊙ P(F y)) as in source 001 §2.3.1."""
    d = x.shape[-1]
    Y = _rfft(y)
    if normalize == "both":
        Y = phase(Y)
    elif normalize != "key":
        raise ValueError(f"normalize must be 'key' or 'both', got {normalize!r}")
    return _irfft(phase(_rfft(x)) * Y, d)


def phasor_unbind(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The exact inverse of ``phasor_bind(x, ·)``: y = F⁻¹(conj P(F x) ⊙ F z) (P is unit modulus)."""
    d = z.shape[-1]
    return _irfft(torch.conj(phase(_rfft(x))) * _rfft(z), d)


def random_phasor(*shape: int, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A real vector with a flat unit spectrum and uniform random phases (a point of the torus)."""
    d = shape[-1]
    g = torch.randn(*shape, generator=generator, dtype=dtype)
    return _irfft(phase(_rfft(g)), d)


# --------------------------------------------------------------------------------------------
# non-commutative binding: GHRR-style block-orthogonal matrices
# --------------------------------------------------------------------------------------------
def orthogonalize(a: torch.Tensor) -> torch.Tensor:
    """Project square blocks ``[..., k, k]`` to O(k) by a sign-fixed QR (Q R with diag R > 0).

    A Haar-distributed orthogonal matrix when ``a`` has i.i.d. Gaussian entries."""
    q, r = torch.linalg.qr(a)
    s = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return q * s.unsqueeze(-2)


def ghrr_bind(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Generalised HRR binding with matrix blocks: a d-vector is m = d / k² blocks of k × k matrices;
    the key's blocks are projected to O(k) and z_j = Q(x_j) · y_j (a matrix product per block).

    Matrix products do not commute for k > 1, so bind(x, y) ≠ bind(y, x): order-sensitive data
    (source 001 §2.4). For each key, y ↦ z is orthogonal (‖Q y_j‖_F = ‖y_j‖_F), and
    :func:`ghrr_unbind` inverts it exactly. k = 1 is ±1 sign binding (still not commutative: the
    key is projected to its signs, the value is not)."""
    q, yb = _ghrr_blocks(x, y, k)
    return (q @ yb).reshape(y.shape)


def ghrr_unbind(z: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    """The exact inverse of ``ghrr_bind(x, ·, k)``: y_j = Q(x_j)ᵀ z_j."""
    q, zb = _ghrr_blocks(x, z, k)
    return (q.transpose(-1, -2) @ zb).reshape(z.shape)


def _ghrr_blocks(x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = x.shape[-1]
    if d % (k * k) != 0:
        raise ValueError(f"ghrr_bind: dimension {d} is not a multiple of k² = {k * k}")
    m = d // (k * k)
    xb = x.reshape(*x.shape[:-1], m, k, k)
    yb = y.reshape(*y.shape[:-1], m, k, k)
    return orthogonalize(xb), yb


# --------------------------------------------------------------------------------------------
# outer-product binding (the binding of fast weights, source 001 §4.2)
# --------------------------------------------------------------------------------------------
def outer_bind(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """W = y ⊗ x (``[..., d_y, d_x]``): the tensor-product binding that fast weights superpose."""
    return y.unsqueeze(-1) * x.unsqueeze(-2)


def outer_unbind(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y = W x / ‖x‖² — exact for one pair; for Σ y_i ⊗ x_i exact when the x_i are orthogonal."""
    return (w @ x.unsqueeze(-1)).squeeze(-1) / (x * x).sum(-1, keepdim=True)


# --------------------------------------------------------------------------------------------
# circulant (CCNN) layer
# --------------------------------------------------------------------------------------------
class CirculantLinear(nn.Module):
    """y = w ⊛ x + b: an N × N circulant matrix held as its N-vector w, applied in O(N log N).

    ``spectrum``: ``"free"`` (any circulant), ``"phasor"`` (the spectrum of w is projected to unit
    modulus, so the layer is orthogonal: unitary), ``"contractive"`` (each bin is scaled to
    modulus ≤ 1, so ‖w ⊛ x‖ ≤ ‖x‖). The bias is off for the structured variants unless asked, since
    an affine map with b ≠ 0 is not norm-preserving."""

    def __init__(self, n: int, spectrum: str = "free", bias: bool = False):
        super().__init__()
        if spectrum not in ("free", "phasor", "contractive"):
            raise ValueError(f"spectrum must be free, phasor or contractive, got {spectrum!r}")
        self.n, self.spectrum = n, spectrum
        # i.i.d. N(0, 1/n): |W_k|² ≈ 1 on average, the HRR convention
        self.weight = nn.Parameter(torch.randn(n) / math.sqrt(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def kernel_spectrum(self) -> torch.Tensor:
        W = _rfft(self.weight)
        if self.spectrum == "phasor":
            return phase(W)
        if self.spectrum == "contractive":
            return W / torch.clamp(W.abs(), min=1.0)
        return W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = _rfft(x)
        y = _irfft(self.kernel_spectrum().to(X.dtype) * X, self.n)
        return y + self.bias if self.bias is not None else y

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Exact inverse for the phasor spectrum (conjugate spectrum); a Wiener-free 1/W otherwise."""
        if self.bias is not None:
            y = y - self.bias
        W = self.kernel_spectrum()
        Y = _rfft(y)
        W = W.to(Y.dtype)
        inv = torch.conj(W) if self.spectrum == "phasor" else 1.0 / W
        return _irfft(inv * Y, self.n)


class BindingOp(nn.Module):
    """A binding as a module: ``forward(x, y)`` binds, ``unbind(z, x)`` recovers y (where it exists)."""

    def __init__(self, kind: str, normalize: str = "key", k: int = 2):
        super().__init__()
        if kind not in ("circular_conv", "phasor_bind", "ghrr_bind", "outer_bind"):
            raise ValueError(f"unknown binding {kind!r}")
        self.kind, self.normalize, self.k = kind, normalize, k

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "circular_conv":
            return circular_conv(x, y)
        if self.kind == "phasor_bind":
            return phasor_bind(x, y, self.normalize)
        if self.kind == "ghrr_bind":
            return ghrr_bind(x, y, self.k)
        return outer_bind(x, y)

    def unbind(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "circular_conv":
            return hrr_unbind(z, x)
        if self.kind == "phasor_bind":
            return phasor_unbind(z, x)
        if self.kind == "ghrr_bind":
            return ghrr_unbind(z, x, self.k)
        return outer_unbind(z, x)


class HolographicStack(nn.Module):
    """Holographic weight synthesis (source 001 §2): ``depth`` circulant layers y ← w_l ⊛ y whose
    weights are synthesised by binding a learned role r_l with a learned filler f_l.

    ``binding="phasor"``: W_l = P(F r_l) ⊙ P(F f_l) — unit modulus on every bin, so every layer and the
    whole stack are orthogonal: signals and gradients keep their norm at any depth.
    ``binding="hrr"``: W_l = F r_l ⊙ F f_l — plain circular convolution; each bin of the stack is
    scaled by Π_l |R_l,k||F_l,k|, a product of 2·depth random moduli that explodes on some bins and
    vanishes on others (the gradient-scaling problem of source 001 §2.2)."""

    def __init__(self, n: int, depth: int = 8, binding: str = "phasor"):
        super().__init__()
        if binding not in ("phasor", "hrr"):
            raise ValueError(f"binding must be phasor or hrr, got {binding!r}")
        self.n, self.depth, self.binding = n, depth, binding
        self.roles = nn.Parameter(torch.randn(depth, n) / math.sqrt(n))
        self.fillers = nn.Parameter(torch.randn(depth, n) / math.sqrt(n))

    def spectra(self) -> torch.Tensor:
        R, F_ = _rfft(self.roles), _rfft(self.fillers)
        if self.binding == "phasor":
            return phase(R) * phase(F_)
        return R * F_

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = _rfft(x)
        W = self.spectra().to(X.dtype)
        for l in range(self.depth):
            X = W[l] * X
        return _irfft(X, self.n)
