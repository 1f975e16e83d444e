"""Axial Coulomb potential: free-space Green's function with elliptic integrals, FFT along z.

For an axially symmetric charge density rho(r, z) the potential is

    V(r, z) = e^2 \\int r' dr' dz' rho(r', z') G(r, r', z - z'),
    G = \\int_0^{2 pi} dphi / |x - x'| = 4 K(m) / sqrt((r + r')^2 + (z - z')^2),
    m = 4 r r' / ((r + r')^2 + (z - z')^2),

with K the complete elliptic integral of the first kind (parameter m). The kernel is integrated over
each source cell (midpoint rule far away, Gauss-Legendre sub-quadrature near the target cell, the
log-singular self cell split in four so that the singularity sits on sub-cell corners), so the
potential is that of the piecewise-constant density with open (vacuum) boundary conditions: no box
images, no multipole boundary approximation. The z-dependence is a convolution, done by a zero-padded
real FFT of length 2 nz; the r-sum is a dense contraction. Cost per density: O(nr^2 nz log nz).

Units: rho in fm^-3, V in MeV (e^2 = 1.44 MeV fm).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.special import ellipk

from .constants import E2_MEV_FM
from .grid import AxialGrid, GridSpec


def _ring(r, rp, dz):
    """Potential at (r, z) of a unit ring of radius rp at z - dz, integrated over phi: 4K(m)/sqrt(...)."""
    s2 = (r + rp) ** 2 + dz**2
    m = np.clip(4.0 * r * rp / s2, 0.0, 1.0 - 1e-16)
    return 4.0 * ellipk(m) / np.sqrt(s2)


@lru_cache(maxsize=8)
def coulomb_kernel_np(nr: int, nz: int, h: float, near: int = 3, ng: int = 6) -> np.ndarray:
    """K[i, i', d] for d = 0..nz-1 (|z - z'| = d h), in fm^2 (times e^2 and rho gives MeV)."""
    r = (np.arange(nr) + 0.5) * h
    i, ip, d = np.meshgrid(np.arange(nr), np.arange(nr), np.arange(nz), indexing="ij")
    # midpoint rule: cell volume factor r' h^2 (the 2 pi is inside the ring integral)
    K = h * h * r[ip] * _ring(r[i], r[ip], d * h)
    # near-field: Gauss-Legendre sub-quadrature over the source cell
    x, w = np.polynomial.legendre.leggauss(ng)
    sel = (np.abs(i - ip) <= near) & (d <= near)
    ii, jj, dd = i[sel], ip[sel], d[sel]
    acc = np.zeros(ii.shape)
    self_cell = (ii == jj) & (dd == 0)
    # generic near cells
    for a, wa in zip(x, w):
        for b, wb in zip(x, w):
            rp = r[jj] + 0.5 * h * a
            dz = dd * h + 0.5 * h * b
            acc += 0.25 * wa * wb * h * h * rp * _ring(r[ii], rp, dz)
    # self cell: four quadrants with the singular point at a corner
    acc_self = np.zeros(ii.shape)
    for sr in (-0.5, 0.5):
        for sz in (-0.5, 0.5):
            for a, wa in zip(x, w):
                for b, wb in zip(x, w):
                    rp = r[jj] + 0.5 * h * (sr + 0.5 * a)
                    dz = 0.5 * h * (sz + 0.5 * b)
                    acc_self += 0.0625 * wa * wb * h * h * rp * _ring(r[ii], rp, dz)
    acc = np.where(self_cell, acc_self, acc)
    K[sel] = acc
    return K


class Coulomb:
    """Batched Coulomb solver for one grid: ``potential(rho_p)`` -> V in MeV."""

    def __init__(self, grid: AxialGrid):
        nr, nz, h = grid.spec.nr, grid.spec.nz, grid.spec.step
        K = coulomb_kernel_np(nr, nz, float(h))                     # [nr, nr, nz]
        L = 2 * nz
        full = np.zeros((nr, nr, L))
        full[:, :, :nz] = K
        full[:, :, L - nz + 1:] = K[:, :, 1:][:, :, ::-1]          # negative offsets (K even in d)
        kh = np.fft.rfft(full, axis=-1)                             # [nr, nr, nz+1]
        # The kernel is even in z - z' (the circular extension above is symmetric), so its transform is
        # real: keep the real part, checked, and contract with real and imaginary parts of the
        # density's transform as one real batched product (a complex einsum was ~100x slower on CPU).
        if np.abs(kh.imag).max() > 1e-9 * np.abs(kh.real).max():
            raise AssertionError("Coulomb kernel transform is not real: the z-extension is not even")
        self.khat = torch.as_tensor(np.ascontiguousarray(kh.real.transpose(2, 0, 1)),
                                    device=grid.device, dtype=grid.dtype)   # [nz+1, nr, nr]
        self.L = L
        self.nz = nz

    def potential(self, rho_p: torch.Tensor) -> torch.Tensor:
        """V(r, z) = e^2 \\int rho_p(r') / |r - r'| d^3r'  for rho_p [..., nr, nz] (MeV).

        V_hat(i, k) = sum_j K_hat(k, i, j) rho_hat(j, k) per z-frequency k (K_hat real), then irfft.
        """
        rh = torch.view_as_real(torch.fft.rfft(rho_p, n=self.L, dim=-1))     # [..., nr, nz+1, 2]
        vh = torch.einsum("kij,...jkc->...ikc", self.khat.to(rh.dtype), rh)
        vh = torch.view_as_complex(vh.contiguous())
        return E2_MEV_FM * torch.fft.irfft(vh, n=self.L, dim=-1)[..., : self.nz]


def uniform_sphere_potential(grid: AxialGrid, Z: float, R: float) -> torch.Tensor:
    """Analytic potential (MeV) of charge Z e uniformly spread in a sphere of radius R (fm)."""
    s = torch.sqrt(grid.R**2 + grid.Z**2)
    inside = Z * E2_MEV_FM / (2 * R) * (3 - (s / R) ** 2)
    return torch.where(s < R, inside, Z * E2_MEV_FM / s)
