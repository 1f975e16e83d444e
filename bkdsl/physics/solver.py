"""Batched minimisation of the ETF Skyrme energy with exact particle numbers.

Parametrisation: free amplitudes x [B, 2, nr, nz]; psi_q = x_q sqrt(N_q / sum x_q^2) / sqrt(dV), so
rho_q = psi_q^2 >= 0 and \\int rho_q = N_q (neutrons, q = 0) and Z (protons, q = 1) hold exactly at
every step (the energy is invariant under x_q -> c x_q, hence its gradient is automatically
orthogonal to x_q: the Lagrange multipliers mu_q never appear explicitly).

Optimiser: a batched L-BFGS (memory ``history``) with a per-sample Armijo back-tracking line search,
gradients from torch autograd. Samples run in lock-step; a sample that has converged (or used up its
iterations) is frozen and the active batch is compacted every so often.

Convergence criterion (per sample, both must hold):

* residual  R = max_q sqrt( \\int rho_q (h_q - mu_q)^2 d^3r / N_q ) < ``tol_res`` MeV, where
  h_q = dE/d rho_q is the single-particle potential and mu_q = \\int rho_q h_q / N_q its mean (the
  chemical potential): the density-weighted rms violation of the Euler-Lagrange equation
  h_q = mu_q. On the normalised amplitudes R = |dE/dx_q| / (2 sqrt(N_q)).
* energy change over the last iteration |E_k - E_{k-1}| < ``tol_de`` MeV.

Samples that do not meet it within ``max_iter`` iterations are reported as unconverged
(``converged = False``); callers drop them and count them, or raise ``BkError(E0704)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from bkdsl.diagnostics import BkError

from .etf import SkyrmeETF
from .grid import AxialGrid, SpectralBasis
from .guards import require_physical

#: default convergence thresholds (MeV)
TOL_RES = 2e-3
TOL_DE = 1e-6
HISTORY = 30


@dataclass
class MinimizeResult:
    x: torch.Tensor            # [B, ...] final amplitudes (normalised)
    f: torch.Tensor            # [B] final objective (MeV)
    residual: torch.Tensor     # [B] MeV
    iterations: torch.Tensor   # [B] int
    converged: torch.Tensor    # [B] bool
    evaluations: int = 0
    wall_s: float = 0.0


def lbfgs_batched(fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor,
                  numbers: torch.Tensor, *, max_iter: int = 3000, tol_res: float = TOL_RES,
                  tol_de: float = TOL_DE, history: int = HISTORY, max_ls: int = 30,
                  capacity: int | None = None, precond: torch.Tensor | None = None) -> MinimizeResult:
    """Minimise ``fun(x, idx) -> [b]`` for n independent problems with starting points x0 [n, 2, ...].

    ``idx`` holds the problem indices of the rows of ``x`` (to select per-problem data such as the
    external potential). ``numbers`` [2] set the normalisation sum x_q^2 = N_q. At most ``capacity``
    problems are iterated at once (default: all); a problem that converges, fails its line search or
    uses up ``max_iter`` iterations leaves its slot, and the next waiting problem takes it, so the
    batch stays full (streaming). ``precond`` (positive, shape of one problem) scales the initial
    inverse Hessian, H0 = gamma * diag(precond).
    """
    t0 = time.perf_counter()
    n = x0.shape[0]
    cap = min(n, capacity or n)
    dev, dt = x0.device, x0.dtype
    shape = tuple(x0.shape[1:])
    nvar = x0[0].numel()
    nums = numbers.to(dev, dt)
    sq = nums.sqrt()
    dense = precond is not None and precond.dim() == 2 and precond.shape == (nvar, nvar)
    if dense:                                   # H0 = gamma * M with a dense SPD matrix M
        M = precond.to(dev, dt)
        P = None
    else:
        P = (torch.ones(nvar, device=dev, dtype=dt) if precond is None
             else precond.to(dev, dt).expand(shape).reshape(nvar))

    def apply_h0(v):
        return v @ M if dense else P * v

    def renorm(x):
        return x * (nums[:, None, None] / (x * x).sum(dim=(-2, -1), keepdim=True)).sqrt()

    n_eval = 0

    def evaluate(x, rows_idx):
        nonlocal n_eval
        n_eval += 1
        xr = x.detach().requires_grad_(True)
        f = fun(xr, rows_idx)
        (g,) = torch.autograd.grad(f.sum(), xr)
        return f.detach().to(torch.float64), g.detach()

    def residual(g):
        return ((g * g).sum(dim=(-2, -1)).sqrt() / (2 * sq)).amax(dim=-1)

    out_x = x0.detach().clone()
    fdt = torch.float64                          # objective values are always accumulated in float64
    out_f = torch.full((n,), float("nan"), device=dev, dtype=fdt)
    out_r = torch.full((n,), float("inf"), device=dev, dtype=dt)
    out_it = torch.zeros(n, dtype=torch.long, device=dev)
    out_ok = torch.zeros(n, dtype=torch.bool, device=dev)

    # slot state
    idx = torch.full((cap,), -1, dtype=torch.long, device=dev)     # problem in each slot (-1: empty)
    x = torch.zeros(cap, *shape, device=dev, dtype=dt)
    f = torch.zeros(cap, device=dev, dtype=fdt)
    g = torch.zeros_like(x)
    S = torch.zeros(cap, history, nvar, device=dev, dtype=dt)
    Y = torch.zeros_like(S)
    rho = torch.zeros(cap, history, device=dev, dtype=dt)
    gamma = torch.zeros(cap, device=dev, dtype=dt)
    df = torch.zeros(cap, device=dev, dtype=fdt)
    dec = torch.zeros(cap, device=dev, dtype=fdt)
    its = torch.zeros(cap, dtype=torch.long, device=dev)
    next_problem = 0
    ring: list[int] = []
    step = 0

    def fill(slots: torch.Tensor):
        """Load waiting problems into empty ``slots``; returns the slots that got one."""
        nonlocal next_problem
        k = min(len(slots), n - next_problem)
        if k <= 0:
            return
        sl = slots[:k]
        pi = torch.arange(next_problem, next_problem + k, device=dev)
        next_problem += k
        xs = renorm(x0[pi].to(dev, dt))
        fs, gs = evaluate(xs, pi)
        idx[sl], x[sl], f[sl], g[sl] = pi, xs, fs, gs
        S[sl], Y[sl], rho[sl] = 0, 0, 0
        gamma[sl] = 1.0 if dense else 1e-3
        df[sl], dec[sl] = float("inf"), float("inf")
        its[sl] = 0
        bad = ~torch.isfinite(fs)
        if bool(bad.any()):
            retire(sl[bad], failed=True)

    def retire(sl: torch.Tensor, failed: bool = False):
        if sl.numel() == 0:
            return
        pi = idx[sl]
        out_x[pi] = x[sl]
        out_f[pi] = f[sl]
        out_r[pi] = residual(g[sl])
        out_it[pi] = its[sl]
        ok = (out_r[pi] < tol_res) & (df[sl].abs() < tol_de) & (dec[sl] < tol_de) & torch.isfinite(f[sl])
        out_ok[pi] = ok & (not failed)
        idx[sl] = -1

    fill(torch.arange(cap, device=dev))
    while True:
        act = torch.nonzero(idx >= 0).flatten()
        if act.numel() == 0:
            break
        step += 1
        xa, fa, ga = x[act], f[act], g[act]
        gf = ga.reshape(len(act), nvar)
        Sa, Ya, rhoa, gam = S[act], Y[act], rho[act], gamma[act]
        # ---- two-loop recursion ----
        q = gf.clone()
        alphas = []
        for j in reversed(ring):
            a_ = rhoa[:, j] * (Sa[:, j] * q).sum(-1)
            q -= a_[:, None] * Ya[:, j]
            alphas.append(a_)
        r = gam[:, None] * apply_h0(q)
        for j, a_ in zip(ring, reversed(alphas)):
            b_ = rhoa[:, j] * (Ya[:, j] * r).sum(-1)
            r += Sa[:, j] * (a_ - b_)[:, None]
        d = -r
        gd = (gf * d).sum(-1)
        bad = ~(gd < 0)
        if bool(bad.any()):          # not a descent direction: forget that problem's memory
            rho[act[bad]] = 0
            d[bad] = -gam[bad, None] * apply_h0(gf[bad])
            gd = (gf * d).sum(-1)
        d = d.reshape(xa.shape)
        # ---- batched Armijo back-tracking ----
        t = torch.ones(len(act), device=dev, dtype=dt)
        accepted = torch.zeros(len(act), dtype=torch.bool, device=dev)
        xn, fn, gn = xa.clone(), fa.clone(), ga.clone()
        for _ in range(max_ls):
            rows = torch.nonzero(~accepted).flatten()
            if rows.numel() == 0:
                break
            xt = xa[rows] + t[rows].view(-1, *([1] * len(shape))) * d[rows]
            ft, gt = evaluate(xt, idx[act[rows]])
            ok = torch.isfinite(ft) & (ft <= fa[rows] + 1e-4 * t[rows] * gd[rows])
            okr = rows[ok]
            xn[okr], fn[okr], gn[okr] = xt[ok], ft[ok], gt[ok]
            accepted[okr] = True
            t[rows[~ok]] *= 0.5
        # ---- memory update (shared ring of slots, per-problem validity) ----
        s = (xn - xa).reshape(len(act), nvar)
        yv = (gn - ga).reshape(len(act), nvar)
        sy = (s * yv).sum(-1)
        good = accepted & (sy > 1e-12 * s.norm(dim=-1) * yv.norm(dim=-1))
        slot = (step - 1) % history
        if slot in ring:
            ring.remove(slot)
        ring.append(slot)
        S[act, slot] = s * good[:, None]
        Y[act, slot] = yv * good[:, None]
        rho[act, slot] = torch.where(good, 1.0 / sy.clamp_min(1e-300), torch.zeros_like(sy))
        gamma[act] = torch.where(good, sy / (yv * apply_h0(yv)).sum(-1).clamp_min(1e-300), gam)
        df[act] = torch.where(accepted, fn - fa, df[act])
        dec[act] = (-0.5 * gd).to(fdt)  # quasi-Newton estimate of the decrease still to come
        scale = (nums[:, None, None] / (xn * xn).sum(dim=(-2, -1), keepdim=True)).sqrt()
        x[act] = xn * scale            # the energy is scale invariant: gradient scales inversely
        g[act] = gn / scale
        f[act] = fn
        its[act] += 1
        res = residual(g[act])
        conv = (res < tol_res) & (df[act].abs() < tol_de) & (dec[act] < tol_de)
        done = conv | ~accepted | (its[act] >= max_iter)
        if bool(done.any()):
            sl = act[done]
            retire(sl)
            fill(sl)
    return MinimizeResult(out_x, out_f, out_r, out_it, out_ok, n_eval, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
#: default band limit of the variational space (fm^-1), see grid.SpectralBasis and docs/physics.md
K_CUT = 2.5


class Variational:
    r"""The variational space: coefficients c [B, 2, Mr, Mz] of a band-limited basis -> psi on the grid.

    psi_q = sqrt(N_q / sum c_q^2) * to_grid(c_q), so \int psi_q^2 d^3r = N_q exactly.
    """

    def __init__(self, functional: SkyrmeETF, k_cut: float = K_CUT):
        self.functional = functional
        self.basis = SpectralBasis(functional.grid, k_cut)
        self.numbers = functional.numbers

    def psi(self, c: torch.Tensor) -> torch.Tensor:
        n2 = (c * c).sum(dim=(-2, -1), keepdim=True)
        return self.basis.to_grid(c) * torch.sqrt(self.numbers[:, None, None] / n2)

    def coefficients(self, psi: torch.Tensor) -> torch.Tensor:
        return self.basis.from_grid(psi)


def fermi_psi(functional: SkyrmeETF, radius: float | None = None, diffuseness: float = 0.55) -> torch.Tensor:
    """A spherical Fermi (Woods-Saxon) amplitude sqrt(profile) [1, 2, nr, nz] (unnormalised)."""
    g = functional.grid
    A = functional.nucleus.A
    R0 = radius if radius is not None else 1.12 * A ** (1.0 / 3.0)
    s = torch.sqrt(g.R**2 + g.Z**2)
    prof = 1.0 / (1.0 + torch.exp((s - R0) / diffuseness))
    return torch.sqrt(prof)[None, None].expand(1, 2, *g.shape).clone()


@dataclass
class SolveResult:
    """Minimised densities and energies for a batch of external potentials."""

    rho_q: torch.Tensor                 # [B, 2, nr, nz] fm^-3 (q = 0 neutrons, 1 protons)
    energies: dict[str, torch.Tensor]   # components, MeV, [B] (see etf.COMPONENTS)
    residual: torch.Tensor              # [B] MeV
    iterations: torch.Tensor            # [B]
    converged: torch.Tensor             # [B] bool
    c: torch.Tensor                     # [B, 2, Mr, Mz] basis coefficients (warm starts)
    evaluations: int = 0
    wall_s: float = 0.0


def _compiled_or_eager(fn, c_trial: torch.Tensor, v_trial: torch.Tensor | None):
    """``torch.compile(fn, dynamic=True)`` if a trial value-and-gradient through it works and agrees with
    the eager one (relative 1e-9 in float64, 1e-4 otherwise); else ``fn`` itself, with a warning."""
    import warnings

    def value_grad(f):
        c = c_trial.detach().clone().requires_grad_(True)
        e = f(c, v_trial)
        (g,) = torch.autograd.grad(e.sum(), c)
        return e.detach(), g

    try:
        cf = torch.compile(fn, dynamic=True)
        e1, g1 = value_grad(cf)
        e0, g0 = value_grad(fn)
        tol = 1e-9 if c_trial.dtype == torch.float64 else 1e-4
        if not (torch.allclose(e1, e0, rtol=tol, atol=0) and torch.allclose(g1, g0, rtol=tol, atol=tol * float(g0.abs().max()))):
            raise RuntimeError(f"compiled energy differs from eager: {float((e1 - e0).abs().max()):.3e} MeV")
        return cf
    except Exception as exc:                     # noqa: BLE001 - any compiler failure falls back
        warnings.warn(f"torch.compile of the ETF energy failed ({type(exc).__name__}: {exc}); running eager",
                      RuntimeWarning, stacklevel=3)
        return fn


def solve(functional: SkyrmeETF, v: torch.Tensor | None = None, *, batch: int | None = None,
          c0: torch.Tensor | None = None, k_cut: float = K_CUT, space: Variational | None = None,
          max_iter: int = 3000, tol_res: float = TOL_RES, tol_de: float = TOL_DE,
          history: int = HISTORY, k_precond: float | None = None,
          capacity: int | None = None, hessian_precond: torch.Tensor | None = None,
          compile: bool = False) -> SolveResult:
    r"""Minimise E_EDF[rho] + E_CoM + \int v rho for each potential in ``v`` [B, nr, nz] (MeV).

    ``c0`` [1 or B, 2, Mr, Mz] warm-starts the coefficients (default: a spherical Fermi profile).
    ``compile=True`` runs the energy through ``torch.compile`` (dynamic batch): the functional is a few
    thousand elementwise operations per evaluation, memory-bound on a GPU, and fusing them cuts the bytes
    moved. A first trial evaluation checks the compiled path; if it fails, the eager one is used (warned).
    """
    g = functional.grid
    space = space or Variational(functional, k_cut)
    if v is not None:
        v = v.to(g.device, g.dtype)
        B = v.shape[0]
    else:
        B = batch or 1
    if c0 is None:
        c0 = space.coefficients(fermi_psi(functional))
    c0 = c0.to(g.device, g.dtype)
    if c0.shape[0] != B:
        c0 = c0.expand(B, *c0.shape[1:]).clone()

    def total(c, vv):
        return functional.energy(space.psi(c), vv)["total"]

    energy_fn = _compiled_or_eager(total, c0[:2], None if v is None else v[:2]) if compile else total

    def fun(c, idx):
        return energy_fn(c, None if v is None else v[idx])

    precond = hessian_precond
    if precond is None and k_precond:
        kb = space.basis
        k2 = kb.k_r[:, None] ** 2 + kb.k_z[None, :] ** 2
        precond = (1.0 / (1.0 + k2 / k_precond**2))[None].expand(2, *k2.shape)
    res = lbfgs_batched(fun, c0, functional.numbers, max_iter=max_iter,
                        tol_res=tol_res, tol_de=tol_de, history=history, precond=precond,
                        capacity=capacity)
    chunk = capacity or B
    rho_q, parts = [], []
    with torch.no_grad():
        for i in range(0, B, chunk):
            psi = space.psi(res.x[i:i + chunk])
            parts.append(functional.energy(psi, None if v is None else v[i:i + chunk]))
            rho_q.append(psi * psi)
    en = {k: torch.cat([p_[k] for p_ in parts]) for k in parts[0]}
    return SolveResult(torch.cat(rho_q), en, res.residual,
                       res.iterations, res.converged, res.x, res.evaluations, res.wall_s)


def hessian_preconditioner(functional: SkyrmeETF, space: Variational, c: torch.Tensor, *,
                           eps: float = 1e-4, chunk: int = 128, floor: float = 1e-3) -> torch.Tensor:
    """Inverse of the (regularised) Hessian of the energy at coefficients ``c`` [1, 2, Mr, Mz].

    Central differences of autograd gradients, evaluated as batches of perturbed points. Eigenvalues
    are clamped from below at ``floor`` x the largest, which removes the two exact zero modes (the
    energy does not depend on the scale of c_q) and the modes outside the band limit. Used as the
    initial inverse Hessian of L-BFGS for densities near the ground state: each random-potential
    problem then starts with the ground state's curvature instead of a scaled identity.
    """
    g = functional.grid
    c = c.detach().to(g.device, g.dtype)
    n2 = (c * c).sum(dim=(-2, -1), keepdim=True)
    c = c * (functional.numbers[:, None, None] / n2).sqrt()
    nvar = c[0].numel()
    flat = c.reshape(1, nvar)
    mask = space.basis.mask.expand(2, *space.basis.mask.shape).reshape(nvar) > 0
    act = torch.nonzero(mask).flatten()

    def grads(xf):
        xr = xf.reshape(-1, *c.shape[1:]).detach().requires_grad_(True)
        e = functional.energy(space.psi(xr))["total"]
        (gr,) = torch.autograd.grad(e.sum(), xr)
        return gr.reshape(len(xf), nvar)

    cols = []
    for i in range(0, len(act), chunk):
        a = act[i:i + chunk]
        E = torch.zeros(len(a), nvar, device=g.device, dtype=g.dtype)
        E[torch.arange(len(a)), a] = eps
        gp, gm = grads(flat + E), grads(flat - E)
        cols.append(((gp - gm) / (2 * eps))[:, act])
    H = torch.cat(cols)                     # [n_act, n_act]
    H = 0.5 * (H + H.T)
    lam, V = torch.linalg.eigh(H)
    lam = lam.clamp_min(floor * lam.max())
    Mi = (V / lam) @ V.T
    M = torch.zeros(nvar, nvar, device=g.device, dtype=g.dtype)
    M[act[:, None], act[None, :]] = Mi
    return M


def evaluate(functional: SkyrmeETF, space: Variational, c: torch.Tensor, v: torch.Tensor | None = None,
             chunk: int = 256) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Densities rho_q [B, 2, nr, nz] and energy components at coefficients ``c`` (no gradient)."""
    g = functional.grid
    c = c.to(g.device, g.dtype)
    rho_q, parts = [], []
    with torch.no_grad():
        for i in range(0, c.shape[0], chunk):
            psi = space.psi(c[i:i + chunk])
            parts.append(functional.energy(psi, None if v is None else v[i:i + chunk].to(g.device, g.dtype)))
            rho_q.append(psi * psi)
    return torch.cat(rho_q), {k: torch.cat([p_[k] for p_ in parts]) for k in parts[0]}


