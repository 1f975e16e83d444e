r"""Axial Kohn-Sham Skyrme-HF+BCS on the (r, z) half-step sub-lattice (thesis App. B, Algorithm 1).

Time-reversal and axial symmetry: each orbital of angular-momentum projection Omega > 0 is the spinor
(thesis eq. B.15)

    psi = (2 pi)^(-1/2) ( e^{i(Omega - 1/2) phi} a(r, z),  e^{i(Omega + 1/2) phi} b(r, z) ),

normalised as \int r dr dz (a^2 + b^2) = 1, and stands for itself and its time-reversed partner. With
occupation v^2 and u v (BCS) the local densities are (eqs. B.16-B.19; J is derived directly from
J = -i sum psi^dagger (grad psi x sigma), its phi component cancels between time-reversed partners):

    rho     = (1/pi) sum v^2 (a^2 + b^2)
    tau     = (1/pi) sum v^2 [ |grad a|^2 + |grad b|^2 + (L- a / r)^2 + (L+ b / r)^2 ],  L-+ = Omega -+ 1/2
    J_r     = (1/pi) sum v^2 [ (L- a^2 - L+ b^2) / r - b d_z a + a d_z b ]
    J_z     = (1/pi) sum v^2 [ b d_r a - a d_r b - 2 Omega a b / r ]
    rho~    = (1/pi) sum u v (a^2 + b^2)

The energy is the SLy4 functional (as in :mod:`bkdsl.physics.hf_spherical`; Coulomb left out, as in the
thesis' ch. 3), plus the surface DDDI pairing functional
E_pair = (V0/4) sum_q \int [1 - (rho/rho0)^gamma] rho~_q^2 and the centre-of-mass constraint
E_CoM = (C/2)(\int z rho)^2 (thesis eq. 3.6).

**Discretisation.** Cell centres r_i = (i + 1/2) h, z_j = (j - n_z/2 + 1/2) h; the box boundary sets
orbitals to zero outside; at the axis a component with |L| even (odd) continues evenly (oddly) to
r < 0. Cell volumes 2 pi r_i h^2 (the midpoint rule) overestimate \int r g dr by (h^2/24) g(0) for g even
in r (Euler-Maclaurin); the default ``quadrature="endpoint"`` corrects the first two cells and the axis
face (:class:`AxialLattice`), which brings 16O on the 0.8 fm lattice to 0.06 % of the spherical solver.
The kinetic energy is a sum over cell faces of B |D f|^2 with a staggered (centre -> face)
derivative of order 2, 4, 6 or 8, so h is exactly the derivative of the discrete energy and has no
checkerboard modes; the spin-orbit term uses collocated central derivatives of the same order. The
single-particle Hamiltonian per Omega is assembled from the autograd derivatives G = dE/d(field) of the
discrete energy with respect to each field, as h = (1/2) sum (1/pi) S P^T diag(G) Q S over the bilinear
terms above (S = diag(1/sqrt(w / 2 pi)), w the cell volume, maps the orthonormal grid vector g to a). So eps_k = g_k^T h g_k,
Delta_k = -(1/2) g_k^T K g_k with K from G_{rho~} (B.27), and v^2 from B.28 with lambda fixed by
2 sum v^2 = N_q, in the pairing window f_k (:func:`pairing_window`: sharp at eps_cut = 60 MeV as in the
thesis, or a Fermi factor there) that multiplies u_k v_k in rho~ and hence Delta_k.

**Iteration.** The fields (rho_q, tau's, J, rho~) are mixed with modified Broyden mixing (Johnson,
PRB 38 (1988) 12807, in the form of Baran et al., PRC 78 (2008) 014318; ``mix`` is its linear part alpha),
as the thesis does, until |Delta E| < ``tol_e`` (MeV) and the largest change of rho_q between the input
and output of an iteration is below ``tol_rho`` (fm^-3). 24Mg is soft in Q20 on the thesis lattice; a
quadratic constraint (C/2)(Q20 - Q)^2 (``q20_constraint``) holds a shape, ``beta2`` deforms the start.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from bkdsl.diagnostics import BkError

from .guards import require_physical
from .nuclei import get_nucleus
from .skyrme import SkyrmeParams, get_functional

#: thesis ch. 3 set-up for 24Mg
THESIS_GRID = (10, 20, 0.8)
THESIS_V0 = -683.344        # MeV fm^3
THESIS_CUT = 60.0           # MeV
THESIS_OMEGA_MAX = 9        # 2 Omega_max
THESIS_COM_C = 0.625        # MeV fm^-2
#: stencil order of the library and the CLI: 8 reproduces the spherical 16O HF to 0.06 % on the thesis
#: lattice and agrees with order 6 to 0.08 MeV on 24Mg (docs/physics.md)
DEFAULT_ORDER = 8
#: diffuseness (MeV) of the smooth pairing window at THESIS_CUT (see :func:`pairing_window`); 0 = sharp
CUT_DIFFUSENESS = 0.5
#: every setting the thesis' text fixes beyond the defaults (ch. 3, App. B): the midpoint radial measure
#: of eq. 3.19 (sum 2 pi r_i rho dr dz = A), the sharp 60 MeV window (ch. 3), the mean field without the
#: pairing rearrangement term (App. B after B.10). ``axial_hf_bcs(..., **THESIS_TEXT)``
THESIS_TEXT = {"quadrature": "midpoint", "cut_diffuseness": 0.0, "pairing_rearrangement": False}
#: forms of the spin-current (J^2) energy, :meth:`AxialSkyrme._j2`
J2_FORMS = ("none", "skyrme", "b1prime")

#: staggered (centre -> face) first-derivative and interpolation weights, and collocated central
#: first-derivative weights, of orders 2, 4, 6, 8 (standard finite-difference coefficients)
_STAG = {2: ([-1.0, 1.0], [0.5, 0.5]),
         4: ([1 / 24, -9 / 8, 9 / 8, -1 / 24], [-1 / 16, 9 / 16, 9 / 16, -1 / 16]),
         6: ([-3 / 640, 25 / 384, -75 / 64, 75 / 64, -25 / 384, 3 / 640],
             [3 / 256, -25 / 256, 75 / 128, 75 / 128, -25 / 256, 3 / 256]),
         8: ([5 / 7168, -49 / 5120, 245 / 3072, -1225 / 1024, 1225 / 1024, -245 / 3072, 49 / 5120, -5 / 7168],
             [-5 / 2048, 49 / 2048, -245 / 2048, 1225 / 2048, 1225 / 2048, -245 / 2048, 49 / 2048, -5 / 2048])}
_CENT = {2: [-0.5, 0.0, 0.5], 4: [1 / 12, -2 / 3, 0.0, 2 / 3, -1 / 12],
         6: [-1 / 60, 3 / 20, -3 / 4, 0.0, 3 / 4, -3 / 20, 1 / 60],
         8: [1 / 280, -4 / 105, 1 / 5, -4 / 5, 0.0, 4 / 5, -1 / 5, 4 / 105, -1 / 280]}


def _fold(n: int, rows: list[tuple[int, list[tuple[int, float]]]], parity: int | None) -> torch.Tensor:
    """Matrix [len(rows), n] from stencils over centre indices; index < 0 mirrors to -1-index with
    ``parity`` (None: zero, the box wall), index >= n is zero (box wall)."""
    A = torch.zeros(len(rows), n, dtype=torch.float64)
    for out, taps in rows:
        for idx, w in taps:
            if idx >= n:
                continue
            if idx < 0:
                if parity is None:
                    continue
                A[out, -1 - idx] += parity * w
            else:
                A[out, idx] += w
    return A


def staggered(n: int, h: float, order: int, parity: int | None):
    """Derivative and interpolation from n centres to n + 1 faces (face k between centres k-1, k)."""
    wd, wi = _STAG[order]
    m = len(wd) // 2
    D = _fold(n, [(k, [(k - m + t, wd[t] / h) for t in range(len(wd))]) for k in range(n + 1)], parity)
    I = _fold(n, [(k, [(k - m + t, wi[t]) for t in range(len(wi))]) for k in range(n + 1)], parity)
    return D, I


def central(n: int, h: float, order: int, parity: int | None) -> torch.Tensor:
    w = _CENT[order]
    m = len(w) // 2
    return _fold(n, [(i, [(i - m + t, w[t] / h) for t in range(len(w))]) for i in range(n)], parity)


class AxialLattice:
    """Operators of the (r, z) sub-lattice for a given stencil order."""

    def __init__(self, nr: int, nz: int, h: float, order: int = 4, quadrature: str = "midpoint",
                 device: str | torch.device = "cpu"):
        if order not in _STAG:
            raise BkError("E0703", f"stencil order {order} is not available", help="use 2, 4, 6 or 8")
        self.nr, self.nz, self.h, self.order = nr, nz, h, order
        dt = torch.float64
        self.r = (torch.arange(nr, dtype=dt) + 0.5) * h
        self.z = (torch.arange(nz, dtype=dt) - nz / 2 + 0.5) * h
        self.R = self.r[:, None].expand(nr, nz)
        self.Z = self.z[None, :].expand(nr, nz)
        rw = self.r.clone()                      # radial weights / h of the cells: midpoint rule
        rfw = torch.arange(nr + 1, dtype=dt) * h  # and of the r-faces: trapezoid rule (F(0) = 0)
        if quadrature == "endpoint":
            # Euler-Maclaurin end corrections at the axis for \int_0 F dr with F = r g odd, g even:
            # midpoint sum = integral + (h^2/24) g(0), trapezoid sum = integral - (h^2/12) g(0);
            # g(0) = (9 g(r_0) - g(r_1)) / 8 on the cells, g(0) itself on face 0
            rw[0] -= h / 24 * 9 / 8
            rw[1] += h / 24 / 8
            rfw[0] += h / 12
        elif quadrature != "midpoint":
            raise BkError("E0703", f"unknown radial quadrature `{quadrature}`", help="use midpoint or endpoint")
        self.quadrature = quadrature
        self.w = 2 * math.pi * rw[:, None].expand(nr, nz) * h * h           # d^3r of a cell
        self.w_rf = (2 * math.pi * rfw * h * h)[:, None].expand(nr + 1, nz)  # r-faces
        self.w_zf = (2 * math.pi * rw * h * h)[:, None].expand(nr, nz + 1)
        self.Ir = torch.eye(nr, dtype=dt)
        self.Iz = torch.eye(nz, dtype=dt)
        self.Dz_f, self.Iz_f = staggered(nz, h, order, None)
        self.Dz_c = central(nz, h, order, None)
        self.Dr_f = {p: staggered(nr, h, order, p)[0] for p in (1, -1)}
        self.Ir_f = staggered(nr, h, order, 1)[1]                             # densities: even in r
        self.Dr_c = {p: central(nr, h, order, p) for p in (1, -1)}
        self.S = 1.0 / torch.sqrt(self.w / (2 * math.pi))                     # g -> a
        self.device = torch.device(device)
        if self.device.type != "cpu":             # built on the CPU (small), used on the device
            for k, v in list(vars(self).items()):
                if isinstance(v, torch.Tensor):
                    setattr(self, k, v.to(self.device))
                elif isinstance(v, dict):
                    setattr(self, k, {p: t.to(self.device) for p, t in v.items()})


def _apply(Ar, Az, F):
    """(Ar x Az) applied to states F [..., nr, nz]."""
    return torch.einsum("ik,jl,...kl->...ij", Ar, Az, F)


def _form(Ar, Az, G, Br, Bz):
    """Matrix [..., nr nz, nr nz] of sum_x G(x) (A f)(x) (B f)(x) (not symmetrised): A^T diag(G) B with
    A = Ar (x) Az, B = Br (x) Bz as Kronecker products; G [..., P] carries an optional batch."""
    A = torch.kron(Ar, Az)
    B = torch.kron(Br, Bz)
    return (A * G.reshape(*G.shape[:-2], -1, 1)).transpose(-1, -2) @ B


@dataclass
class AxialResult:
    nucleus: str
    functional: str
    energy: float
    binding_energy: float
    components: dict[str, float]
    levels: list[dict]
    iterations: int
    converged: bool
    grid: tuple[int, int, float]
    order: int
    wall_s: float
    r_m: float = 0.0
    Q20: float = 0.0
    pairing_gap: list[float] = field(default_factory=list)
    fermi: list[float] = field(default_factory=list)
    history: list[float] = field(default_factory=list)
    #: last self-consistency residual max|rho_out - rho_in| (fm^-3) and the centre of mass <z> (fm)
    residual: float = float("nan")
    z_cm: float = float("nan")
    #: rho_q [2, nr, nz] (fm^-3) of the converged state
    rho: torch.Tensor | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "rho"}
        d["method"] = "hf-bcs"
        d["units"] = {"energy": "MeV", "components": "MeV", "levels.energy": "MeV", "r_m": "fm",
                      "Q20": "b", "pairing_gap": "MeV", "fermi": "MeV"}
        return d


class AxialSkyrme:
    """Discrete energy of the fields on the lattice, and the Hamiltonian it implies."""

    FIELDS = ("rho", "tau_rf", "tau_zf", "tau_c", "J_r", "J_z", "kappa")

    def __init__(self, params: SkyrmeParams, A: int, lat: AxialLattice, *, V0: float, rho0: float = 0.16,
                 gamma: float = 1.0, com_C: float = 0.0, v_ext: torch.Tensor | None = None,
                 q20: tuple[float, float] | None = None, pairing_rearrangement: bool = True,
                 j2_terms: str = "none", pairing_density: str = "total"):
        if pairing_density not in ("total", "species"):
            raise BkError("E0703", f"unknown pairing density `{pairing_density}`", help="use total or species")
        self.pairing_density = pairing_density
        if j2_terms not in J2_FORMS:
            raise BkError("E0703", f"unknown J^2 form `{j2_terms}`", help=f"use one of {', '.join(J2_FORMS)}")
        self.p, self.lat = params, lat
        self.j2_terms = j2_terms
        self.h2m = params.hbar2_2m * ((1.0 - 1.0 / A) if params.com_one_body else 1.0)
        self.V0, self.rho0, self.gamma, self.com_C = V0, rho0, gamma, com_C
        self.v_ext = v_ext                                  # [2, nr, nz] MeV or None
        self.q20 = q20                                      # (target b, C MeV b^-2) or None
        self.pairing_rearrangement = pairing_rearrangement

    # ---- fields of one species from the states a, b [k, nr, nz] of one Omega block ----
    def fields(self, a, b, vv, uv, omega2: int) -> dict[str, torch.Tensor]:
        L = self.lat
        c = 1.0 / math.pi
        R = L.R
        lm, lp = (omega2 - 1) // 2, (omega2 + 1) // 2
        pa, pb = (1 if lm % 2 == 0 else -1), (1 if lp % 2 == 0 else -1)

        def wsum(x):
            return c * torch.einsum("...k,...kij->...ij", vv, x)

        out = {"rho": wsum(a * a + b * b), "kappa": c * torch.einsum("...k,...kij->...ij", uv, a * a + b * b)}
        dra_f, drb_f = _apply(L.Dr_f[pa], L.Iz, a), _apply(L.Dr_f[pb], L.Iz, b)
        dza_f, dzb_f = _apply(L.Ir, L.Dz_f, a), _apply(L.Ir, L.Dz_f, b)
        out["tau_rf"] = wsum(dra_f * dra_f + drb_f * drb_f)
        out["tau_zf"] = wsum(dza_f * dza_f + dzb_f * dzb_f)
        out["tau_c"] = wsum(((lm * a) ** 2 + (lp * b) ** 2) / R**2)
        dza, dzb = _apply(L.Ir, L.Dz_c, a), _apply(L.Ir, L.Dz_c, b)
        dra, drb = _apply(L.Dr_c[pa], L.Iz, a), _apply(L.Dr_c[pb], L.Iz, b)
        out["J_r"] = wsum((lm * a * a - lp * b * b) / R - b * dza + a * dzb)
        out["J_z"] = wsum(b * dra - a * drb - omega2 * a * b / R)
        return out

    # ---- energy of both species: F[name] is [2, ...] ----
    def energy(self, F: dict[str, torch.Tensor], rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Energy components [...] (MeV) of fields F[name] [..., 2, ...] (an optional leading batch);
        ``rows`` picks the external fields of those batch elements (the solver's active ones)."""
        L, p = self.lat, self.p
        v_ext = self.v_ext if (self.v_ext is None or rows is None) else self.v_ext[rows]
        sp = (-2, -1)
        rq = F["rho"]
        rho = rq.sum(-3)
        # densities on the faces (even in r, zero beyond the box)
        rq_rf = torch.einsum("ik,...kj->...ij", L.Ir_f, rq)
        rq_zf = torch.einsum("jl,...il->...ij", L.Iz_f, rq)
        B_rf = self.h2m + p.c_eff_total * rq_rf.sum(-3, keepdim=True) + p.c_eff_q * rq_rf
        B_zf = self.h2m + p.c_eff_total * rq_zf.sum(-3, keepdim=True) + p.c_eff_q * rq_zf
        B_c = self.h2m + p.c_eff_total * rho.unsqueeze(-3) + p.c_eff_q * rq
        kin = ((B_rf * F["tau_rf"]).sum(-3) * L.w_rf).sum(sp) + ((B_zf * F["tau_zf"]).sum(-3) * L.w_zf).sum(sp) + \
            ((B_c * F["tau_c"]).sum(-3) * L.w).sum(sp)
        sq2 = (rq * rq).sum(-3)
        e0 = 0.25 * p.t0 * ((2 + p.x0) * rho * rho - (2 * p.x0 + 1) * sq2)
        e3 = p.t3 / 24.0 * rho.clamp_min(1e-300) ** p.alpha * ((2 + p.x3) * rho * rho - (2 * p.x3 + 1) * sq2)
        vol = ((e0 + e3) * L.w).sum(sp)
        # gradient terms on faces
        gr = torch.einsum("ik,...kj->...ij", L.Dr_f[1], rq)
        gz = torch.einsum("jl,...il->...ij", L.Dz_f, rq)
        surf = ((p.c_grad_total * gr.sum(-3) ** 2 + p.c_grad_q * (gr * gr).sum(-3)) * L.w_rf).sum(sp) + \
            ((p.c_grad_total * gz.sum(-3) ** 2 + p.c_grad_q * (gz * gz).sum(-3)) * L.w_zf).sum(sp)
        # spin-orbit, collocated gradients
        cr = torch.einsum("ik,...kj->...ij", L.Dr_c[1], rq)
        cz = torch.einsum("jl,...il->...ij", L.Dz_c, rq)
        Jr, Jz = F["J_r"], F["J_z"]
        so = 0.5 * p.W0 * ((Jr.sum(-3) * cr.sum(-3) + Jz.sum(-3) * cz.sum(-3)) + (Jr * cr + Jz * cz).sum(-3))
        so = (so * L.w).sum(sp)
        j2 = self._j2(Jr, Jz)
        # without the rearrangement (the thesis' choice, App. B after B.10) the density in the pairing
        # factor does not vary: same energy, but U_q = dE/drho_q loses -(V0 gamma / 4 rho0)(rho/rho0)^(gamma-1) rho~^2
        # eq. 1.19: the form factor 1 - (rho/rho0)^gamma uses the total rho ("total"); "species" puts
        # rho_q there instead (a variant some codes use; only for comparison)
        rho_pair = rho.unsqueeze(-3) if self.pairing_density == "total" else rq
        rho_pair = rho_pair if self.pairing_rearrangement else rho_pair.detach()
        pair = 0.25 * self.V0 * (((1 - (rho_pair / self.rho0) ** self.gamma) * F["kappa"] ** 2).sum(-3) * L.w).sum(sp)
        zc = (L.Z * rho * L.w).sum(sp)
        com = 0.5 * self.com_C * zc * zc
        out = {"kinetic": kin, "volume": vol, "surface": surf, "spin_orbit": so, "j2": j2, "pairing": pair}
        out["edf"] = kin + vol + surf + so + j2 + pair
        # thesis eq. 3.13: E_kin = hbar^2/2m (1 - 1/A) \int tau (the free part of the kinetic term; the
        # effective-mass part is in E_int = E_Skyrme - E_kin, eq. 3.14). Not added to anything.
        out["kinetic_free"] = self.h2m * (((F["tau_rf"].sum(-3) * L.w_rf).sum(sp) + (F["tau_zf"].sum(-3) * L.w_zf).sum(sp)
                                           + (F["tau_c"].sum(-3) * L.w).sum(sp)))
        out["com"] = com
        zero = torch.zeros_like(com)
        out["external"] = ((v_ext * rq).sum(-3) * L.w).sum(sp) if v_ext is not None else zero
        if self.q20 is not None:      # quadratic constraint (C/2)(Q20 - Q)^2, Q20 in b
            q = ((rho * (2 * L.Z**2 - L.R**2) * L.w).sum(sp)) * math.sqrt(5 / (16 * math.pi)) / 100
            out["q20_constraint"] = 0.5 * self.q20[1] * (q - self.q20[0]) ** 2
        else:
            out["q20_constraint"] = zero
        out["total"] = out["edf"] + com + out["external"] + out["q20_constraint"]
        return out

    def _j2(self, Jr: torch.Tensor, Jz: torch.Tensor) -> torch.Tensor:
        """Spin-current (J^2) energy [...] (MeV) of J_q [..., 2, nr, nz]; zero for ``j2_terms="none"``.

        * ``"none"``: the thesis' functional (eq. 1.17 has no J^2; App. B after B.10 drops the b1' J_q
          term of B_q, "本論文でもこれらの項は無視している") and SLy4's fit (Chabanat et al. 1998);
        * ``"skyrme"``: the full t1, t2 exchange terms (Engel et al., Nucl. Phys. A 249 (1975) 215;
          kept in SLy5): -(1/16)(t1 x1 + t2 x2) J^2 + (1/16)(t1 - t2) sum_q J_q^2;
        * ``"b1prime"``: the term whose derivative is the dropped b1' J_q of eq. B.10:
          (b1'/2) sum_q J_q^2 with b1' = (1/8)[t1(1 + 2 x1) - t2(1 + 2 x2)] = -c_eff_q.
        """
        L, p, sp = self.lat, self.p, (-2, -1)
        if self.j2_terms == "none":
            return torch.zeros(Jr.shape[:-3], dtype=Jr.dtype, device=Jr.device)
        jq2 = Jr * Jr + Jz * Jz                                   # J_q^2 [..., 2, nr, nz]
        if self.j2_terms == "skyrme":
            j2 = Jr.sum(-3) ** 2 + Jz.sum(-3) ** 2
            e = -(p.t1 * p.x1 + p.t2 * p.x2) / 16.0 * j2 + (p.t1 - p.t2) / 16.0 * jq2.sum(-3)
        else:
            e = -0.5 * p.c_eff_q * jq2.sum(-3)
        return (e * L.w).sum(sp)

    def hamiltonian(self, G: dict[str, torch.Tensor], q: int, omega2: int):
        """(h, K) [2M, 2M] for species q and 2 Omega = omega2, from the field derivatives G."""
        L = self.lat
        lm, lp = (omega2 - 1) // 2, (omega2 + 1) // 2
        pa, pb = (1 if lm % 2 == 0 else -1), (1 if lp % 2 == 0 else -1)
        c = 1.0 / math.pi
        R = L.R
        Ir, Iz = L.Ir, L.Iz
        g = {k: v.select(-3, q) for k, v in G.items()}
        blk = {("a", "a"): 0, ("b", "b"): 0, ("a", "b"): 0, ("b", "a"): 0}

        def add(x, y, M):
            blk[(x, y)] = blk[(x, y)] + M

        def sym(x, y, M):          # a cross term x^T M y in the quadratic form
            add(x, y, 0.5 * M)
            add(y, x, 0.5 * M.transpose(-1, -2))

        # diagonal-in-space terms
        diag_a = g["rho"] + g["tau_c"] * (lm / R) ** 2 + g["J_r"] * lm / R
        diag_b = g["rho"] + g["tau_c"] * (lp / R) ** 2 - g["J_r"] * lp / R
        add("a", "a", _form(Ir, Iz, diag_a, Ir, Iz))
        add("b", "b", _form(Ir, Iz, diag_b, Ir, Iz))
        # kinetic on faces
        for x, par in (("a", pa), ("b", pb)):
            add(x, x, _form(L.Dr_f[par], Iz, g["tau_rf"], L.Dr_f[par], Iz))
            add(x, x, _form(Ir, L.Dz_f, g["tau_zf"], Ir, L.Dz_f))
        # spin-orbit cross terms: J_r: - b d_z a + a d_z b ; J_z: b d_r a - a d_r b - 2 Omega a b / r
        sym("b", "a", _form(Ir, Iz, -g["J_r"], Ir, L.Dz_c))
        sym("a", "b", _form(Ir, Iz, g["J_r"], Ir, L.Dz_c))
        sym("b", "a", _form(Ir, Iz, g["J_z"], L.Dr_c[pa], Iz))
        sym("a", "b", _form(Ir, Iz, -g["J_z"], L.Dr_c[pb], Iz))
        sym("a", "b", _form(Ir, Iz, -(omega2 / R) * g["J_z"], Ir, Iz))
        M = L.nr * L.nz
        batch = g["rho"].shape[:-2]
        H = torch.zeros(*batch, 2 * M, 2 * M, dtype=torch.float64, device=g["rho"].device)
        idx = {"a": slice(0, M), "b": slice(M, 2 * M)}
        for (x, y), T in blk.items():
            if isinstance(T, torch.Tensor):
                H[..., idx[x], idx[y]] = T
        s = L.S.reshape(M).repeat(2)
        H = c * s[:, None] * H * s[None, :]
        H = 0.5 * (H + H.transpose(-1, -2))
        k_diag = c * (L.S.reshape(M) ** 2) * g["kappa"].reshape(*batch, M)
        K = torch.diag_embed(torch.cat([k_diag, k_diag], -1))
        return 0.5 * H, K, (pa, pb, lm, lp)


