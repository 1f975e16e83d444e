"""The thesis' random external potentials (MeV) on the axial grid, batched and seeded.

* :func:`sho`        - eq. 3.8: v = k_r r^2 / 2 + k_z (z - z0)^2 / 2, k in [0, 1.1] MeV fm^-2,
                       z0 in [-1.6, 1.6] fm (the 24Mg SHO set).
* :func:`rnd`        - eqs. 3.9-3.12: mask(r, z) x Gaussian-filtered uniform noise in [-1.1, 1.1] MeV,
                       filter width mu_2 in [0.8, 1.2] fm^2 drawn per source point,
                       mask exp(-4 max(0, sqrt(r^2+z^2) - r0)^2 / r0^2), r0 = 1.4 * 1.2 A^(1/3) fm.
* :func:`random_ho`  - eq. 4.6: expansion in the axial harmonic-oscillator basis,
                       sum over n_z/q + 2 n_r + |Lambda| <= N_shell of v_{n_z n_r Lambda} phi_{n_z}(z; b_z)
                       phi_{n_r}^{|Lambda|}(r; b_perp), coefficients uniform in [-v0, v0] MeV fm^(3/2),
                       b = (1 + t) b_0 with t uniform in [0, 0.5], q = 1.1736, N_shell = 26,
                       b_z0 = 2.08 fm, b_perp0 = 1.92 fm, v0 drawn from {0.6, 1.2, 1.8, 2.4} per sample.

All functions take a ``torch.Generator`` (CPU) so results are deterministic given the seed and do not
depend on the device; they return ``(v [B, nr, nz], params)`` where ``params`` maps names to [B]
tensors describing each draw.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from bkdsl.diagnostics import BkError
from bkdsl.lazy import lazy_module

if TYPE_CHECKING:
    from .grid import AxialGrid

torch = lazy_module("torch")  # at first use: potential_kind is read by the data schema without torch

THESIS_V0 = (0.6, 1.2, 1.8, 2.4)     # MeV fm^(3/2)
THESIS_BZ, THESIS_BPERP = 2.08, 1.92  # fm
THESIS_Q = 1.1736
THESIS_NSHELL = 26


def _u(gen, shape, lo, hi):
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def sho(grid: AxialGrid, batch: int, gen: torch.Generator, *, k_max: float = 1.1, z0_max: float = 1.6):
    kr = _u(gen, (batch,), 0.0, k_max)
    kz = _u(gen, (batch,), 0.0, k_max)
    z0 = _u(gen, (batch,), -z0_max, z0_max)
    R, Z = grid.R.cpu().double(), grid.Z.cpu().double()
    v = 0.5 * kr[:, None, None] * R**2 + 0.5 * kz[:, None, None] * (Z - z0[:, None, None]) ** 2
    return v.to(grid.device, grid.dtype), {"k_r": kr, "k_z": kz, "z0": z0}


def rnd(grid: AxialGrid, batch: int, gen: torch.Generator, *, A: int, v_min: float = -1.1,
        v_max: float = 1.1, mu2_min: float = 0.8, mu2_max: float = 1.2, r0: float | None = None):
    r0 = r0 if r0 is not None else 1.4 * 1.2 * A ** (1.0 / 3.0)
    R, Z = grid.R.cpu().double(), grid.Z.cpu().double()
    nr, nz = grid.shape
    noise = _u(gen, (batch, nr * nz), v_min, v_max)                 # rnd(r', z')
    mu2 = _u(gen, (batch, nr * nz), mu2_min, mu2_max)               # mu_2(r', z')
    pr, pz = R.reshape(-1), Z.reshape(-1)
    d2 = (pr[:, None] - pr[None, :]) ** 2 + (pz[:, None] - pz[None, :]) ** 2   # [target, source]
    # sr(x) = sum_x' exp(-|x - x'|^2 / mu2(x')) rnd(x')   (eq. 3.11-3.12, one sample at a time)
    sr = torch.stack([torch.exp(-d2 / mu2[b][None, :]) @ noise[b] for b in range(batch)])
    mask = torch.exp(-4.0 * torch.clamp(torch.sqrt(R**2 + Z**2) - r0, min=0.0) ** 2 / r0**2)
    v = mask[None] * sr.reshape(batch, nr, nz)
    return v.to(grid.device, grid.dtype), {"mu2_mean": mu2.mean(dim=1)}


# ---------------------------------------------------------------------------------------------
def ho_quantum_numbers(n_shell: int = THESIS_NSHELL, q: float = THESIS_Q):
    """All (n_z, n_r, Lambda >= 0) with n_z / q + 2 n_r + Lambda <= n_shell (thesis eq. 4.6)."""
    out = []
    for lam in range(n_shell + 1):
        for nr in range((n_shell - lam) // 2 + 1):
            nz_max = int(math.floor(q * (n_shell - 2 * nr - lam) + 1e-9))
            for nz in range(nz_max + 1):
                out.append((nz, nr, lam))
    return out


def hermite_functions(xi: torch.Tensor, n_max: int) -> torch.Tensor:
    """Orthonormal Hermite functions psi_n(xi) = (2^n n! sqrt(pi))^(-1/2) H_n(xi) e^(-xi^2/2).
    xi [..., P] -> [..., n_max+1, P]."""
    out = [math.pi ** -0.25 * torch.exp(-0.5 * xi * xi)]
    if n_max >= 1:
        out.append(math.sqrt(2.0) * xi * out[0])
    for n in range(1, n_max):
        out.append(math.sqrt(2.0 / (n + 1)) * xi * out[n] - math.sqrt(n / (n + 1)) * out[n - 1])
    return torch.stack(out, dim=-2)


def laguerre_functions(eta: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """sqrt(2 n_r! / (n_r + L)!) eta^(L/2) L_{n_r}^L(eta) e^(-eta/2) for each (n_r, L) in ``pairs``
    (without the 1/b_perp factor). eta [..., P] -> [..., K, P]."""
    log_eta = torch.log(eta)
    cols = []
    cache: dict[int, list[torch.Tensor]] = {}
    for nr, lam in pairs:
        if lam not in cache:
            cache[lam] = [torch.ones_like(eta)]
        Ls = cache[lam]
        while len(Ls) <= nr:
            k = len(Ls) - 1
            if k == 0:
                Ls.append(1.0 + lam - eta)
            else:
                Ls.append(((2 * k + 1 + lam - eta) * Ls[k] - (k + lam) * Ls[k - 1]) / (k + 1))
        lognorm = 0.5 * (math.log(2.0) + math.lgamma(nr + 1) - math.lgamma(nr + lam + 1))
        cols.append(Ls[nr] * torch.exp(lognorm + 0.5 * lam * log_eta - 0.5 * eta))
    return torch.stack(cols, dim=-2)


@functools.lru_cache(maxsize=8)
def _ho_layout(n_shell: int, q: float):
    """(pairs (n_r, Lambda), mask [K, nz_max+1] of allowed n_z per pair, nz_max) for eq. 4.6."""
    qn = ho_quantum_numbers(n_shell, q)
    pairs = sorted({(nr, lam) for (_, nr, lam) in qn})
    pidx = {p: i for i, p in enumerate(pairs)}
    nz_max = max(n for (n, _, _) in qn)
    mask = torch.zeros(len(pairs), nz_max + 1, dtype=torch.float64)
    for n, nr, lam in qn:
        mask[pidx[(nr, lam)], n] = 1.0
    return tuple(pairs), mask, nz_max


def random_ho_draws(batch: int, gen: torch.Generator, *, v0=THESIS_V0, t_max: float = 0.5,
                    n_shell: int = THESIS_NSHELL, q: float = THESIS_Q) -> dict[str, torch.Tensor]:
    """The random numbers of eq. 4.6 for ``batch`` samples, drawn from ``gen`` (CPU, float64).

    Returns ``v0`` [B] (MeV fm^3/2), ``t_z``, ``t_perp`` [B] (b = (1 + t) b_0) and ``coef``
    [B, K, nz_max + 1] = v_{n_z n_r Lambda} (zero where n_z / q + 2 n_r + |Lambda| > N_shell).
    Cheap (no basis functions): the expensive part is :func:`random_ho_field`, which is batched.
    """
    v0_choices = torch.tensor([float(x) for x in (v0 if np.iterable(v0) else [v0])], dtype=torch.float64)
    pairs, mask, nz_max = _ho_layout(n_shell, q)
    choice = torch.randint(len(v0_choices), (batch,), generator=gen)
    v0s = v0_choices[choice]
    tz = _u(gen, (batch,), 0.0, t_max)
    tp = _u(gen, (batch,), 0.0, t_max)
    coef = _u(gen, (batch, len(pairs), nz_max + 1), -1.0, 1.0) * v0s[:, None, None] * mask
    return {"v0": v0s, "t_z": tz, "t_perp": tp, "coef": coef}


def random_ho_field(grid: AxialGrid, draws: dict[str, torch.Tensor], *, b_z: float = THESIS_BZ,
                    b_perp: float = THESIS_BPERP, n_shell: int = THESIS_NSHELL, q: float = THESIS_Q,
                    chunk: int = 512) -> torch.Tensor:
    """v(r, z) = sum_{n_z n_r Lambda} v_{n_z n_r Lambda} phi_{n_z}(z; b_z) phi_{n_r}^Lambda(r; b_perp)
    for the draws of :func:`random_ho_draws`, evaluated in float64 on ``grid.device`` in chunks of
    ``chunk`` samples (the Hermite/Laguerre recursions are batched over samples). [B, nr, nz]."""
    pairs, _, nz_max = _ho_layout(n_shell, q)
    dev = grid.device
    r = grid.r.to(dev, torch.float64)
    z = grid.z.to(dev, torch.float64)
    out = []
    B = int(draws["coef"].shape[0])
    for i in range(0, B, chunk):
        tz = draws["t_z"][i:i + chunk].to(dev)
        tp = draws["t_perp"][i:i + chunk].to(dev)
        coef = draws["coef"][i:i + chunk].to(dev)
        bz = (1 + tz) * b_z
        bp = (1 + tp) * b_perp
        Zf = hermite_functions(z[None, :] / bz[:, None], nz_max) / torch.sqrt(bz)[:, None, None]  # [b, nzq, nz]
        Rf = laguerre_functions((r[None, :] / bp[:, None]) ** 2, list(pairs)) / bp[:, None, None]  # [b, K, nr]
        out.append(torch.einsum("bkr,bkn,bnz->brz", Rf, coef, Zf))
    return torch.cat(out).to(grid.dtype)


def random_ho(grid: AxialGrid, batch: int, gen: torch.Generator, *, v0=THESIS_V0,
              b_z: float = THESIS_BZ, b_perp: float = THESIS_BPERP, t_max: float = 0.5,
              n_shell: int = THESIS_NSHELL, q: float = THESIS_Q):
    """Thesis eq. 4.6. ``v0`` is a number or a sequence to draw from uniformly, per sample."""
    d = random_ho_draws(batch, gen, v0=v0, t_max=t_max, n_shell=n_shell, q=q)
    v = random_ho_field(grid, d, b_z=b_z, b_perp=b_perp, n_shell=n_shell, q=q)
    return v, {"v0": d["v0"], "b_z": (1 + d["t_z"]) * b_z, "b_perp": (1 + d["t_perp"]) * b_perp}


POTENTIALS = {"sho": sho, "rnd": rnd, "random_ho": random_ho}


_ALIASES = {"ho": "random_ho", "randomho": "random_ho", "rho_basis": "random_ho"}


def potential_kind(kind: str) -> str:
    """The canonical name (a key of POTENTIALS) of a potential kind as a user may spell it; E0201 if none."""
    k = kind.lower().replace("-", "_")
    k = _ALIASES.get(k, k)
    if k not in POTENTIALS:
        raise BkError("E0201", f"unknown external potential `{kind}`",
                      help="use one of: sho, rnd (24Mg, thesis sec. 3.2.3), random_ho (236U, eq. 4.6)")
    return k


def make_potentials(kind: str, grid: AxialGrid, batch: int, gen: torch.Generator, *, A: int, **kw):
    k = potential_kind(kind)
    if k == "rnd":
        kw = dict(kw, A=A)
    return POTENTIALS[k](grid, batch, gen, **kw)