# ---------------------------------------------------------------------------------------------
@dataclass
class GroundState:
    """Ground state of a nucleus in the ETF functional (no external field)."""

    nucleus: str
    functional: str
    energy: float               # total E_EDF, MeV (negative)
    binding_energy: float       # -energy, MeV
    be_exp: float | None
    r_n: float                  # rms radii, fm
    r_p: float
    r_ch: float
    rch_exp: float | None
    Q20: float                  # b
    Q30: float                  # b^(3/2)
    iterations: int
    gradient_norm: float        # final residual R, MeV (see module docstring)
    converged: bool
    components: dict[str, float]
    grid: tuple[int, int, float]
    k_cut: float
    rho_q: torch.Tensor | None = None
    wall_s: float = 0.0
    #: order in hbar of the ETF energy in ``energy`` (2, or 4 with the restricted hbar^4 term)
    order: int = 2
    #: charge radius with the hbar^4 shift of r_p from the restricted calculation (fm), order 4 only
    r_ch_hbar4: float | None = None
    #: details of the restricted (generalised Fermi) calculation behind components["hbar4"]
    hbar4_restricted: dict | None = None

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "rho_q"}
        d["grid"] = list(self.grid)
        d["units"] = {"energy": "MeV", "binding_energy": "MeV", "r_n": "fm", "r_p": "fm", "r_ch": "fm",
                      "Q20": "b", "Q30": "b^1.5", "gradient_norm": "MeV",
                      "r_ch_hbar4": "fm", "components": "MeV"}
        return d


