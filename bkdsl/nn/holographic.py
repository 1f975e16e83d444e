"""Holographic compression (source 000 §5): bulk-to-boundary and boundary-to-bulk propagators of AdS₂.

The D entries of a hidden vector are read as the field φ_bulk on D sites of the Poincaré half-plane
AdS₂ (ds² = (dz² + dx²)/z², √g = 1/z²), laid out as r = ⌈D/d⌉ radial shells of d sites each: site i
sits at x_i = (i mod d) + ½ and z_i = z₀ · 2^{⌊i/d⌋} (equal proper spacing in ln z — the radial
direction as a renormalisation scale). The d boundary points are x'_j = j + ½. The bulk-to-boundary
propagator of a field of dimension Δ,

    K_Δ(z, x; x') = (z / (z² + (x − x')²))^Δ,
    φ_∂(x'_j) = ∫ K_Δ(z, x; x'_j) φ_bulk(z, x) √g dz dx ≈ Σ_i K_Δ(z_i, x_i; x'_j) φ_i · Δln z · Δx / z_i,

is the matrix M [d, D] (the measure √g dz dx = dz dx / z² = Δln z Δx / z with dz = z Δln z).

**Isometric by construction.** M itself is not norm-preserving. The propagators use W [D, d], the
polar factor of Mᵀ (Mᵀ = UΣVᵀ ⇒ W = UVᵀ, the Stiefel point closest to Mᵀ in Frobenius norm — the
kernel's geometry with the singular values set to 1), and keep it on the Stiefel manifold
St(D, d) = {W : WᵀW = I} as a geoopt ``ManifoldParameter`` (trained with a Riemannian optimizer):

    boundary → bulk   φ_bulk = W φ_∂          ‖Wφ‖² = φᵀWᵀWφ = ‖φ‖²       isometric
    bulk → boundary   φ_∂ = Wᵀ φ_bulk         ‖Wᵀφ‖ ≤ ‖φ‖ (WWᵀ a projector)  contractive, not isometric
                                               for d < D

so decode ∘ encode = WWᵀ is the orthogonal projection onto the d-dimensional code space: the cache
keeps d of D numbers per vector (compression D/d) and the reconstruction error is the norm of what
lies outside range(W) — for a fixed budget d, the smallest possible error is reached by the top-d
principal subspace of the cached vectors (Eckart–Young); :func:`fit_stiefel_pca` gives that point
of St(D, d) as the data-fitted alternative to the AdS kernel.
"""

from __future__ import annotations

import math

import geoopt
import torch


def ads2_sites(bulk: int, boundary: int, z0: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, x) of the D bulk sites: ⌈D/d⌉ shells z₀·2^a, d sites per shell at x = j + ½ (float64)."""
    i = torch.arange(bulk, dtype=torch.float64)
    shell = torch.div(i, boundary, rounding_mode="floor")
    return z0 * torch.pow(2.0, shell), torch.remainder(i, boundary) + 0.5


def bulk_to_boundary_kernel(bulk: int, boundary: int, delta: float = 1.0, z0: float = 0.5) -> torch.Tensor:
    """M [d, D]: K_Δ(z_i, x_i; x'_j) · √g_i dz dx, the discretised φ_∂ = ∫ K_Δ φ_bulk √g dz dx."""
    if not (boundary >= 1 and bulk >= boundary):
        raise ValueError(f"need 1 ≤ boundary ≤ bulk, got boundary = {boundary}, bulk = {bulk}")
    z, x = ads2_sites(bulk, boundary, z0)
    xb = torch.arange(boundary, dtype=torch.float64) + 0.5
    k = (z[None, :] / (z[None, :] ** 2 + (x[None, :] - xb[:, None]) ** 2)) ** delta
    measure = math.log(2.0) * 1.0 / z          # Δln z · Δx / z  (Δx = 1)
    return k * measure[None, :]


def polar_factor(a: torch.Tensor) -> torch.Tensor:
    """The orthonormal polar factor UVᵀ of a [D, d] matrix (closest Stiefel point in Frobenius norm)."""
    u, _, vh = torch.linalg.svd(a, full_matrices=False)
    return u @ vh


def ads_stiefel(bulk: int, boundary: int, delta: float = 1.0) -> torch.Tensor:
    """W₀ [D, d] on St(D, d): the polar factor of the AdS₂ bulk-to-boundary kernel's transpose."""
    return polar_factor(bulk_to_boundary_kernel(bulk, boundary, delta).T)


def fit_stiefel_pca(samples: torch.Tensor, boundary: int) -> torch.Tensor:
    """W [D, d] spanning the top-d principal directions (uncentred second moment) of samples [n, D]."""
    x = samples.reshape(-1, samples.shape[-1]).double()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("fit_stiefel_pca: the samples contain NaN or Inf")
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return vh[:boundary].T.contiguous()


class _Propagator(torch.nn.Module):
    def __init__(self, bulk: int, boundary: int, delta: float = 1.0, trainable: bool = True,
                 init: torch.Tensor | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        w0 = ads_stiefel(bulk, boundary, delta) if init is None else init.double()
        if w0.shape != (bulk, boundary):
            raise ValueError(f"W must be [{bulk}, {boundary}], got {list(w0.shape)}")
        self.bulk, self.boundary, self.delta = bulk, boundary, delta
        w = w0.to(dtype or torch.get_default_dtype())   # float64 for the claims' probes
        if trainable:
            self.w = geoopt.ManifoldParameter(w, manifold=geoopt.Stiefel())
        else:
            self.register_buffer("w", w)

    def extra_repr(self) -> str:
        return f"bulk={self.bulk}, boundary={self.boundary}, delta={self.delta}"


class BulkToBoundary(_Propagator):
    """φ_∂ = Wᵀ φ_bulk: [..., D] → [..., d] (contractive; the encoder of the compressed cache)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w.to(x.dtype)


class BoundaryToBulk(_Propagator):
    """φ_bulk = W φ_∂: [..., d] → [..., D] (isometric; the decoder)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w.to(x.dtype).T


def holographic_roundtrip(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """decode(encode(x)) = x W Wᵀ: the projection of each row of x onto range(W)."""
    w = w.to(x.dtype)
    return (x @ w) @ w.T
