"""Orbital-free Skyrme energy: second-order extended Thomas-Fermi (ETF) on the axial grid.

Species index q: 0 = neutrons, 1 = protons. Densities rho_q = psi_q^2 (fm^-3), lengths fm, energies MeV.

With B_q = hbar^2/2m*_q = hbar^2/2m (1 - 1/A) + C1 rho + C2 rho_q (one-body c.m. correction as in the
functional's fit) and the spin-orbit form factor W_q = (W0/2) grad(rho + rho_q), the ETF kinetic
energy density to order hbar^2 (Brack, Guet, Hakansson, Phys. Rep. 123 (1985) 275; Bartel & Bencheikh,
EPJA 14 (2002) 179) is

    tau_q = (3/5)(3 pi^2)^(2/3) rho_q^(5/3) + (1/36)(grad rho_q)^2/rho_q + (1/3) lap rho_q
            + (1/6) grad f.grad rho_q / f + (1/6) rho_q lap f / f - (1/12) rho_q (grad f / f)^2
            + (1/2) rho_q (W_q / B_q)^2,       f = f_q = B_q / (hbar^2/2m),
    J_q   = - rho_q W_q / B_q.

Inserting into the Skyrme energy density and integrating the Laplacians by parts (box walls hold
zero density; the axis carries zero measure) gives the functional minimised here:

    E = sum_q \\int [ B_q ( kappa rho_q^(5/3) + (1/9)|grad psi_q|^2 ) - (1/3) grad B_q . grad rho_q
                      - (1/12) rho_q |grad B_q|^2 / B_q - (1/2) rho_q |W_q|^2 / B_q ]
      + \\int (t0/4)[(2+x0) rho^2 - (2x0+1) sum_q rho_q^2]
      + \\int (t3/24) rho^alpha [(2+x3) rho^2 - (2x3+1) sum_q rho_q^2]
      + \\int c_g |grad rho|^2 + c_gq sum_q |grad rho_q|^2
      + (1/2) \\int rho_p V_C - (3/4) e^2 (3/pi)^(1/3) \\int rho_p^(4/3)          (Coulomb: direct + Slater)
      [+ (C/2) (\\int z rho)^2   (centre-of-mass constraint, thesis eq. 3.6)]
      [+ \\int v (rho_n + rho_p)   (external field)]

The (1/36)(grad rho)^2/rho term is written as (1/9)|grad psi|^2, which is regular in the tails. The
spin-orbit term is the full order-hbar^2 ETF spin-orbit energy, -(1/2) rho_q W_q^2 / B_q (J_q eliminated).
J^2 terms (present in e.g. SLy5) are not included.
"""

from __future__ import annotations

import torch

from .constants import SLATER, TF_KAPPA
from .coulomb import Coulomb
from .grid import AxialGrid
from .nuclei import Nucleus
from .skyrme import SkyrmeParams

#: names of the energy components returned by :meth:`SkyrmeETF.energy` (all MeV, shape [B])
COMPONENTS = ("kinetic", "skyrme", "spin_orbit", "coulomb_direct", "coulomb_exchange",
              "edf", "com", "external", "total")


def _acc(x: torch.Tensor) -> torch.Tensor:
    """Promote to float64 before a spatial sum: a float32 work precision keeps ~1e-8 relative accuracy
    per point, but sums of O(10^4) terms of both signs (~10^4 MeV) must be accumulated in float64."""
    return x.double() if x.dtype == torch.float32 else x


