r"""Spherical Skyrme Hartree-Fock (no pairing) on a radial mesh, in torch float64.

The reference the ETF is measured against: the same functional (SLy4 by default), solved with orbitals,
so that the difference E_ETF - E_HF is the shell correction a smooth semiclassical energy cannot carry.

**Functional** (Chabanat et al., Nucl. Phys. A 635 (1998) 231, eqs. of Bender, Heenen & Reinhard,
Rev. Mod. Phys. 75 (2003) 121; the J^2 terms are left out, as in the SLy4 fit), with q = n, p:

    H = (hbar^2/2m)(1 - 1/A) tau
      + (t0/4)[(2+x0) rho^2 - (2x0+1) sum_q rho_q^2] + (t3/24) rho^alpha [(2+x3) rho^2 - (2x3+1) sum_q rho_q^2]
      + C1 rho tau + C2 sum_q rho_q tau_q                       (effective mass, skyrme.c_eff_total / c_eff_q)
      + G1 (rho')^2 + G2 sum_q (rho_q')^2                        (skyrme.c_grad_total / c_grad_q)
      + (W0/2) [J rho' + sum_q J_q rho_q']                       (spin-orbit)
      + (1/2) rho_p V_C - (3/4) e^2 (3/pi)^(1/3) rho_p^(4/3)     (Coulomb direct + Slater exchange)

**Centre of mass**: the one-body correction only, hbar^2/2m -> hbar^2/2m (1 - 1/A), as in the SLy4 fit
(Chabanat et al. 1998 fitted SLy4 with this one-body term and without the two-body part).
**Coulomb**: the point-proton density is the charge source (as in the fit); the direct potential is
V_C(r) = 4 pi e^2 [ (1/r) \int_0^r rho_p r'^2 dr' + \int_r^\infty rho_p r' dr' ].

**Orbitals**: u_{nlj}(r) = r R(r) on the staggered mesh r_i = (i - 1/2) h, i = 1..N, with an odd
ghost u_0 = -u_1 (u(0) = 0) and a wall u_{N+1} = 0 at R_box = N h. The radial Hamiltonian

    h_{lj} u = -(B_q u')' + [U_q + B_q'/r + B_q l(l+1)/r^2 + (W_q/r)(j(j+1) - l(l+1) - 3/4)] u

(Vautherin & Brink, Phys. Rev. C 5 (1972) 626) is a symmetric tridiagonal matrix (second order in h);
its lowest states per (q, l, j) come from LAPACK's tridiagonal bisection + inverse iteration. The mean fields are the
derivatives of the discrete energy: U_q = dE/d rho_q, B_q = dE/d tau_q, W_q = dE/d J_q, taken by
autograd (so the Coulomb, t3 rearrangement and gradient terms are exact for the discrete energy).

Densities (degeneracy 2j+1, occupation v^2 = 1 below the Fermi level, a partly filled last shell
shared evenly - the spherical filling approximation):

    rho_q = sum (2j+1) v^2 u^2 / (4 pi r^2),
    tau_q = sum (2j+1) v^2 [ (u' - u/r)^2 + l(l+1) u^2 / r^2 ] / (4 pi r^2),
    J_q   = sum (2j+1) v^2 (j(j+1) - l(l+1) - 3/4) u^2 / (4 pi r^3).

**Iteration**: the mean fields are mixed linearly (``mix``) until |Delta E| < ``tol_e`` and the largest
change of U_q over the mesh < ``tol_u`` (MeV). The result is refused (BkError E0704) if it does not
converge, and (E0705) if it fails the physical bounds of :mod:`bkdsl.physics.guards`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from bkdsl.diagnostics import BkError

from .constants import E2_MEV_FM, SLATER
from .guards import require_physical
from .nuclei import Nucleus, get_nucleus
from .skyrme import SkyrmeParams, get_functional
from .solver import charge_radius

#: default radial step (fm) and the margin of the box beyond 1.2 A^(1/3) (fm)
H_STEP = 0.1
BOX_MARGIN = 11.0


@dataclass
class Level:
    """One single-particle level (q = "n" or "p")."""

    q: str
    n: int               # radial quantum number, 1-based (1s, 2s, ...)
    l: int
    j2: int              # 2j
    energy: float        # MeV
    occupation: float    # v^2 in [0, 1] (per m-substate)

    @property
    def label(self) -> str:
        return f"{self.n}{'spdfghijklmno'[self.l]}{self.j2}/2"


@dataclass
class HFResult:
    """A converged spherical HF ground state."""

    nucleus: str
    functional: str
    energy: float                      # total energy, MeV (negative)
    binding_energy: float              # -energy
    components: dict[str, float]       # MeV
    r_n: float                         # rms radii, fm
    r_p: float
    r_ch: float
    r_m: float
    levels: list[Level]
    iterations: int
    converged: bool
    step: float                        # fm
    box: float                         # fm
    wall_s: float
    r: torch.Tensor | None = field(default=None, repr=False)
    rho_q: torch.Tensor | None = field(default=None, repr=False)   # [2, N] fm^-3
    #: Richardson h -> 0 limit from steps h and h/2 (see :func:`hf_extrapolated`), with both raw values
    extrapolated: dict | None = None

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("r", "rho_q", "levels")}
        d["levels"] = [{"q": lv.q, "label": lv.label, "l": lv.l, "j": lv.j2 / 2, "energy": lv.energy,
                        "occupation": lv.occupation} for lv in self.levels]
        d["method"] = "hf"
        d["units"] = {"energy": "MeV", "binding_energy": "MeV", "r_n": "fm", "r_p": "fm", "r_ch": "fm",
                      "r_m": "fm", "components": "MeV", "levels.energy": "MeV", "step": "fm", "box": "fm"}
        return d


class SphericalSkyrme:
    """The discrete Skyrme energy E[rho_q, tau_q, J_q] on the staggered radial mesh (MeV)."""

    def __init__(self, params: SkyrmeParams, nucleus: Nucleus, r: torch.Tensor, *, coulomb: bool = True):
        self.p = params
        self.nuc = nucleus
        self.r = r
        self.h = float(r[1] - r[0])
        self.w = 4 * math.pi * r * r * self.h                          # d^3r of each shell
        self.h2m = params.hbar2_2m * ((1.0 - 1.0 / nucleus.A) if params.com_one_body else 1.0)
        self.coulomb = coulomb
        # 1/r_> kernel of the spherical Coulomb potential: V_C(r_i) = e^2 sum_j w_j rho_p(r_j) / max(r_i, r_j)
        self.k_coul = 1.0 / torch.maximum(r[:, None], r[None, :])

    def deriv(self, f: torch.Tensor) -> torch.Tensor:
        """Central difference of an even function of r (ghost f_0 = f_1) vanishing past the box."""
        fp = torch.cat([f[..., :1], f, torch.zeros_like(f[..., :1])], dim=-1)
        return (fp[..., 2:] - fp[..., :-2]) / (2 * self.h)

    def energy(self, rho_q: torch.Tensor, tau_q: torch.Tensor, J_q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Components (MeV) for fields [2, N] (q = 0 neutrons, 1 protons)."""
        p, w = self.p, self.w
        rho, tau, J = rho_q.sum(0), tau_q.sum(0), J_q.sum(0)
        drq = self.deriv(rho_q)
        drho = drq.sum(0)
        sq2 = (rho_q * rho_q).sum(0)
        kinetic = (self.h2m * tau * w).sum()
        e0 = 0.25 * p.t0 * ((2 + p.x0) * rho * rho - (2 * p.x0 + 1) * sq2)
        e3 = p.t3 / 24.0 * rho.clamp_min(1e-300) ** p.alpha * ((2 + p.x3) * rho * rho - (2 * p.x3 + 1) * sq2)
        eff = p.c_eff_total * rho * tau + p.c_eff_q * (rho_q * tau_q).sum(0)
        grad = p.c_grad_total * drho * drho + p.c_grad_q * (drq * drq).sum(0)
        so = 0.5 * p.W0 * (J * drho + (J_q * drq).sum(0))
        out = {"kinetic": kinetic, "volume": ((e0 + e3) * w).sum(), "effective_mass": (eff * w).sum(),
               "surface": (grad * w).sum(), "spin_orbit": (so * w).sum()}
        rp = rho_q[1]
        if self.coulomb:
            V = E2_MEV_FM * (self.k_coul @ (rp * w))
            out["coulomb_direct"] = 0.5 * (rp * V * w).sum()
            out["coulomb_exchange"] = -SLATER * (rp.clamp_min(0) ** (4.0 / 3.0) * w).sum()
        else:
            out["coulomb_direct"] = torch.zeros((), dtype=rho.dtype)
            out["coulomb_exchange"] = torch.zeros((), dtype=rho.dtype)
        out["total"] = sum(out.values())
        return out

    def mean_fields(self, rho_q, tau_q, J_q):
        """(U_q, B_q, W_q) [2, N] in MeV, MeV fm^2, MeV fm: derivatives of the discrete energy per d^3r."""
        fields = [t.detach().clone().requires_grad_(True) for t in (rho_q, tau_q, J_q)]
        e = self.energy(*fields)["total"]
        gU, gB, gW = torch.autograd.grad(e, fields)
        return gU / self.w, gB / self.w, gW / self.w