def charge_radius(r_p: float, Z: int, N: int) -> float:
    """r_ch^2 = r_p^2 + <r^2>_proton + (N/Z) <r^2>_neutron + Darwin-Foldy (fm)."""
    from .constants import DARWIN_FOLDY_FM2, R2_NEUTRON_FM2, R2_PROTON_FM2
    return math.sqrt(r_p**2 + R2_PROTON_FM2 + (N / Z) * R2_NEUTRON_FM2 + DARWIN_FOLDY_FM2)


def auto_grid(nucleus, step: float = 0.3, margin_fm: float = 6.0) -> tuple[int, int, float]:
    """A box of radius 1.2 A^(1/3) + margin: (nr, 2 nr, step)."""
    nr = math.ceil((nucleus.radius_estimate() + margin_fm) / step)
    return (nr, 2 * nr, step)


def ground_state(nucleus="Pb208", functional="sly4", *, grid=None, k_cut: float = K_CUT,
                 com_C: float = 1.0, coulomb: bool = True, device=None, dtype=torch.float64,
                 max_iter: int = 5000, tol_res: float = 1e-5, tol_de: float = 1e-8,
                 keep_density: bool = False, hbar4: bool = True) -> GroundState:
    """Minimise the ETF energy of ``nucleus`` without external field.

    The densities minimise the order-hbar^2 ETF functional (:mod:`bkdsl.physics.etf`) in the
    band-limited space. With ``hbar4=True`` (default) the binding energy also includes the order-hbar^4
    kinetic term tau_4 (constant-effective-mass part, weighted by B_q; the hbar^4 effective-mass-gradient
    and spin-orbit terms are not included), evaluated as in Brack, Guet & Hakansson (Phys. Rep. 123
    (1985) 275) on restricted generalised-Fermi densities: components["hbar4"] = min E_2+4 - min E_2
    over spherical profiles (:func:`bkdsl.physics.etf4.hbar4_shift`), and energy = components["edf"]
    (order hbar^2, free variation) + components["hbar4"]. r_n, r_p, r_ch are those of the order-hbar^2
    density; ``r_ch_hbar4`` adds the restricted calculation's hbar^4 shift of r_p. ``hbar4=False`` gives the
    pure order-hbar^2 result (``order`` = 2).

    Raises BkError E0701 (unknown nucleus), E0702 (unknown functional), E0703 (grid too small),
    E0704 (not converged within ``max_iter``), E0705 (a collapsed or unphysical fixed point, see
    :mod:`bkdsl.physics.guards`).
    """
    from .grid import GridSpec, check_grid
    from .multipoles import multipoles, rms_radius, to_barn_units
    from .nuclei import get_nucleus
    from .skyrme import get_functional

    nuc = get_nucleus(nucleus)
    params = get_functional(functional)
    spec = GridSpec(*(grid or auto_grid(nuc)))
    check_grid(spec, nuc)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g = AxialGrid(spec, device=dev, dtype=dtype)
    F = SkyrmeETF(params, nuc, g, coulomb=coulomb, com_C=com_C)
    r = solve(F, k_cut=k_cut, max_iter=max_iter, tol_res=tol_res, tol_de=tol_de)
    if not bool(r.converged[0]):
        raise BkError("E0704", f"ground state of {nuc.name} did not converge: residual "
                      f"{float(r.residual[0]):.2e} MeV after {int(r.iterations[0])} iterations",
                      help=f"raise max_iter (now {max_iter}) or loosen tol_res (now {tol_res} MeV)")
    rho_q = r.rho_q
    rn = float(rms_radius(rho_q[0, 0], g))
    rp = float(rms_radius(rho_q[0, 1], g))
    rho_tot = rho_q[0].sum(0)
    require_physical(nuc.name, A=nuc.A, energy=float(r.energies["edf"][0]),
                     rms_radius=float(rms_radius(rho_tot, g)), rho_max=float(rho_tot.max()),
                     rho_min=float(rho_q.min()))
    Q = to_barn_units(multipoles(rho_q.sum(1), g, 3))[0]
    components = {k: float(v[0]) for k, v in r.energies.items()}
    E = components["edf"]
    restricted = None
    r_ch_4 = None
    wall = r.wall_s
    if hbar4:
        from .etf4 import hbar4_shift
        t0 = time.perf_counter()
        shift, r2, r4 = hbar4_shift(params, nuc.Z, nuc.N, coulomb=coulomb)
        wall += time.perf_counter() - t0
        components["hbar4"] = shift
        E = E + shift
        r_ch_4 = charge_radius(rp + (r4.r_p - r2.r_p), nuc.Z, nuc.N)
        restricted = {"E_hbar2": r2.energy, "E_hbar4": r4.energy, "E4_term": r4.components["hbar4"],
                      "theta_hbar2": list(r2.theta), "theta_hbar4": list(r4.theta),
                      "r_n_hbar2": r2.r_n, "r_p_hbar2": r2.r_p, "r_n_hbar4": r4.r_n, "r_p_hbar4": r4.r_p}
    components["total"] = E + components["com"] + components["external"]
    return GroundState(
        nucleus=nuc.name, functional=params.name, energy=E, binding_energy=-E, be_exp=nuc.be_exp,
        r_n=rn, r_p=rp, r_ch=charge_radius(rp, nuc.Z, nuc.N), rch_exp=nuc.rch_exp,
        Q20=float(Q[2]), Q30=float(Q[3]), iterations=int(r.iterations[0]),
        gradient_norm=float(r.residual[0]), converged=True,
        components=components,
        grid=(spec.nr, spec.nz, spec.step), k_cut=k_cut,
        rho_q=rho_q[0].cpu() if keep_density else None, wall_s=wall,
        order=4 if hbar4 else 2, r_ch_hbar4=r_ch_4, hbar4_restricted=restricted)