class SkyrmeETF:
    """The ETF Skyrme energy of a batch of density amplitudes on one grid."""

    def __init__(self, params: SkyrmeParams, nucleus: Nucleus, grid: AxialGrid, *,
                 coulomb: bool = True, com_C: float = 0.0):
        self.p = params
        self.nucleus = nucleus
        self.grid = grid
        self.com_C = float(com_C)  # MeV fm^-2
        self.coulomb = Coulomb(grid) if coulomb else None
        A = nucleus.A
        self.h2m = params.hbar2_2m * ((1.0 - 1.0 / A) if params.com_one_body else 1.0)
        self.numbers = torch.tensor([float(nucleus.N), float(nucleus.Z)], device=grid.device,
                                    dtype=grid.dtype)

    # ---------------------------------------------------------------------------------------
    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Map free amplitudes x [B, 2, nr, nz] to psi with \\int psi_q^2 d^3r = (N, Z) exactly.

        x_q is sqrt(rho_q dV) up to a scale, so psi_q = x_q sqrt(N_q / sum x_q^2) / sqrt(dV).
        """
        norm2 = (x * x).sum(dim=(-2, -1), keepdim=True)
        return x * torch.sqrt(self.numbers[:, None, None] / norm2) / torch.sqrt(self.grid.dV)

    def energy(self, psi: torch.Tensor, v: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Energy components (MeV, [B]) for amplitudes psi [B, 2, nr, nz] (rho_q = psi_q^2).

        ``v`` is an external potential in MeV, [B, nr, nz] (same for both species) or [B, 2, nr, nz].
        """
        g, p = self.grid, self.p
        dV = g.dV
        rho_q = psi * psi                                     # [B, 2, nr, nz]
        rho = rho_q.sum(dim=1)                                # [B, nr, nz]

        # effective mass B_q and its face values (padded fields carry the zero-density ghosts)
        rho_q_p = g.pad(rho_q)
        rho_p_ = rho_q_p.sum(dim=1, keepdim=True)
        Bq_p = self.h2m + p.c_eff_total * rho_p_ + p.c_eff_q * rho_q_p      # [B, 2, nr+1, nz+2]
        Bq = Bq_p[..., :-1, 1:-1]
        psi_p = g.pad(psi)

        # ---- kinetic (ETF, order hbar^2) ----
        e_tf = Bq * TF_KAPPA * rho_q.clamp_min(0) ** (5.0 / 3.0)
        kin = _acc(e_tf * dV).sum(dim=(-3, -2, -1))
        # gradient terms on faces: r-faces (weight w_rface) and z-faces (weight w_zface)
        kin_faces = 0.0
        so = 0.0
        wq = 0.5 * p.W0
        fin = []
        for diff, avg, w in ((g.diff_r, g.avg_r, g.w_rface), (g.diff_z, g.avg_z, g.w_zface)):
            dpsi = diff(psi_p)
            drq = diff(rho_q_p)
            dB = diff(Bq_p)
            Bf = avg(Bq_p)
            rqf = avg(rho_q_p)
            e = Bf * dpsi * dpsi / 9.0 - dB * drq / 3.0 - rqf * dB * dB / (12.0 * Bf)
            kin_faces = kin_faces + _acc(e * w).sum(dim=(-3, -2, -1))
            Wq = wq * (drq.sum(dim=1, keepdim=True) + drq)
            so = so + _acc(-0.5 * rqf * Wq * Wq / Bf * w).sum(dim=(-3, -2, -1))
            # Skyrme gradient terms
            drho = drq.sum(dim=1)
            eg = p.c_grad_total * drho * drho + p.c_grad_q * (drq * drq).sum(dim=1)
            fin.append(_acc(eg * w).sum(dim=(-2, -1)))
        kinetic = kin + kin_faces

        # ---- Skyrme potential terms ----
        sum_q2 = (rho_q * rho_q).sum(dim=1)
        rho_a = rho.clamp_min(1e-300) ** p.alpha
        e0 = 0.25 * p.t0 * ((2 + p.x0) * rho * rho - (2 * p.x0 + 1) * sum_q2)
        e3 = p.t3 / 24.0 * rho_a * ((2 + p.x3) * rho * rho - (2 * p.x3 + 1) * sum_q2)
        skyrme = _acc((e0 + e3) * dV).sum(dim=(-2, -1)) + fin[0] + fin[1]

        out = {"kinetic": kinetic, "skyrme": skyrme, "spin_orbit": so}
        rp = rho_q[:, 1]
        if self.coulomb is not None:
            Vc = self.coulomb.potential(rp)
            out["coulomb_direct"] = 0.5 * _acc(rp * Vc * dV).sum(dim=(-2, -1))
            out["coulomb_exchange"] = -SLATER * _acc(rp.clamp_min(0) ** (4.0 / 3.0) * dV).sum(dim=(-2, -1))
        else:
            out["coulomb_direct"] = torch.zeros_like(kinetic)
            out["coulomb_exchange"] = torch.zeros_like(kinetic)
        edf = kinetic + skyrme + so + out["coulomb_direct"] + out["coulomb_exchange"]
        out["edf"] = edf
        zc = _acc(g.Z * rho * dV).sum(dim=(-2, -1))
        out["com"] = 0.5 * self.com_C * zc * zc
        if v is None:
            out["external"] = torch.zeros_like(edf)
        else:
            if v.dim() == rho.dim():
                out["external"] = _acc(v * rho * dV).sum(dim=(-2, -1))
            else:
                out["external"] = _acc(v * rho_q * dV).sum(dim=(-3, -2, -1))
        out["total"] = edf + out["com"] + out["external"]
        return out