def pairing_window(eps: torch.Tensor, e_cut: float, diffuseness: float) -> torch.Tensor:
    """Weight f_k of each level in the pairing channel (the pairing window).

    ``diffuseness`` = 0: the sharp window f = 1 for eps < e_cut, else 0 (the thesis' choice, ch. 3).
    ``diffuseness`` = mu > 0: the Fermi factor f = 1 / (1 + exp((eps - e_cut) / mu)) of the smooth
    cut-off used with HF+BCS and the surface DDDI by Bonche, Flocard, Heenen, Krieger and Weiss,
    Nucl. Phys. A 443 (1985) 39, and Krieger et al., Nucl. Phys. A 517 (1990) 275 (code ev8), here
    placed at the thesis' e_cut. f enters rho~ = (1/pi) sum f u v (a^2 + b^2) and hence
    Delta_k = -(1/2) dE/d(u_k v_k) = f_k (...): the self-consistency map no longer jumps when a level
    crosses e_cut."""
    if diffuseness <= 0:
        return (eps < e_cut).to(eps.dtype)
    return torch.sigmoid(-(eps - e_cut) / diffuseness)


def _bcs(eps, delta, N):
    """v^2 and uv (eq. B.28) for energies eps [n] and gaps delta [n] (the window already in delta),
    with lambda fixed by 2 sum v^2 = N by bisection. Without pairing (every delta = 0) the N/2 lowest
    levels are filled (a level degenerate with the last one within 1e-9 MeV shares the remainder
    evenly) and lambda is the mid-point of the gap: B.28 at delta = 0 is a step, undefined at eps = lambda."""
    if not bool((delta != 0).any()):
        order = torch.argsort(eps)
        e_sorted = eps[order]
        pairs = N / 2
        full = int(math.floor(pairs + 1e-12))
        vv_sorted = torch.zeros_like(eps)
        vv_sorted[:full] = 1.0
        if full < len(eps):
            e_last = float(e_sorted[full - 1]) if full > 0 else -math.inf
            if pairs - full > 1e-12 or (full > 0 and abs(float(e_sorted[full]) - e_last) < 1e-9):
                # the last shell is open: share the particles of the degenerate set evenly
                e_f = float(e_sorted[full]) if pairs - full > 1e-12 else e_last
                shell = (e_sorted - e_f).abs() < 1e-9
                inside = int(shell[:full].sum())
                vv_sorted[shell] = (inside + (pairs - full)) / int(shell.sum())
            lam = 0.5 * (float(e_sorted[full - 1]) + float(e_sorted[full])) if full > 0 else float(e_sorted[0])
        else:
            lam = float(e_sorted[-1])
        vv = torch.empty_like(eps)
        vv[order] = vv_sorted
        return vv, torch.zeros_like(eps), lam

    def occ(lam):
        E = torch.sqrt((eps - lam) ** 2 + delta**2).clamp_min(1e-300)
        return 0.5 * (1 - (eps - lam) / E), 0.5 * delta / E

    lo, hi = float(eps.min()) - 50, float(eps.max()) + 50
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        n = 2 * float(occ(mid)[0].sum())
        if n < N:
            lo = mid
        else:
            hi = mid
    lam = 0.5 * (lo + hi)
    vv, uv = occ(lam)
    return vv, uv, lam


