"""Random-potential Skyrme-ETF density data sets (thesis ch. 3 and 4), as a pure function.

:func:`generate_nuclear_densities` draws ``samples`` external potentials, minimises the ETF energy in
each (batched, streaming L-BFGS), drops the samples that do not meet the convergence criterion
(counted in ``stats["dropped_unconverged"]``) and those that fail the physical bounds of
:mod:`bkdsl.physics.guards` (``stats["dropped_unphysical"]``), applies the thesis' filters (energy window above the
ground state, histogram flattening, Q20 window; each counted) and returns a :class:`NuclearDataset`.

Default configuration (236U, thesis ch. 4 with the choices documented in docs/physics.md):
random HO-basis potentials (eq. 4.6, v0 drawn from {0.6, 1.2, 1.8, 2.4} MeV fm^3/2), SLy4, Coulomb,
centre-of-mass constraint C = 1.0 MeV fm^-2, output on the thesis' 48 x 128 sub-lattice at 0.4 fm,
solved on the central 32 x 80 cells (r <= 12.8 fm, |z| <= 16 fm; the density is zero outside),
energy window 0 <= E - E_gs <= 15.87 MeV, Q20 - Q20_gs in [-6.5, +6.5] b, 100-bin flattening with
the thesis' cap scaled to the run size. Thesis scale: ``samples=298_982, hist_cap=2250`` (see docs).

Deterministic given ``seed`` and the configuration: every sample's potential comes from its own
generator seeded by (seed, sample index).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from bkdsl.diagnostics import BkError

from . import filters as F_
from .etf import SkyrmeETF
from .grid import AxialGrid, GridSpec, check_grid
from .guards import check_physical
from . import hf_axial, hf_dataset
from .field_units import HF_UNITS, UNITS  # noqa: F401  (per-field units, pint-parsable; re-exported)
from .hf_dataset import generate_hf_densities
from .multipoles import multipoles, rms_radius, to_barn_units
from .nuclear_dataset import NuclearDataset, sample_generator
from .nuclei import get_nucleus
from .potentials import THESIS_V0, make_potentials, potential_kind, random_ho_draws, random_ho_field
from .skyrme import get_functional
from .solver import K_CUT, Variational, evaluate, hessian_preconditioner, solve


def solver_modules(solver: str) -> tuple:
    """The modules whose source versions a cached data set of ``solver`` (beyond this one's)."""
    return (hf_dataset, hf_axial) if solver == "hf-bcs" else ()


DEFAULT_GRID = {"U236": (48, 128, 0.4), "Mg24": (10, 20, 0.8)}
DEFAULT_SOLVE_BOX = {"U236": (32, 80)}
DEFAULT_COM_C = {"Mg24": 0.625}          # thesis ch. 3; ch. 4 uses 1.0 MeV fm^-2


_sample_generator = sample_generator


def _potentials(kind: str, grid: AxialGrid, seed: int, indices: range, A: int, kw: dict):
    """External potentials [n, nr, nz] of samples ``indices`` and their v0 (nan where not drawn).

    Each sample's random numbers come from its own generator (:func:`_sample_generator`), so a sample
    does not depend on the chunking. For ``random_ho`` only the draws are per sample; the basis
    expansion (the expensive part) runs batched on the grid's device.
    """
    if potential_kind(kind) == "random_ho":
        fkw = {k: kw[k] for k in ("b_z", "b_perp", "n_shell", "q") if k in kw}
        dkw = {k: kw[k] for k in ("v0", "t_max", "n_shell", "q") if k in kw}
        draws = [random_ho_draws(1, _sample_generator(seed, i), **dkw) for i in indices]
        d = {k: torch.cat([x[k] for x in draws]) for k in draws[0]}
        return random_ho_field(grid, d, **fkw), d["v0"].tolist()
    vs, v0s = [], []
    for i in indices:
        v_i, p_i = make_potentials(kind, grid, 1, _sample_generator(seed, i), A=A, **kw)
        vs.append(v_i)
        v0s.append(float(p_i.get("v0", torch.tensor([float("nan")]))[0]))
    return torch.cat(vs), v0s


def _physical(rho_q: torch.Tensor, E: torch.Tensor, grid: AxialGrid, A: int) -> torch.Tensor:
    """[B] bool: each converged state passes :func:`bkdsl.physics.guards.check_physical`."""
    rho = rho_q.sum(1)
    r_m = rms_radius(rho, grid)
    rmax = rho.flatten(1).amax(1)
    rmin = rho_q.flatten(1).amin(1)
    return torch.tensor([not check_physical(A=A, energy=float(e), rms_radius=float(r), rho_max=float(a),
                                            rho_min=float(b))
                         for e, r, a, b in zip(E.cpu(), r_m.cpu(), rmax.cpu(), rmin.cpu())],
                        dtype=torch.bool, device=rho.device)


def _default_device(device):
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BkError("E0801", f"device `{device}` is not available", help="use device='cpu'")
    return dev


def generate_nuclear_densities(
    nucleus: str = "U236",
    functional: str = "sly4",
    potential: str = "random_ho",
    samples: int = 1000,
    grid: tuple[int, int, float] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch: int = 128,
    v0: float | Sequence[float] = THESIS_V0,
    *,
    solve_box: tuple[int, int] | None | str = "auto",
    k_cut: float = K_CUT,
    com_C: float | None = None,
    coulomb: bool | None = None,
    excitation_window: tuple[float, float] | None = F_.THESIS_EXCITATION_WINDOW,
    q20_window: tuple[float, float] | None = (-6.5, 6.5),
    q20_relative: bool = True,
    flatten: bool = True,
    hist_bins: int = F_.THESIS_BINS,
    hist_cap: int | None = None,
    max_iter: int = 150,
    tol_res: float = 1e-3,
    tol_de: float = 1e-3,
    dtype: torch.dtype = torch.float64,
    work_dtype: torch.dtype | None = None,
    hessian: bool = True,
    chunk: int = 2048,
    compile: bool | str = "auto",
    potential_kwargs: dict | None = None,
    progress: Callable[[dict], None] | None = None,
    solver: str = "etf",
    stencil: int = hf_axial.DEFAULT_ORDER,
    omega_max2: int | None = None,
    cuts: bool = True,
    tol_e: float = 1e-6,
    tol_rho: float = 1e-6,
) -> NuclearDataset:
    """Generate densities of ``nucleus`` in random external potentials (see module docstring).

    Returns fields ``rho`` [S, 1, nr, nz] (n + p, fm^-3), ``rho_n``, ``rho_p``, ``v`` [S, 1, nr, nz]
    (MeV), ``E`` [S] (E_EDF of the density without the external and centre-of-mass terms: the
    binding energy as a negative number, MeV), ``E_ext`` = \\int v rho, ``E_com``, ``Q20`` (b),
    ``Q30`` (b^3/2), ``Q40`` (b^2), ``v0``, ``residual``, ``iterations``.

    ``compile`` (``"auto"``: on CUDA only) fuses the energy functional with ``torch.compile`` for the
    random-potential solves (see :func:`bkdsl.physics.solver.solve`); it changes speed, not results
    beyond rounding.

    ``solver = "hf-bcs"`` generates the thesis' ch. 3 data instead: Kohn-Sham (axial Skyrme-HF+BCS)
    solutions in ``sho`` / ``rnd`` fields on the 10 x 20 x 0.8 fm lattice, without Coulomb, with table
    3.1's cuts (:func:`bkdsl.physics.hf_dataset.generate_hf_densities`; ``stencil``, ``omega_max2``,
    ``cuts``, ``tol_e`` (MeV), ``tol_rho`` (fm^-3) are its own keywords, the ETF ones do not apply).
    """
    if solver == "hf-bcs":
        if coulomb:
            raise BkError("E0706", "the Kohn-Sham generator (solver = \"hf-bcs\") has no Coulomb term",
                          help="leave coulomb out or set it false (the thesis' ch. 3 set-up)")
        return generate_hf_densities(nucleus, functional, potential, samples, grid, seed, device, batch,
                                     stencil=stencil, omega_max2=omega_max2, com_C=com_C, cuts=cuts,
                                     max_iter=max_iter, tol_e=tol_e, tol_rho=tol_rho,
                                     potential_kwargs=potential_kwargs, progress=progress)
    if solver != "etf":
        raise BkError("E0706", f"unknown density solver `{solver}`", help="use etf or hf-bcs")
    coulomb = True if coulomb is None else coulomb
    t_start = time.perf_counter()
    nuc = get_nucleus(nucleus)
    params = get_functional(functional)
    dev = _default_device(device)
    spec = GridSpec(*(grid or DEFAULT_GRID.get(nuc.name, (48, 128, 0.4))))
    if solve_box == "auto":
        solve_box = DEFAULT_SOLVE_BOX.get(nuc.name) if grid is None else None
    if solve_box is not None:
        nr_s, nz_s = int(solve_box[0]), int(solve_box[1])
        if nr_s > spec.nr or nz_s > spec.nz or nz_s % 2 or (spec.nz - nz_s) % 2:
            raise BkError("E0703", f"solve box {nr_s} x {nz_s} does not fit the grid {spec.nr} x {spec.nz}",
                          help="use an even nz no larger than the grid's, with the same parity margin")
    else:
        nr_s, nz_s = spec.nr, spec.nz
    sspec = GridSpec(nr_s, nz_s, spec.step)
    check_grid(sspec, nuc)
    full = AxialGrid(spec, device=dev, dtype=dtype)
    sgrid = AxialGrid(sspec, device=dev, dtype=dtype)
    z0 = (spec.nz - nz_s) // 2
    C = com_C if com_C is not None else DEFAULT_COM_C.get(nuc.name, 1.0)
    func = SkyrmeETF(params, nuc, sgrid, coulomb=coulomb, com_C=C)
    space = Variational(func, k_cut)
    wdt = work_dtype or dtype
    if wdt != dtype:       # iterate in the work precision, report energies in ``dtype``
        wgrid = AxialGrid(sspec, device=dev, dtype=wdt)
        wfunc = SkyrmeETF(params, nuc, wgrid, coulomb=coulomb, com_C=C)
        wspace = Variational(wfunc, k_cut)
    else:
        wfunc, wspace = func, space
    pkw = dict(potential_kwargs or {})
    if potential_kind(potential) == "random_ho":
        pkw.setdefault("v0", v0)

    # ---- ground state (no external field) ----
    gs = solve(func, space=space, tol_res=1e-5, tol_de=1e-8, max_iter=5000)
    if not bool(gs.converged[0]):
        raise BkError("E0704", f"ground state of {nuc.name} did not converge "
                      f"(residual {gs.residual.item():.2e} MeV after {gs.iterations.item()} iterations)",
                      help="enlarge the grid, or raise max_iter")
    E_gs = float(gs.energies["edf"][0])
    M = hessian_preconditioner(func, space, gs.c).to(wdt) if hessian else None
    t_setup = time.perf_counter() - t_start
    Q_gs = to_barn_units(multipoles(gs.rho_q.sum(1), sgrid, 4))[0]

    use_compile = (dev.type == "cuda") if compile == "auto" else bool(compile)

    # ---- generate and solve, in chunks ----
    keep_fields: dict[str, list] = {k: [] for k in ("rho_n", "rho_p", "v", "E", "E_ext", "E_com", "Q",
                                                     "v0", "residual", "iterations")}
    n_unconv = 0
    n_unphys = 0
    n_iter_total = 0
    for c0 in range(0, samples, chunk):
        cn = min(chunk, samples - c0)
        v_full, v0s = _potentials(potential, full, seed, range(c0, c0 + cn), nuc.A, pkw)
        v_full = v_full.to(dev, dtype)
        v_s = v_full[:, :nr_s, z0:z0 + nz_s]
        res = solve(wfunc, v_s.to(wdt), space=wspace, c0=gs.c.to(wdt), tol_res=tol_res, tol_de=tol_de,
                    max_iter=max_iter, capacity=batch, hessian_precond=M, compile=use_compile)
        rho_q, energies = evaluate(func, space, res.c, v_s, chunk=batch)
        ok = res.converged & torch.isfinite(energies["edf"])
        n_unconv += int((~ok).sum())
        phys = _physical(rho_q, energies["edf"], sgrid, nuc.A) | ~ok
        n_unphys += int((ok & ~phys).sum())
        ok = ok & phys
        n_iter_total += int(res.iterations.sum())
        okc = ok.cpu()
        Q = to_barn_units(multipoles(rho_q.sum(1), sgrid, 4))
        keep_fields["rho_n"].append(rho_q[ok, 0].float().cpu())
        keep_fields["rho_p"].append(rho_q[ok, 1].float().cpu())
        keep_fields["v"].append(v_full[ok].float().cpu())
        keep_fields["E"].append(energies["edf"][ok].cpu())
        keep_fields["E_ext"].append(energies["external"][ok].cpu())
        keep_fields["E_com"].append(energies["com"][ok].cpu())
        keep_fields["Q"].append(Q[ok].cpu())
        keep_fields["v0"].append(torch.tensor(v0s, dtype=torch.float64)[okc])
        keep_fields["residual"].append(res.residual[ok].cpu())
        keep_fields["iterations"].append(res.iterations[ok].cpu())
        if progress is not None:
            progress({"done": c0 + cn, "samples": samples, "converged": int(ok.sum()),
                      "wall_s": time.perf_counter() - t_start})
    cat = {k: torch.cat(v) for k, v in keep_fields.items()}
    n_conv = len(cat["E"])
    t_solve = time.perf_counter() - t_start

    # ---- filters (thesis order: flatten, energy window, Q20 window) ----
    gen_f = torch.Generator().manual_seed(int(seed))
    E = cat["E"]
    Q20 = cat["Q"][:, 2]
    keep = torch.ones(n_conv, dtype=torch.bool)
    counts = {}
    lo = hi = None
    if excitation_window is not None:
        lo, hi = E_gs + excitation_window[0], E_gs + excitation_window[1]
    cap = None
    if flatten and n_conv:
        cap = hist_cap if hist_cap is not None else F_.thesis_cap(samples)
        flo, fhi = (lo, hi) if lo is not None else (float(E.min()), float(E.max()))
        k2 = F_.flatten_histogram(E, flo, fhi, hist_bins, cap, gen_f, keep)
        counts["dropped_flatten"] = int((keep & ~k2).sum())
        keep = k2
    else:
        counts["dropped_flatten"] = 0
    if excitation_window is not None:
        k2 = keep & F_.energy_window(E, lo - 1e-6, hi)   # 1 eV slack for the ground state itself
        counts["dropped_energy_window"] = int((keep & ~k2).sum())
        keep = k2
    else:
        counts["dropped_energy_window"] = 0
    if q20_window is not None:
        off = float(Q_gs[2]) if q20_relative else 0.0
        k2 = keep & F_.q20_window(Q20, q20_window[0] + off, q20_window[1] + off)
        counts["dropped_q20_window"] = int((keep & ~k2).sum())
        keep = k2
    else:
        counts["dropped_q20_window"] = 0

    nr, nz = spec.nr, spec.nz

    def embed(a):
        outp = torch.zeros(a.shape[0], 1, nr, nz, dtype=a.dtype)
        outp[:, 0, :nr_s, z0:z0 + nz_s] = a
        return outp

    rho_n = embed(cat["rho_n"][keep])
    rho_p = embed(cat["rho_p"][keep])
    fields = {
        "rho": rho_n + rho_p, "rho_n": rho_n, "rho_p": rho_p,
        "v": cat["v"][keep][:, None],
        "E": cat["E"][keep], "E_ext": cat["E_ext"][keep], "E_com": cat["E_com"][keep],
        "Q20": cat["Q"][keep, 2], "Q30": cat["Q"][keep, 3], "Q40": cat["Q"][keep, 4],
        "v0": cat["v0"][keep], "residual": cat["residual"][keep], "iterations": cat["iterations"][keep],
    }
    units = dict(UNITS)
    if potential_kind(potential) != "random_ho":   # v0 is the random-HO amplitude; other families draw none
        del fields["v0"], units["v0"]
    wall = time.perf_counter() - t_start
    stats = {
        "generated": samples, "converged": n_conv + n_unphys, "dropped_unconverged": n_unconv,
        "dropped_unphysical": n_unphys, **counts,
        "kept": int(keep.sum()), "E_gs": E_gs, "Q20_gs": float(Q_gs[2]), "Q30_gs": float(Q_gs[3]),
        "hist_cap": cap, "mean_iterations": n_iter_total / max(1, samples),
        "wall_s": wall, "setup_wall_s": t_setup, "solve_wall_s": t_solve - t_setup,
        "samples_per_s": samples / (t_solve - t_setup) if t_solve > t_setup else float("nan"),
        "kept_per_s": int(keep.sum()) / wall if wall > 0 else float("nan"),
        "device": str(dev),
    }
    config = {
        "nucleus": nuc.name, "functional": params.name, "potential": potential, "samples": samples,
        "grid": [spec.nr, spec.nz, spec.step], "solve_box": [nr_s, nz_s], "seed": seed, "batch": batch,
        "v0": list(v0) if np.iterable(v0) else v0, "k_cut": k_cut, "com_C": C, "coulomb": coulomb,
        "excitation_window": excitation_window, "q20_window": q20_window, "q20_relative": q20_relative,
        "flatten": flatten, "hist_bins": hist_bins, "max_iter": max_iter, "tol_res": tol_res,
        "tol_de": tol_de, "dtype": str(dtype), "work_dtype": str(wdt), "hessian_precond": hessian,
        "compile": use_compile,
        "convergence": f"residual < {tol_res} MeV and |dE| < {tol_de} MeV and quasi-Newton "
                       f"decrement < {tol_de} MeV within {max_iter} iterations",
    }
    return NuclearDataset(fields=fields, units=units, stats=stats, config=config)
