"""Fourth-order (hbar^4) extended Thomas-Fermi kinetic energy, on restricted (generalised Fermi) densities.

Units: fm, fm^-3, MeV. Species q = 0 (neutrons), 1 (protons); each species has spin degeneracy 2.

The hbar^4 term
---------------
For a local potential and constant effective mass the ETF kinetic-energy density of one species to
order hbar^4 adds (Hodges, Can. J. Phys. 51 (1973) 1428, eq. for t_4 with t = tau/2 in atomic units;
Brack, Guet & Hakansson, Phys. Rep. 123 (1985) 275, sect. 4; Brack & Bhaduri, "Semiclassical Physics")

    tau_4[rho] = (3 pi^2)^(-2/3) / 6480 * rho^(1/3) * [ 8 (grad rho / rho)^4
                 - 27 (grad rho / rho)^2 (lap rho / rho) + 24 (lap rho / rho)^2 ]           [fm^-5]

(the same expansion gives the order-hbar^2 term (1/36)(grad rho)^2/rho + (1/3) lap rho used in
:mod:`bkdsl.physics.etf`; the normalisation was checked against it). For a constant f = m/m* the
relation tau[rho] does not depend on the mass, so tau_4 above is the complete f = const part. Its
energy is taken as

    E_4 = sum_q \\int B_q tau_4[rho_q] d^3r,    B_q = hbar^2/2m*_q (as in etf.py, with 1 - 1/A).

**Not included:** the hbar^4 terms that contain gradients of f_q (effective mass) and the hbar^4
spin-orbit terms (those with W_q) of Brack et al. / Bartel & Bencheikh (EPJA 14 (2002) 179).

Why restricted densities
------------------------
tau_4 weights the density tail with rho^(1/3)(grad rho/rho)^4: for rho ~ exp(-r/d) it gives a finite
but large contribution ~ rho^(1/3) / d^4 from the far tail. The free-variation hbar^2 densities of
:mod:`bkdsl.physics.solver` are not usable there: their tail is steeper than exponential (the
hbar^2 functional's (1/36)(grad rho)^2/rho term gives a decay three times too fast), and below
~1e-5 fm^-3 they carry the band limit's ringing, with nodes where (grad rho/rho) diverges. E_4
evaluated on them depends on where the tail is cut (docs/physics.md gives the numbers). Following
Brack et al., the hbar^4 energy is therefore evaluated variationally in the space of spherical
generalised Fermi densities

    rho_q(r) = rho_0q [1 + exp((r - R_q)/a_q)]^(-gamma_q),     rho_0q fixed by \\int rho_q = N_q,

for which all terms are finite. :func:`restricted_etf` minimises the full hbar^2 energy (the same
functional as etf.py: Skyrme, hbar^2 kinetic with effective mass, hbar^2 spin-orbit, Coulomb direct and
Slater exchange), with or without E_4, over (R_q, a_q, gamma_q). :func:`hbar4_shift` returns the
difference of the two minima: the hbar^4 energy including the relaxation of the profile it causes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .constants import E2_MEV_FM, SLATER, TF_KAPPA
from .skyrme import SkyrmeParams

#: prefactor of tau_4: (3 pi^2)^(-2/3) / 6480   [dimensionless]
C_TAU4 = (3.0 * math.pi**2) ** (-2.0 / 3.0) / 6480.0


def tau4(rho: torch.Tensor, g: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
    """tau_4 [fm^-5] from rho [fm^-3], g = |grad rho|/rho [fm^-1] and lap = (lap rho)/rho [fm^-2]."""
    g2 = g * g
    return C_TAU4 * rho.clamp_min(0) ** (1.0 / 3.0) * (8.0 * g2 * g2 - 27.0 * g2 * lap + 24.0 * lap * lap)


def radial_grid(A: int, dr: float = 0.01, extra_fm: float = 14.0) -> torch.Tensor:
    """Midpoints r_i = (i + 1/2) dr up to 1.2 A^(1/3) + extra_fm (fm)."""
    n = int(math.ceil((1.2 * A ** (1.0 / 3.0) + extra_fm) / dr))
    return (torch.arange(n, dtype=torch.float64) + 0.5) * dr


def fermi_profile(r: torch.Tensor, N: float, R, a, gam):
    """Generalised Fermi density normalised to N, with its radial derivatives.

    Returns (rho, rho', rho'', g, lap): rho' = d rho/dr [fm^-4], rho'' [fm^-5], g = rho'/rho [fm^-1],
    lap = (rho'' + 2 rho'/r)/rho [fm^-2]. Written with softplus/sigmoid so no exponential overflows.
    """
    x = (r - R) / a
    sig = torch.sigmoid(x)
    shape = torch.exp(-gam * torch.nn.functional.softplus(x))
    # normalisation by the midpoint rule on the (uniform) radial grid r; rho0 depends on the
    # parameters, not on r as a variable (so d/dr below is the derivative at fixed rho0)
    rd = r.detach()
    shape_d = torch.exp(-gam * torch.nn.functional.softplus((rd - R) / a))
    rho0 = N / (4 * math.pi * (rd * rd * shape_d).sum() * (rd[1] - rd[0]))
    rho = rho0 * shape
    g = -gam * sig / a
    gp = -gam * sig * (1 - sig) / (a * a)
    lap = gp + g * g + 2.0 * g / r
    return rho, rho * g, rho * (gp + g * g), g, lap


def spherical_energy(params: SkyrmeParams, Z: int, N: int, theta: torch.Tensor, r: torch.Tensor, *,
                     hbar4: bool = True, coulomb: bool = True) -> dict[str, torch.Tensor]:
    """Energy components (MeV) of spherical generalised Fermi densities.

    theta = (R_n, a_n, gamma_n, R_p, a_p, gamma_p) (fm, fm, 1). The order-hbar^2 part is the functional
    of :mod:`bkdsl.physics.etf` written for radial profiles; "hbar4" is E_4 (zero if ``hbar4=False``).
    """
    A = Z + N
    p = params
    dr = float(r[1] - r[0])
    w = 4 * math.pi * r * r * dr
    prof = [fermi_profile(r, float(n), theta[3 * q], theta[3 * q + 1], theta[3 * q + 2])
            for q, n in enumerate((N, Z))]
    rho = prof[0][0] + prof[1][0]
    drho = prof[0][1] + prof[1][1]
    h2m = p.hbar2_2m * ((1.0 - 1.0 / A) if p.com_one_body else 1.0)
    kin = so = e4 = torch.zeros((), dtype=r.dtype)
    sum_q2 = 0.0
    grad_q2 = 0.0
    for q in range(2):
        rq, drq, _, g, lap = prof[q]
        B = h2m + p.c_eff_total * rho + p.c_eff_q * rq
        dB = p.c_eff_total * drho + p.c_eff_q * drq
        Wq = 0.5 * p.W0 * (drho + drq)
        dens = (B * (TF_KAPPA * rq ** (5.0 / 3.0) + drq * drq / (36.0 * rq.clamp_min(1e-300)))
                - dB * drq / 3.0 - rq * dB * dB / (12.0 * B))
        kin = kin + (dens * w).sum()
        so = so + (-0.5 * rq * Wq * Wq / B * w).sum()
        if hbar4:
            e4 = e4 + (B * tau4(rq, g, lap) * w).sum()
        sum_q2 = sum_q2 + rq * rq
        grad_q2 = grad_q2 + drq * drq
    e0 = 0.25 * p.t0 * ((2 + p.x0) * rho * rho - (2 * p.x0 + 1) * sum_q2)
    e3 = p.t3 / 24.0 * rho.clamp_min(1e-300) ** p.alpha * ((2 + p.x3) * rho * rho - (2 * p.x3 + 1) * sum_q2)
    eg = p.c_grad_total * drho * drho + p.c_grad_q * grad_q2
    skyrme = ((e0 + e3 + eg) * w).sum()
    out = {"kinetic": kin, "skyrme": skyrme, "spin_orbit": so}
    rp = prof[1][0]
    if coulomb:
        # V(r) = e^2 [ Q(r)/r + \int_r^inf 4 pi r' rho_p dr' ],  Q(r) = \int_0^r 4 pi r'^2 rho_p dr'
        dq = rp * w
        Q = torch.cumsum(dq, 0) - 0.5 * dq
        outer = 4 * math.pi * r * rp * dr
        Vout = outer.flip(0).cumsum(0).flip(0) - 0.5 * outer
        V = E2_MEV_FM * (Q / r + Vout)
        out["coulomb_direct"] = 0.5 * (rp * V * w).sum()
        out["coulomb_exchange"] = -SLATER * (rp ** (4.0 / 3.0) * w).sum()
    else:
        out["coulomb_direct"] = out["coulomb_exchange"] = torch.zeros((), dtype=r.dtype)
    out["hbar4"] = e4
    out["edf"] = sum(out[k] for k in ("kinetic", "skyrme", "spin_orbit", "coulomb_direct",
                                      "coulomb_exchange", "hbar4"))
    return out


@dataclass
class RestrictedResult:
    energy: float                  # minimised energy (MeV), hbar^4 included if requested
    components: dict[str, float]   # MeV
    theta: tuple[float, ...]       # (R_n, a_n, gamma_n, R_p, a_p, gamma_p)
    r_n: float                     # rms radii (fm)
    r_p: float


#: bounds of (R, a, gamma); the optima lie inside them (gamma ~ 9.6 for O16 at order hbar^2, ~1.3 at hbar^4)
_BOUNDS = [(0.5, None), (0.15, 2.0), (0.3, 16.0)] * 2


def restricted_etf(params: SkyrmeParams, Z: int, N: int, *, hbar4: bool, coulomb: bool = True,
                   dr: float = 0.01, theta0=None, gamma: float | None = None) -> RestrictedResult:
    """Minimise the spherical ETF energy over generalised Fermi profiles (6 parameters, L-BFGS-B).

    ``gamma`` fixes gamma_n = gamma_p (e.g. 1.0: plain Fermi functions) to test the family dependence.
    """
    from scipy.optimize import minimize

    A = Z + N
    r = radial_grid(A, dr)
    R0 = 1.12 * A ** (1.0 / 3.0)
    x0 = np.array(theta0 if theta0 is not None else [R0, 0.5, 1.0, R0, 0.5, 1.0], dtype=float)
    bounds = [(lo, hi if hi is not None else 2.0 * R0 + 5.0) for lo, hi in _BOUNDS]
    if gamma is not None:
        x0[2] = x0[5] = gamma
        bounds[2] = bounds[5] = (gamma, gamma)

    def fg(x):
        th = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        e = spherical_energy(params, Z, N, th, r, hbar4=hbar4, coulomb=coulomb)["edf"]
        (gr,) = torch.autograd.grad(e, th)
        return float(e.detach()), gr.numpy()

    res = minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-8})
    th = torch.tensor(res.x, dtype=torch.float64)
    with torch.no_grad():
        comp = {k: float(v) for k, v in spherical_energy(params, Z, N, th, r, hbar4=hbar4,
                                                         coulomb=coulomb).items()}
        w = 4 * math.pi * r * r * (r[1] - r[0])
        rr = []
        for q, n in enumerate((N, Z)):
            rq = fermi_profile(r, float(n), th[3 * q], th[3 * q + 1], th[3 * q + 2])[0]
            rr.append(float(torch.sqrt((rq * r * r * w).sum() / n)))
    return RestrictedResult(energy=comp["edf"], components=comp, theta=tuple(float(t) for t in res.x),
                            r_n=rr[0], r_p=rr[1])


def hbar4_shift(params: SkyrmeParams, Z: int, N: int, *, coulomb: bool = True, dr: float = 0.01,
                gamma: float | None = None) -> tuple[float, RestrictedResult, RestrictedResult]:
    """hbar^4 energy shift (MeV): min E_2+4 - min E_2 over generalised Fermi profiles (Brack et al.).

    Returns (shift, result at order hbar^2, result at order hbar^4).
    """
    r2 = restricted_etf(params, Z, N, hbar4=False, coulomb=coulomb, dr=dr, gamma=gamma)
    r4 = restricted_etf(params, Z, N, hbar4=True, coulomb=coulomb, dr=dr, theta0=r2.theta, gamma=gamma)
    return r4.energy - r2.energy, r2, r4