def _levels(last_levels: list, i: int, e_max: float = 10.0) -> list[dict]:
    """Levels of element i below ``e_max`` (MeV), both species, sorted by (q, energy)."""
    out = []
    for q, (om2, eps, vv, dl) in enumerate(last_levels):
        out += [{"q": "np"[q], "Omega": f"{int(o)}/2", "energy": float(e), "v2": float(v), "gap": float(d)}
                for o, e, v, d in zip(om2.tolist(), eps[i].tolist(), vv[i].tolist(), dl[i].tolist()) if e < e_max]
    return sorted(out, key=lambda d_: (d_["q"], d_["energy"]))


def _bcs_batch(eps: torch.Tensor, delta: torch.Tensor, N: int):
    """:func:`_bcs` for a batch eps, delta [B, n]: the elements with pairing bisect lambda together
    (200 halvings of [min eps - 50, max eps + 50] MeV, as :func:`_bcs`), the others fill levels one by one."""
    paired = (delta != 0).any(-1)
    vv, uv = torch.zeros_like(eps), torch.zeros_like(eps)
    lam = [0.0] * eps.shape[0]
    if bool(paired.any()):
        e, d = eps[paired], delta[paired]
        lo = e.amin(-1) - 50
        hi = e.amax(-1) + 50

        def occ(l_):
            E = torch.sqrt((e - l_[:, None]) ** 2 + d**2).clamp_min(1e-300)
            return 0.5 * (1 - (e - l_[:, None]) / E), 0.5 * d / E

        for _ in range(200):
            mid = 0.5 * (lo + hi)
            low = 2 * occ(mid)[0].sum(-1) < N
            lo, hi = torch.where(low, mid, lo), torch.where(low, hi, mid)
        lam_p = 0.5 * (lo + hi)
        vv[paired], uv[paired] = occ(lam_p)
        for i, l_ in zip(paired.nonzero().flatten().tolist(), lam_p.tolist()):
            lam[i] = l_
    for i in (~paired).nonzero().flatten().tolist():
        vv[i], uv[i], lam[i] = _bcs(eps[i], delta[i], N)
    return vv, uv, lam