def densities_in_potential(nucleus, v: torch.Tensor, functional="sly4", *, grid, k_cut: float = K_CUT,
                           com_C: float = 1.0, coulomb: bool = True, on_fail: str = "raise",
                           max_iter: int = 1000, tol_res: float = 1e-4, tol_de: float = 1e-6,
                           device=None, dtype=torch.float64) -> SolveResult:
    """Minimise E_EDF + E_CoM + \\int v rho for potentials ``v`` [B, nr, nz] (MeV) on ``grid``.

    ``on_fail="raise"`` raises BkError(E0704) if any potential does not converge (including non-finite
    potentials); ``"keep"`` returns the result with ``converged`` flags for the caller to drop and count.
    """
    from .grid import GridSpec, check_grid
    from .nuclei import get_nucleus
    from .skyrme import get_functional

    nuc = get_nucleus(nucleus)
    params = get_functional(functional)
    spec = GridSpec(*grid)
    check_grid(spec, nuc)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g = AxialGrid(spec, device=dev, dtype=dtype)
    F = SkyrmeETF(params, nuc, g, coulomb=coulomb, com_C=com_C)
    space = Variational(F, k_cut)
    v = v.to(dev, dtype)
    bad_v = ~torch.isfinite(v).flatten(1).all(dim=1)
    gs = solve(F, space=space, tol_res=1e-5, tol_de=1e-8)
    r = solve(F, torch.nan_to_num(v), space=space, c0=gs.c, max_iter=max_iter, tol_res=tol_res,
              tol_de=tol_de)
    r.converged &= ~bad_v
    if on_fail == "raise" and not bool(r.converged.all()):
        i = int(torch.nonzero(~r.converged).flatten()[0])
        why = ("the potential is not finite" if bool(bad_v[i]) else
               f"residual {float(r.residual[i]):.2e} MeV after {int(r.iterations[i])} iterations")
        raise BkError("E0704", f"solver did not converge for potential {i} of {len(v)}: {why}",
                      help="use a smaller or smoother potential, raise max_iter, or pass on_fail='keep' "
                           "to drop and count such samples")
    return r