def _spin_orbit_factor(l: int, j2: int) -> float:
    """<l.sigma> = j(j+1) - l(l+1) - 3/4."""
    j = j2 / 2
    return j * (j + 1) - l * (l + 1) - 0.75


def _blocks(l_max: int) -> list[tuple[int, int]]:
    return [(l, j2) for l in range(l_max + 1) for j2 in ((2 * l + 1, 2 * l - 1) if l > 0 else (1,))]


def _tridiagonals(r: torch.Tensor, U, B, W, blocks) -> tuple[torch.Tensor, torch.Tensor]:
    """Diagonals [2, n_blocks, N] and off-diagonals [2, N-1] of the symmetric tridiagonal h_{lj}.

    -(B u')' uses B on the half points (average of neighbours; the wall face takes B_N); the odd ghost
    u_0 = -u_1 adds 2 B_1 / h^2 to the first diagonal element; B' is a central difference with even
    ghosts (B' = 0 at the origin and at the wall)."""
    h = float(r[1] - r[0])
    Bh = torch.cat([0.5 * (B[:, 1:] + B[:, :-1]), B[:, -1:]], dim=1)            # faces i+1/2, i = 1..N
    Bl = torch.cat([B[:, :1], Bh[:, :-1]], dim=1)                                 # faces i-1/2
    Bg = torch.cat([B[:, :1], B, B[:, -1:]], dim=1)
    dB = (Bg[:, 2:] - Bg[:, :-2]) / (2 * h)
    diag0 = (Bh + Bl) / h**2
    diag0[:, 0] = (Bh[:, 0] + 2 * B[:, 0]) / h**2
    off = -Bh[:, :-1] / h**2
    base = diag0 + U + dB / r
    d = torch.stack([base + B * l * (l + 1) / r**2 + W / r * _spin_orbit_factor(l, j2) for l, j2 in blocks], dim=1)
    return d, off