def _multipole_q20(lat: AxialLattice, rho: torch.Tensor) -> float:
    r"""Q20 = sqrt(5 / 16 pi) \int (2 z^2 - r^2) rho d^3r, in barn."""
    return float((rho * (2 * lat.Z**2 - lat.R**2) * lat.w).sum()) * math.sqrt(5 / (16 * math.pi)) / 100


def axial_hf_bcs(nucleus="Mg24", functional="sly4", *, v_ext: torch.Tensor | None = None, **kw) -> AxialResult:
    r"""Axial Kohn-Sham Skyrme-HF+BCS ground state (see the module docstring); the thesis' 24Mg set-up
    by default. Keywords (all optional):

    ``grid`` (n_r, n_z, h), ``order`` (stencil 2/4/6/8), ``omega_max2`` (2 Omega_max), ``V0`` (0 switches
    pairing off: sharp filling, for closed shells), ``e_cut``, ``cut_diffuseness`` (MeV; smooths the
    pairing window, :func:`pairing_window`; 0 = the thesis' sharp window), ``com_C``, ``rho0``, ``gamma``,
    ``mix`` and ``mixing`` ("broyden" or "linear"), ``max_iter``, ``tol_e`` (MeV), ``tol_rho`` (fm^-3),
    ``beta2`` (deforms the initial Woods-Saxon well, R -> R (1 + beta2 Y20)), ``z_shift`` (moves it),
    ``q20_constraint`` = (Q, C): adds (C/2)(Q20 - Q)^2 (Q20 in b, C in MeV b^-2; (0, 2000) holds the
    shape spherical), ``quadrature`` ("endpoint" or "midpoint", :class:`AxialLattice`),
    ``pairing_rearrangement`` (False: the mean field leaves out the pairing rearrangement term, as the
    thesis does; the energy is the same functional), ``log``.
    ``v_ext`` [nr, nz] or [2, nr, nz] (MeV) adds the external field \int v_q rho_q (thesis eq. 1.25).
    The c.m. term, the constraint and the field are minimised but not in the reported E (they are in
    ``components``). Raises E0704 if it does not converge, E0705 for an unphysical state."""
    v = None if v_ext is None else torch.as_tensor(v_ext, dtype=torch.float64).unsqueeze(0)
    out = _solve_batch(nucleus, functional, v, 1, **kw)[0]
    if isinstance(out, BkError):
        raise out
    return out


