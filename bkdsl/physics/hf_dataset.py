r"""Kohn-Sham density data sets of the thesis' ch. 3: ²⁴Mg in SHO and RND external fields, solved by the
axial Skyrme-HF+BCS of :mod:`bkdsl.physics.hf_axial`.

:func:`generate_hf_densities` draws ``samples`` external fields of one family on the solver's lattice
(the thesis' 10 x 20 cells of 0.8 fm by default):

* ``sho`` (eq. 3.8): v = k_r r^2/2 + k_z (z - z0)^2/2, k_r, k_z uniform in [0, 1.1] MeV fm^-2,
  z0 uniform in [-1.6, 1.6] fm;
* ``rnd`` (eqs. 3.9-3.12): v = m(r, z) sum_{r', z'} exp(-|x - x'|^2 / mu2(x')) rnd(x'), rnd uniform in
  [-1.1, 1.1] MeV and mu2 uniform in [0.8, 1.2] fm^2 per lattice point, the mask
  m = exp(-4 max(0, R - r0)^2 / r0^2) with r0 = 1.4 * 1.2 A^(1/3) fm;

(:mod:`bkdsl.physics.potentials`; each sample from its own generator seeded by (seed, index), so a data
set does not depend on the batch size), solves them ``batch`` at a time with
:func:`~bkdsl.physics.hf_axial.axial_hf_bcs_batch` (no Coulomb, the c.m. constraint C = 0.625 MeV fm^-2
of eq. 3.6), drops the elements that do not converge (E0704) or are unphysical
(:mod:`bkdsl.physics.guards`, E0705), and applies the cuts of the thesis' table 3.1 (MeV, per family):

    ======  ==============  ==============
    energy  SHO             RND
    ======  ==============  ==============
    E_bin   (-inf, -217.5]  (-inf, -217.5]
    E_kin   [395, 450]      [360, 420]
    E_int   [-650, -600]    [-630, -550]
    E_pair  [-22, +inf)     [-35, +inf)
    E_ex    (-inf, 120]     [-70, 50]
    ======  ==============  ==============

with the energies of eqs. 3.13-3.16: E_kin = hbar^2/2m (1 - 1/A) \int tau, E_int = E_Skyrme - E_kin,
E_pair = E_DDDI, E_ex = \int v rho, and E_bin = E_kin + E_int + E_pair (the functional without the
external field and the c.m. term). Each cut's drops are counted in ``stats``.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from bkdsl.diagnostics import BkError

from .field_units import HF_UNITS
from .grid import AxialGrid, GridSpec
from .hf_axial import DEFAULT_ORDER, THESIS_COM_C, THESIS_GRID, axial_hf_bcs, axial_hf_bcs_batch
from .nuclear_dataset import NuclearDataset, sample_generator
from .nuclei import get_nucleus
from .params import HF_POTENTIALS
from .potentials import make_potentials, potential_kind
from .skyrme import get_functional

INF = math.inf
#: thesis table 3.1 (MeV): per family, per energy, [lower, upper]
THESIS_CUTS: dict[str, dict[str, tuple[float, float]]] = {
    "sho": {"E": (-INF, -217.5), "E_kin": (395.0, 450.0), "E_int": (-650.0, -600.0), "E_pair": (-22.0, INF),
            "E_ex": (-INF, 120.0)},
    "rnd": {"E": (-INF, -217.5), "E_kin": (360.0, 420.0), "E_int": (-630.0, -550.0), "E_pair": (-35.0, INF),
            "E_ex": (-70.0, 50.0)},
}
#: table 3.1's counts left of 250 000 (for the docs' comparison)
THESIS_CUT_KEPT = {"sho": {"E": 239827, "E_kin": 249491, "E_int": 248782, "E_pair": 248911, "E_ex": 249704},
                   "rnd": {"E": 245740, "E_kin": 249310, "E_int": 249398, "E_pair": 249112, "E_ex": 249468}}



def draw_fields(kind: str, grid: AxialGrid, seed: int, indices: range, A: int, kw: dict) -> torch.Tensor:
    """External fields [n, nr, nz] (MeV) of samples ``indices``, each from its own seeded generator."""
    return torch.cat([make_potentials(kind, grid, 1, sample_generator(seed, i), A=A, **kw)[0] for i in indices])


def _energies(res) -> dict[str, float]:
    c = res.components
    e_skyrme = c["edf"] - c["pairing"]
    return {"E": c["edf"], "E_kin": c["kinetic_free"], "E_int": e_skyrme - c["kinetic_free"],
            "E_pair": c["pairing"], "E_ex": c["external"], "E_com": c["com"]}


def generate_hf_densities(
    nucleus: str = "Mg24",
    functional: str = "sly4",
    potential: str = "sho",
    samples: int = 64,
    grid: tuple[int, int, float] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch: int = 32,
    *,
    stencil: int = DEFAULT_ORDER,
    omega_max2: int | None = None,
    com_C: float | None = None,
    cuts: bool = True,
    max_iter: int = 300,
    tol_e: float = 1e-6,
    tol_rho: float = 1e-6,
    potential_kwargs: dict | None = None,
    progress: Callable[[dict], None] | None = None,
):
    """Kohn-Sham densities of ``nucleus`` in ``samples`` SHO or RND fields (see the module docstring).

    Returns a :class:`bkdsl.physics.dataset.NuclearDataset` with fields ``rho`` [S, 1, nr, nz] (n + p,
    fm^-3), ``rho_n``, ``rho_p``, ``v`` [S, 1, nr, nz] (MeV), ``E`` (= E_bin, MeV), ``E_kin``, ``E_int``,
    ``E_pair``, ``E_ex``, ``E_com``, ``Q20`` (b), ``residual`` (fm^-3), ``iterations``; ``stats`` counts
    every drop. ``grid`` is (n_r, n_z, step fm); ``omega_max2`` is 2 Omega_max (9 on the thesis lattice).
    """
    t_start = time.perf_counter()
    nuc = get_nucleus(nucleus)
    params = get_functional(functional)
    kind = potential_kind(potential)
    if kind not in HF_POTENTIALS:
        raise BkError("E0706", f"the Kohn-Sham generator draws sho or rnd fields, not `{potential}`",
                      help="use potential = \"sho\" or \"rnd\" (thesis ch. 3), or solver = \"etf\" for random_ho")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BkError("E0801", f"device `{device}` is not available", help="use device='cpu'")
    nr, nz, h = grid or THESIS_GRID
    spec = GridSpec(int(nr), int(nz), float(h))
    pgrid = AxialGrid(spec, device="cpu", dtype=torch.float64)
    C = THESIS_COM_C if com_C is None else float(com_C)
    om2 = omega_max2 if omega_max2 is not None else 9
    solve_kw = dict(grid=(spec.nr, spec.nz, spec.step), order=stencil, omega_max2=om2, com_C=C, max_iter=max_iter,
                    tol_e=tol_e, tol_rho=tol_rho, device=dev)
    gs = axial_hf_bcs(nuc.name, params, **solve_kw)            # no field: the reference E_gs and Q20_gs
    t_setup = time.perf_counter() - t_start

    keep: dict[str, list] = {k: [] for k in ("rho_n", "rho_p", "v", "E", "E_kin", "E_int", "E_pair", "E_ex", "E_com",
                                             "Q20", "residual", "iterations")}
    n_unconv = n_unphys = 0
    iters_total = 0
    for c0 in range(0, samples, batch):
        cn = min(batch, samples - c0)
        v = draw_fields(kind, pgrid, seed, range(c0, c0 + cn), nuc.A, dict(potential_kwargs or {}))
        out = axial_hf_bcs_batch(nuc.name, params, v_ext=v, **solve_kw)
        for vi, r in zip(v, out):
            if isinstance(r, BkError):
                if r.code == "E0705":
                    n_unphys += 1
                else:
                    n_unconv += 1
                continue
            iters_total += r.iterations
            for k, x in _energies(r).items():
                keep[k].append(x)
            keep["rho_n"].append(r.rho[0].float().cpu())
            keep["rho_p"].append(r.rho[1].float().cpu())
            keep["v"].append(vi.float())
            keep["Q20"].append(r.Q20)
            keep["residual"].append(r.residual)
            keep["iterations"].append(r.iterations)
        if progress is not None:
            progress({"done": c0 + cn, "samples": samples, "converged": len(keep["E"]),
                      "wall_s": time.perf_counter() - t_start})
    t_solve = time.perf_counter() - t_start - t_setup
    n_conv = len(keep["E"])
    scal = {k: torch.tensor(keep[k], dtype=torch.float64) for k in ("E", "E_kin", "E_int", "E_pair", "E_ex", "E_com",
                                                                     "Q20", "residual")}
    mask = torch.ones(n_conv, dtype=torch.bool)
    counts = {}
    for name, (lo, hi) in (THESIS_CUTS[kind].items() if cuts else ()):
        ok = (scal[name] >= lo) & (scal[name] <= hi)
        counts[f"dropped_cut_{name}"] = int((mask & ~ok).sum())
        mask &= ok

    def grid_field(name):
        x = torch.stack(keep[name]) if keep[name] else torch.zeros(0, spec.nr, spec.nz)
        return x[mask][:, None]

    rho_n, rho_p = grid_field("rho_n"), grid_field("rho_p")
    fields = {"rho": rho_n + rho_p, "rho_n": rho_n, "rho_p": rho_p, "v": grid_field("v"),
              **{k: scal[k][mask] for k in scal},
              "iterations": torch.tensor(keep["iterations"], dtype=torch.float64)[mask]}
    wall = time.perf_counter() - t_start
    ge = _energies(gs)
    stats = {"generated": samples, "converged": n_conv + n_unphys, "dropped_unconverged": n_unconv,
             "dropped_unphysical": n_unphys, **counts, "kept": int(mask.sum()), "E_gs": gs.energy,
             "E_kin_gs": ge["E_kin"], "E_int_gs": ge["E_int"], "E_pair_gs": ge["E_pair"], "Q20_gs": gs.Q20,
             "mean_iterations": iters_total / max(1, n_conv), "wall_s": wall, "setup_wall_s": t_setup,
             "solve_wall_s": t_solve, "samples_per_s": samples / t_solve if t_solve > 0 else float("nan"),
             "device": str(dev)}
    config = {"solver": "hf-bcs", "nucleus": nuc.name, "functional": params.name, "potential": kind,
              "samples": samples, "grid": [spec.nr, spec.nz, spec.step], "seed": seed, "batch": batch,
              "stencil": stencil, "omega_max2": om2, "com_C": C, "coulomb": False, "cuts": cuts,
              "cut_table": {k: list(v) for k, v in THESIS_CUTS[kind].items()} if cuts else None,
              "potential_kwargs": dict(potential_kwargs or {}), "max_iter": max_iter,
              "convergence": f"|dE| < {tol_e} MeV and max|rho_out - rho_in| < {tol_rho} fm^-3 within {max_iter} "
                             "iterations (axial HF+BCS, Broyden mixing)"}
    return NuclearDataset(fields=fields, units=dict(HF_UNITS), stats=stats, config=config)