def _lowest_states(d: torch.Tensor, off: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k lowest eigenpairs of each tridiagonal block: eps [2, nb, k], vecs [2, nb, N, k].

    LAPACK's bisection + inverse iteration (``scipy.linalg.eigh_tridiagonal``, stebz/stein) costs
    O(N k) per block instead of the O(N^3) of a dense ``torch.linalg.eigh``; only bound levels are needed."""
    dn, en = d.detach().cpu().numpy(), off.detach().cpu().numpy()
    nq, nb, N = dn.shape
    k = min(k, N)
    eps = np.empty((nq, nb, k))
    vec = np.empty((nq, nb, N, k))
    for q in range(nq):
        for b in range(nb):
            w, v = eigh_tridiagonal(dn[q, b], en[q], select="i", select_range=(0, k - 1))
            eps[q, b], vec[q, b] = w, v
    return torch.from_numpy(eps).to(d.dtype), torch.from_numpy(vec).to(d.dtype)


def _fill(eps: torch.Tensor, blocks, number: int) -> torch.Tensor:
    """Occupations v^2 [n_blocks, k] of the lowest levels of one species (filling approximation)."""
    nb, N = eps.shape
    flat = eps.flatten()
    deg = torch.tensor([j2 + 1 for _, j2 in blocks], dtype=eps.dtype)[:, None].expand(nb, N).flatten()
    order = torch.argsort(flat)
    occ = torch.zeros_like(flat)
    left = float(number)
    for k in order.tolist():
        if left <= 1e-12:
            break
        take = min(left, float(deg[k]))
        occ[k] = take / float(deg[k])
        left -= take
    return occ.reshape(nb, N)


def _densities(r, vecs, occ, blocks):
    """rho, tau, J [N] of one species from eigenvectors vecs [nb, N, k] (columns, sum u_i^2 = 1)."""
    h = float(r[1] - r[0])
    u = vecs.transpose(-1, -2) / math.sqrt(h)                       # [nb, k, N], \int u^2 dr = 1
    # u' on the staggered mesh with the odd ghost u_0 = -u_1 and the wall u_{N+1} = 0
    up = torch.cat([-u[..., :1], u, torch.zeros_like(u[..., :1])], dim=-1)
    du = (up[..., 2:] - up[..., :-2]) / (2 * h)
    ls = torch.tensor([l for l, _ in blocks], dtype=r.dtype)[:, None, None]
    j2 = torch.tensor([j for _, j in blocks], dtype=r.dtype)[:, None, None]
    so = (j2 / 2) * (j2 / 2 + 1) - ls * (ls + 1) - 0.75
    wgt = ((j2 + 1) * occ[:, :, None]) / (4 * math.pi * r * r)       # [nb, k, N]
    rho = (wgt * u * u).sum((0, 1))
    tau = (wgt * ((du - u / r) ** 2 + ls * (ls + 1) * u * u / r**2)).sum((0, 1))
    J = (wgt * so * u * u / r).sum((0, 1))
    return rho, tau, J


def _woods_saxon_start(r, nuc: Nucleus):
    R = 1.25 * nuc.A ** (1.0 / 3.0)
    f = 1.0 / (1.0 + torch.exp((r - R) / 0.65))
    U = -50.0 * f
    W = torch.zeros_like(r)
    return U, W


def hf_ground_state(nucleus="Pb208", functional="sly4", *, step: float = H_STEP, box: float | None = None,
                    l_max: int | None = None, coulomb: bool = True, mix: float = 0.4, max_iter: int = 600,
                    tol_e: float = 1e-7, tol_u: float = 1e-6, n_radial: int | None = None,
                    keep_density: bool = False) -> HFResult:
    """Self-consistent spherical Skyrme-HF ground state of ``nucleus`` (see the module docstring).

    ``step`` (fm) and ``box`` (fm; default 1.2 A^(1/3) + 11) set the mesh; ``l_max`` (default
    ceil(1.5 A^(1/3)) + 2) the orbital angular momenta solved, ``n_radial`` (default 3 + A^(1/3)//2) the
    radial states per (l, j) kept (a test checks the occupied ones are all below the highest kept). Raises E0701/E0702 for unknown names,
    E0703 for a bad mesh, E0704 when it does not converge within ``max_iter`` iterations, E0705 for an
    unphysical fixed point.
    """
    t0 = time.perf_counter()
    nuc = get_nucleus(nucleus)
    params = get_functional(functional)
    if params.j2_terms:
        raise BkError("E0702", f"`{params.name}` was fitted with J^2 terms, which the HF solver does not include",
                      help="use SLy4 or SkM*")
    box = box if box is not None else 1.2 * nuc.A ** (1.0 / 3.0) + BOX_MARGIN
    if not (step > 0 and math.isfinite(step) and box > 1.2 * nuc.A ** (1.0 / 3.0) + 4.0 and box / step <= 2000):
        raise BkError("E0703", f"bad radial mesh for {nuc.name}: step {step} fm, box {box} fm",
                      help=f"use 0 < step <= 0.2 fm and a box beyond {1.2 * nuc.A ** (1 / 3) + 4:.1f} fm")
    dt = torch.float64
    N = int(round(box / step))
    r = (torch.arange(1, N + 1, dtype=dt) - 0.5) * step
    l_max = l_max if l_max is not None else int(math.ceil(1.5 * nuc.A ** (1.0 / 3.0))) + 2
    blocks = _blocks(l_max)
    F = SphericalSkyrme(params, nuc, r, coulomb=coulomb)
    numbers = (nuc.N, nuc.Z)
    n_states = n_radial if n_radial is not None else 3 + int(nuc.A ** (1.0 / 3.0) // 2)

    U0, W0 = _woods_saxon_start(r, nuc)
    U = torch.stack([U0, U0])
    B = torch.full((2, N), F.h2m, dtype=dt)
    W = torch.stack([W0, W0])
    E_prev = float("inf")
    converged = False
    it = 0
    occs = eps = None
    for it in range(1, max_iter + 1):
        d, off = _tridiagonals(r, U, B, W, blocks)
        eps, vecs = _lowest_states(d, off, n_states)
        rq, tq, jq, occs = [], [], [], []
        for q in range(2):
            occ = _fill(eps[q], blocks, numbers[q])
            rho, tau, J = _densities(r, vecs[q], occ, blocks)
            rq.append(rho), tq.append(tau), jq.append(J), occs.append(occ)
        rho_q, tau_q, J_q = torch.stack(rq), torch.stack(tq), torch.stack(jq)
        E = float(F.energy(rho_q, tau_q, J_q)["total"])
        Un, Bn, Wn = F.mean_fields(rho_q, tau_q, J_q)
        dU = float((Un - U).abs().max())
        if not math.isfinite(E) or not math.isfinite(dU):
            break
        if abs(E - E_prev) < tol_e and dU < tol_u:
            converged = True
            break
        E_prev = E
        U = (1 - mix) * U + mix * Un
        B = (1 - mix) * B + mix * Bn
        W = (1 - mix) * W + mix * Wn
    if not converged:
        raise BkError("E0704", f"spherical HF of {nuc.name} did not converge in {it} iterations "
                      f"(last |dE| = {abs(E - E_prev):.2e} MeV, max |dU| = {dU:.2e} MeV)",
                      help=f"lower mix (now {mix}) or raise max_iter (now {max_iter})")
    comps = {k: float(v) for k, v in F.energy(rho_q, tau_q, J_q).items()}
    rho_tot = rho_q.sum(0)

    def rms(f):
        return math.sqrt(float((f * r * r * F.w).sum() / (f * F.w).sum()))

    r_n, r_p, r_m = rms(rho_q[0]), rms(rho_q[1]), rms(rho_tot)
    require_physical(nuc.name, A=nuc.A, energy=comps["total"], rms_radius=r_m,
                     rho_max=float(rho_tot.max()), rho_min=float(rho_q.min()),
                     help="the HF iteration reached an unphysical state; lower mix or enlarge the box")
    levels = []
    for q, name in ((0, "n"), (1, "p")):
        for b, (l, j2) in enumerate(blocks):
            if float(occs[q][b, -1]) > 0:        # the space of kept states must reach above the Fermi level
                raise BkError("E0704", f"spherical HF of {nuc.name}: all {n_states} radial states of "
                              f"l = {l}, j = {j2}/2 are occupied", help="raise n_radial")
            for k in range(eps.shape[-1]):
                e = float(eps[q, b, k])
                if e > 0 and float(occs[q][b, k]) == 0:
                    break
                levels.append(Level(name, k + 1, l, j2, e, float(occs[q][b, k])))
    levels.sort(key=lambda lv: (lv.q, lv.energy))
    return HFResult(
        nucleus=nuc.name, functional=params.name, energy=comps["total"], binding_energy=-comps["total"],
        components=comps, r_n=r_n, r_p=r_p, r_ch=charge_radius(r_p, nuc.Z, nuc.N), r_m=r_m, levels=levels,
        iterations=it, converged=True, step=step, box=N * step, wall_s=time.perf_counter() - t0,
        r=r if keep_density else None, rho_q=rho_q.detach() if keep_density else None)


def richardson(coarse: float, fine: float) -> float:
    """h -> 0 limit of a quantity with an O(h^2) error, from steps h (coarse) and h/2 (fine)."""
    return fine + (fine - coarse) / 3.0


def hf_extrapolated(nucleus="Pb208", functional="sly4", *, step: float = H_STEP, **kw) -> HFResult:
    """:func:`hf_ground_state` at ``step`` and ``step/2`` and their Richardson limit.

    The mesh error is O(h^2) (three-point stencils): for 16O, BE = 129.0199 / 128.6281 / 128.5294 MeV at
    h = 0.1 / 0.05 / 0.025 fm, differences in the ratio 3.97, and the limits from (0.1, 0.05) and
    (0.05, 0.025) agree to 1 keV (128.4975 vs 128.4965). Returns the h/2 result with
    ``extrapolated`` = {binding_energy, energy, r_n, r_p, r_ch, r_m, and the two raw sets}.
    """
    a = hf_ground_state(nucleus, functional, step=step, **kw)
    b = hf_ground_state(nucleus, functional, step=step / 2, **kw)
    keys = ("binding_energy", "energy", "r_n", "r_p", "r_ch", "r_m")
    b.extrapolated = {k: richardson(getattr(a, k), getattr(b, k)) for k in keys}
    b.extrapolated["steps"] = [a.step, b.step]
    b.extrapolated["raw"] = {str(x.step): {k: getattr(x, k) for k in keys} for x in (a, b)}
    b.wall_s += a.wall_s
    return b