def axial_hf_bcs_batch(nucleus="Mg24", functional="sly4", *, v_ext: torch.Tensor, **kw) -> list:
    """Ground states of one nucleus in B external fields ``v_ext`` [B, nr, nz] or [B, 2, nr, nz] (MeV),
    solved together: each per-Omega eigenproblem is one batched ``torch.linalg.eigh`` on [B, 2M, 2M],
    fields, energy and Hamiltonian carry the batch; BCS and the (per-field) Broyden mixing run per
    element, and an element stops changing once it has converged, so each result equals the
    one-at-a-time solve (tested). Returns a list of B items: an :class:`AxialResult`, or the
    :class:`BkError` (E0704 / E0705) of an element that did not converge or is unphysical. Keywords as
    :func:`axial_hf_bcs`."""
    v = torch.as_tensor(v_ext, dtype=torch.float64)
    if v.dim() not in (3, 4) or v.shape[0] < 1:
        raise BkError("E0703", f"external fields of shape {tuple(v.shape)}",
                      help="give a tensor [B, nr, nz] or [B, 2, nr, nz] in MeV")
    return _solve_batch(nucleus, functional, v, int(v.shape[0]), **kw)


def _solve_batch(nucleus, functional, v_ext, nb: int, *, grid=THESIS_GRID, order: int = DEFAULT_ORDER,
                 omega_max2: int = THESIS_OMEGA_MAX, V0: float = THESIS_V0, e_cut: float = THESIS_CUT,
                 cut_diffuseness: float = CUT_DIFFUSENESS,
                 com_C: float = THESIS_COM_C, coulomb: bool = False, rho0: float = 0.16, gamma: float = 1.0,
                 mix: float = 0.3, mixing: str = "broyden", max_iter: int = 400, tol_e: float = 1e-6,
                 tol_rho: float = 1e-6, z_shift: float = 0.0, beta2: float = 0.0,
                 q20_constraint: tuple[float, float] | None = None, quadrature: str = "endpoint",
                 pairing_rearrangement: bool = True, j2_terms: str = "none", pairing_density: str = "total",
                 device: str | torch.device = "cpu", log=None) -> list:
    t0 = time.perf_counter()
    if coulomb:
        raise BkError("E0201", "the axial HF+BCS solver has no Coulomb term yet",
                      help="use coulomb=False (the thesis' ch. 3 set-up)")
    nuc = get_nucleus(nucleus)
    params = get_functional(functional)
    nr, nz, h = int(grid[0]), int(grid[1]), float(grid[2])
    if nz % 2 or nr < 2 or h <= 0 or not math.isfinite(h):
        raise BkError("E0703", f"bad axial grid {grid}", help="n_r >= 2, n_z even, step > 0")
    if not (cut_diffuseness >= 0 and math.isfinite(cut_diffuseness)):
        raise BkError("E0703", f"bad pairing-window diffuseness {cut_diffuseness}", help="use a value >= 0 (MeV)")
    if mixing not in MIXERS:
        raise BkError("E0201", f"unknown mixing `{mixing}`", help=f"use one of {', '.join(MIXERS)}")
    lat = AxialLattice(nr, nz, h, order, quadrature, device=device)
    vq = None
    if v_ext is not None:
        v_ext = v_ext.to(lat.device)
        vq = v_ext.unsqueeze(1).expand(nb, 2, nr, nz) if v_ext.shape == (nb, nr, nz) else v_ext
        if vq.shape != (nb, 2, nr, nz) or not bool(torch.isfinite(vq).all()):
            raise BkError("E0703", f"external field of shape {tuple(v_ext.shape)[1:]} or not finite",
                          help=f"give a finite tensor [{nr}, {nz}] or [2, {nr}, {nz}] in MeV")
    F = AxialSkyrme(params, nuc.A, lat, V0=V0, rho0=rho0, gamma=gamma, com_C=com_C, v_ext=vq, q20=q20_constraint,
                    pairing_rearrangement=pairing_rearrangement, j2_terms=j2_terms,
                    pairing_density=pairing_density)
    numbers = (nuc.N, nuc.Z)
    # N = Z without Coulomb and with one external field for both: neutrons and protons are identical
    # (the thesis solves one species and copies it)
    symmetric = nuc.N == nuc.Z and (vq is None or bool(torch.equal(vq[:, 0], vq[:, 1])))
    species = (0,) if symmetric else (0, 1)
    omegas = list(range(1, omega_max2 + 1, 2))
    e_keep = e_cut + (40.0 * cut_diffuseness if cut_diffuseness > 0 else 0.0)   # f < 5e-18 above
    # initial guess: Woods-Saxon mean field, constant gap 12 / sqrt(A) (thesis App. B.2)
    Rws = 1.25 * nuc.A ** (1 / 3)
    dist = torch.sqrt(lat.R**2 + (lat.Z - z_shift) ** 2)
    cos2 = ((lat.Z - z_shift) / dist) ** 2
    R_th = Rws * (1 + beta2 * math.sqrt(5 / (16 * math.pi)) * (3 * cos2 - 1))      # R (1 + beta2 Y20)
    Uws = -50.0 / (1 + torch.exp((dist - R_th) / 0.65))
    G = {k: torch.zeros(nb, 2, *shape, dtype=torch.float64, device=lat.device) for k, shape in
         (("rho", (nr, nz)), ("tau_rf", (nr + 1, nz)), ("tau_zf", (nr, nz + 1)), ("tau_c", (nr, nz)),
          ("J_r", (nr, nz)), ("J_z", (nr, nz)), ("kappa", (nr, nz)))}
    G["rho"][:] = Uws * lat.w
    G["tau_rf"][:] = F.h2m * lat.w_rf
    G["tau_zf"][:] = F.h2m * lat.w_zf
    G["tau_c"][:] = F.h2m * lat.w
    gap0 = 12.0 / math.sqrt(nuc.A) if V0 != 0 else 0.0
    lam = [[0.0, 0.0] for _ in range(nb)]
    gaps = [[0.0, 0.0] for _ in range(nb)]
    Fields: dict | None = None
    E_prev = [float("inf")] * nb
    mixers = [MIXERS[mixing](mix) for _ in range(nb)]
    hist: list[list[float]] = [[] for _ in range(nb)]
    done = [False] * nb               # converged (frozen) or failed
    failed: list[str | None] = [None] * nb
    res = [float("inf")] * nb
    iters = [0] * nb
    snap: list[dict | None] = [None] * nb       # state at convergence: spectrum, gaps, lambda, wall time
    last_levels: list = [None, None]            # per species: (2 Omega, eps, v^2, Delta) of the last step
    it = 0
    for it in range(1, max_iter + 1):
        # only the elements still iterating are diagonalised and mixed (a converged one is frozen)
        act = [i for i in range(nb) if not done[i]]
        ai = torch.tensor(act, device=lat.device)
        na = len(act)
        Ga = {k: v[ai] for k, v in G.items()}
        new: dict[str, list] = {k: [] for k in AxialSkyrme.FIELDS}
        for q in species:
            blocks = []
            for om2 in omegas:
                H, K, _ = F.hamiltonian(Ga, q, om2)                   # [na, 2M, 2M]
                e, V = torch.linalg.eigh(H)
                n_keep = max(int((e < e_keep).sum(-1).max()), 1)      # above e_keep: f = 0, v^2 = 0
                e, V = e[:, :n_keep], V[:, :, :n_keep]
                f = pairing_window(e, e_cut, cut_diffuseness)
                d = f * ((-0.5 * (V * (K @ V)).sum(-2)) if it > 1 else torch.full_like(e, gap0))
                blocks.append((om2, e, d, f, V))
            eps = torch.cat([x[1] for x in blocks], -1)
            dl = torch.cat([x[2] for x in blocks], -1)
            vv, uv, lam_q = _bcs_batch(eps, dl, numbers[q])
            gap_q = ((vv * dl).sum(-1) / vv.sum(-1)).tolist()
            for j, i in enumerate(act):
                lam[i][q], gaps[i][q] = lam_q[j], gap_q[j]
            # the spectrum is kept as tensors (rows: the active elements) and turned into levels only
            # for an element that converges
            last_levels[q] = (torch.cat([torch.full((x[1].shape[-1],), x[0]) for x in blocks]),
                              eps.cpu(), vv.cpu(), dl.cpu())
            k0 = 0
            acc = None
            for om2, e, d, f, V in blocks:
                n = e.shape[-1]
                g_ = V.transpose(-1, -2).reshape(na, n, 2, nr, nz)
                sl = slice(k0, k0 + n)
                fq = F.fields(g_[:, :, 0] * lat.S, g_[:, :, 1] * lat.S, vv[:, sl], f * uv[:, sl], om2)
                acc = fq if acc is None else {k: acc[k] + fq[k] for k in acc}
                k0 += n
            for k in AxialSkyrme.FIELDS:
                new[k].append(acc[k])
        if symmetric:
            for i in act:
                lam[i][1], gaps[i][1] = lam[i][0], gaps[i][0]
            last_levels[1] = last_levels[0]
            new = {k: [v[0], v[0]] for k, v in new.items()}
        new = {k: torch.stack(v, 1) for k, v in new.items()}          # [na, 2, ...]
        if Fields is None:
            Fields = new                                               # it = 1: every element is active
        else:
            res_a = (new["rho"] - Fields["rho"][ai]).abs().flatten(1).amax(1).tolist()
            for j, i in enumerate(act):
                res[i] = res_a[j]                                      # max|rho_out - rho_in|, fm^-3
                out = mixers[i]({k: v[i] for k, v in Fields.items()}, {k: v[j] for k, v in new.items()})
                for k in Fields:
                    Fields[k][i] = out[k]
        Fr = {k: v[ai].detach().clone().requires_grad_(True) for k, v in Fields.items()}
        en = F.energy(Fr, rows=ai)
        grads = torch.autograd.grad(en["total"].sum(), [Fr[k] for k in AxialSkyrme.FIELDS])
        for k, g_ in zip(AxialSkyrme.FIELDS, grads):
            G[k][ai] = g_.detach()
        E_act = en["edf"].detach().tolist()
        en_rows = {k: v.detach().reshape(-1).tolist() if v.dim() else [float(v.detach())] * na for k, v in en.items()}
        for j, i in enumerate(act):
            E = E_act[j]
            hist[i].append(E)
            iters[i] = it
            if not (math.isfinite(E) and (math.isfinite(res[i]) or it == 1)):
                done[i], failed[i] = True, "not finite"
            elif abs(E - E_prev[i]) < tol_e and res[i] < tol_rho and it > 5:
                done[i] = True
                snap[i] = {"levels": _levels(last_levels, j), "comps": {k: v[j] for k, v in en_rows.items()},
                           "gaps": list(gaps[i]), "lam": list(lam[i]), "wall_s": time.perf_counter() - t0}
            E_prev[i] = E
        if log:
            log(it, hist[0][-1], gaps[0], lam[0], res[0], _multipole_q20(lat, Fields["rho"][0].sum(0)))
        if all(done):
            break
    results: list = []
    for i in range(nb):
        if snap[i] is None:
            h_ = hist[i]
            results.append(BkError(
                "E0704", f"axial HF+BCS of {nuc.name} did not converge in {iters[i]} iterations"
                + (f" ({failed[i]})" if failed[i] else "") + f" (last energies {h_[-3:]})",
                help="lower mix, try mixing='linear', or raise max_iter; a shape-soft nucleus may need "
                     "q20_constraint or a deformed start (beta2)",
                notes=[f"last E = {h_[-1] if h_ else float('nan'):.6f} MeV, residual max|d rho| = "
                       f"{res[i]:.3e} fm^-3, gap n = {gaps[i][0]:.4f} MeV, lambda n = {lam[i][0]:.4f} MeV, "
                       f"last 10 energies {[round(x, 5) for x in h_[-10:]]}"]))
            continue
        Fi = {k: v[i].detach() for k, v in Fields.items()}
        comps = snap[i]["comps"]
        rho = Fi["rho"].sum(0)
        r_m = math.sqrt(float((rho * (lat.R**2 + lat.Z**2) * lat.w).sum() / (rho * lat.w).sum()))
        try:
            require_physical(nuc.name, A=nuc.A, energy=comps["edf"], rms_radius=r_m, rho_max=float(rho.max()),
                             rho_min=float(Fi["rho"].min()))
        except BkError as e:
            results.append(e)
            continue
        results.append(AxialResult(
            nucleus=nuc.name, functional=params.name, energy=comps["edf"], binding_energy=-comps["edf"],
            components=comps, levels=snap[i]["levels"], iterations=iters[i], converged=True, grid=(nr, nz, h),
            order=order, wall_s=snap[i]["wall_s"], r_m=r_m, Q20=_multipole_q20(lat, rho),
            pairing_gap=snap[i]["gaps"], fermi=snap[i]["lam"], history=hist[i], residual=res[i],
            z_cm=float((lat.Z * rho * lat.w).sum() / (rho * lat.w).sum()), rho=Fi["rho"].clone()))
    return results


