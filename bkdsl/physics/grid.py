"""The thesis' axial (r, z) grid on the half-step sub-lattice.

Cell centres are r_i = (i + 1/2) h, i = 0..nr-1 and z_j = (j - nz/2 + 1/2) h, j = 0..nz-1 (fm), so the
axis r = 0 and the plane z = 0 lie on cell faces (thesis ch. 3: dr = dz = 0.8 fm, 10 x 20 points,
r = 0.4..7.6, z = -7.6..7.6 fm; ch. 4: 0.4 fm, 48 x 128 points). The cylindrical measure of a cell is
dV_i = 2 pi r_i h^2 (fm^3), so \\int f d^3r = sum_ij f_ij dV_i.

Fields on the grid are tensors [..., nr, nz]. Derivatives are taken on cell faces (finite volumes):
ghost cells beyond r = nr h and beyond |z| = nz h / 2 hold zero density (box boundary); the axis face
r = 0 carries zero measure, which is the axial regularity condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bkdsl.diagnostics import BkError


@dataclass(frozen=True)
class GridSpec:
    """Grid size: nr x nz cells of side ``step`` fm."""

    nr: int
    nz: int
    step: float

    @property
    def r_max(self) -> float:
        return self.nr * self.step

    @property
    def z_max(self) -> float:
        return 0.5 * self.nz * self.step


class AxialGrid:
    """Coordinates and measures of a :class:`GridSpec` on one device/dtype (all in fm)."""

    def __init__(self, spec: GridSpec | tuple, device="cpu", dtype=torch.float64):
        if not isinstance(spec, GridSpec):
            spec = GridSpec(int(spec[0]), int(spec[1]), float(spec[2]))
        if spec.nr < 2 or spec.nz < 2 or spec.nz % 2 or spec.step <= 0:
            raise BkError("E0703", f"bad grid {spec.nr} x {spec.nz} x {spec.step} fm",
                          help="use nr >= 2, an even nz >= 2 and a positive step (fm)")
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = dtype
        h = spec.step
        self.h = h
        kw = dict(device=self.device, dtype=dtype)
        self.r = (torch.arange(spec.nr, **kw) + 0.5) * h                      # [nr]
        self.z = (torch.arange(spec.nz, **kw) - spec.nz / 2 + 0.5) * h        # [nz]
        self.R, self.Z = torch.meshgrid(self.r, self.z, indexing="ij")        # [nr, nz]
        self.dV = 2 * math.pi * self.R * h * h                                # [nr, nz] fm^3
        # measure attached to r-faces between cell i and i+1 (i = 0..nr-1; the last is the outer wall)
        rf = torch.arange(1, spec.nr + 1, **kw) * h
        self.w_rface = (2 * math.pi * rf * h * h)[:, None].expand(spec.nr, spec.nz)     # [nr, nz]
        # measure attached to z-faces between cell j-1 and j (j = 0..nz; both ends are walls)
        self.w_zface = (2 * math.pi * self.r * h * h)[:, None].expand(spec.nr, spec.nz + 1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.spec.nr, self.spec.nz)

    def integrate(self, f: torch.Tensor) -> torch.Tensor:
        """\\int f d^3r over the last two dims."""
        return (f * self.dV).sum(dim=(-2, -1))

    # -- finite-volume differences ----------------------------------------------------------
    @staticmethod
    def pad(a: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """Add ghost cells: one at r = nr (outer wall), one at each z end. [..., nr+1, nz+2]."""
        return torch.nn.functional.pad(a, (1, 1, 0, 1), value=value)

    def diff_r(self, ap: torch.Tensor) -> torch.Tensor:
        """d/dr on the nr outer r-faces of the cells, from a padded field. [..., nr, nz]."""
        return (ap[..., 1:, 1:-1] - ap[..., :-1, 1:-1]) / self.h

    def diff_z(self, ap: torch.Tensor) -> torch.Tensor:
        """d/dz on the nz+1 z-faces, from a padded field. [..., nr, nz+1]."""
        return (ap[..., :-1, 1:] - ap[..., :-1, :-1]) / self.h

    @staticmethod
    def avg_r(ap: torch.Tensor) -> torch.Tensor:
        return 0.5 * (ap[..., 1:, 1:-1] + ap[..., :-1, 1:-1])

    @staticmethod
    def avg_z(ap: torch.Tensor) -> torch.Tensor:
        return 0.5 * (ap[..., :-1, 1:] + ap[..., :-1, :-1])


def check_grid(spec: GridSpec, nucleus, margin_fm: float = 3.0) -> None:
    """Raise E0703 when the box cannot hold the nucleus (radius 1.2 A^(1/3) fm plus a tail margin)."""
    R = nucleus.radius_estimate()
    need = R + margin_fm
    if spec.r_max < need or spec.z_max < need:
        nr_min = math.ceil(need / spec.step)
        raise BkError(
            "E0703",
            f"grid too small for {nucleus.name}: box r <= {spec.r_max:.1f} fm, |z| <= {spec.z_max:.1f} fm, "
            f"but the nucleus needs {need:.1f} fm (radius 1.2 A^1/3 = {R:.1f} fm + {margin_fm:.0f} fm tail)",
            help=f"use at least nr = {nr_min} and nz = {2 * nr_min} cells at step {spec.step} fm",
        )


class SpectralBasis:
    """Band-limited variational space for the density amplitudes psi_q = sqrt(rho_q).

    The modes are the eigenvectors of the grid's own finite-volume Laplacian (separable: radial
    modes, the discrete analogue of J0(k_r r), times axial modes, the analogue of sin(k_z z), with
    the box walls as Dirichlet boundaries), orthonormal under the cylindrical measure, so that
    \\int psi^2 d^3r = sum c^2. Modes with k_r^2 + k_z^2 > k_cut^2 are left out.

    Why: the second-order ETF functional is a gradient expansion valid for wave numbers small
    compared with 2 k_F ~ 2.7 fm^-1; with Skyrme forces its isovector gradient coefficient is
    negative at nuclear density, so free variation on a fine grid runs away into short-wavelength
    neutron-proton stripes (docs/physics.md, "Why a band limit"). Restricting psi to k <= k_cut is the
    continuum version of the restricted-variational ETF of the literature (Fermi-profile densities).
    """

    def __init__(self, grid: AxialGrid, k_cut: float):
        import numpy as np
        from scipy.linalg import eigh

        nr, nz, h = grid.spec.nr, grid.spec.nz, grid.spec.step
        self.k_cut = float(k_cut)
        r = (np.arange(nr) + 0.5) * h
        rf = np.arange(1, nr + 1) * h                                # outer faces
        # radial: -(1/r) d/dr r d/dr ; A u = k^2 M u with M = diag(r)
        A = np.zeros((nr, nr))
        for i in range(nr):
            A[i, i] += rf[i] / h**2
            if i + 1 < nr:
                A[i, i + 1] -= rf[i] / h**2
                A[i + 1, i] -= rf[i] / h**2
                A[i + 1, i + 1] += rf[i] / h**2
        lam_r, ur = eigh(A, np.diag(r))
        # z: -d^2/dz^2 with Dirichlet walls (ghost cells zero)
        Az = (np.diag(np.full(nz, 2.0)) - np.diag(np.ones(nz - 1), 1) - np.diag(np.ones(nz - 1), -1)) / h**2
        lam_z, uz = eigh(Az)
        kr, kz = np.sqrt(np.clip(lam_r, 0, None)), np.sqrt(np.clip(lam_z, 0, None))
        keep_r, keep_z = kr <= k_cut, kz <= k_cut
        if keep_r.sum() < 2 or keep_z.sum() < 2:
            raise BkError("E0703", f"band limit k_cut = {k_cut} fm^-1 leaves no modes on this grid",
                          help="raise k_cut or enlarge the box")
        ur = ur[:, keep_r] / np.sqrt(2 * math.pi * h)                  # sum 2 pi r h u^2 = 1
        uz = uz[:, keep_z] / np.sqrt(h)                                # sum h u^2 = 1
        mask = (kr[keep_r][:, None] ** 2 + kz[keep_z][None, :] ** 2) <= k_cut**2
        kw = dict(device=grid.device, dtype=grid.dtype)
        self.phi_r = torch.as_tensor(ur, **kw)                         # [nr, Mr]
        self.phi_z = torch.as_tensor(uz, **kw)                         # [nz, Mz]
        self.mask = torch.as_tensor(mask, **kw)                        # [Mr, Mz]
        self.k_r = torch.as_tensor(kr[keep_r], **kw)
        self.k_z = torch.as_tensor(kz[keep_z], **kw)
        self.grid = grid

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)

    @property
    def n_modes(self) -> int:
        return int(self.mask.sum().item())

    def to_grid(self, c: torch.Tensor) -> torch.Tensor:
        """Coefficients [..., Mr, Mz] -> amplitudes on the grid [..., nr, nz]."""
        return self.phi_r @ (c * self.mask) @ self.phi_z.T

    def from_grid(self, psi: torch.Tensor) -> torch.Tensor:
        """Least-squares (measure-weighted) projection of grid amplitudes onto the modes."""
        w = psi * self.grid.dV
        return (self.phi_r.T @ w @ self.phi_z) * self.mask