class BroydenMixer:
    """Modified Broyden mixing of a dict of tensors (Baran et al., PRC 78 (2008) 014318, eqs. 6-12, with
    weights w_i = 1, w_0 = 0.01 and the last ``memory`` steps): x_{n+1} = x_n + alpha F_n - sum_l
    gamma_l u_l, F = x_out - x_in. Restart: when |F_n| > ``restart`` |F_{n-1}| the history is
    dropped and the step is linear (counted in ``restarts``)."""

    def __init__(self, alpha: float = 0.3, memory: int = 7, w0: float = 0.01, restart: float = 2.0):
        self.alpha, self.memory, self.w0, self.restart = alpha, memory, w0, restart
        self.x_prev = self.F_prev = None
        self.dF: list[torch.Tensor] = []
        self.u: list[torch.Tensor] = []
        self.restarts = 0

    def __call__(self, x_in: dict, x_out: dict) -> dict:
        keys = list(x_in)
        xi = torch.cat([x_in[k].reshape(-1) for k in keys])
        F = torch.cat([x_out[k].reshape(-1) for k in keys]) - xi
        nxt = xi + self.alpha * F
        if self.F_prev is not None and float(F.norm()) > self.restart * float(self.F_prev.norm()):
            # the residual grew: the secant history no longer describes the map here; drop it
            # and take a plain linear step (restart)
            self.dF, self.u, self.F_prev = [], [], None
            self.restarts += 1
        if self.F_prev is not None:
            dF = F - self.F_prev
            nrm = dF.norm().clamp_min(1e-300)
            dF, dx = dF / nrm, (xi - self.x_prev) / nrm
            self.dF.append(dF)
            self.u.append(self.alpha * dF + dx)
            self.dF, self.u = self.dF[-self.memory:], self.u[-self.memory:]
            Fm = torch.stack(self.dF)
            a = Fm @ Fm.T + self.w0**2 * torch.eye(len(self.dF), dtype=F.dtype, device=F.device)
            gamma = torch.linalg.solve(a, Fm @ F)
            nxt = nxt - gamma @ torch.stack(self.u)
        self.x_prev, self.F_prev = xi, F
        out, i = {}, 0
        for k in keys:
            n = x_in[k].numel()
            out[k] = nxt[i:i + n].reshape(x_in[k].shape)
            i += n
        return out


class LinearMixer:
    """x <- x + alpha (x_out - x): slow but monotone where Broyden does not settle."""

    def __init__(self, alpha: float = 0.3):
        self.alpha = alpha

    def __call__(self, x_in: dict, x_out: dict) -> dict:
        return {k: x_in[k] + self.alpha * (x_out[k] - x_in[k]) for k in x_in}


MIXERS = {"broyden": BroydenMixer, "linear": LinearMixer}
