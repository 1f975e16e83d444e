"""Boundary data of the AdS/CFT network, made from a bulk metric h(η) (bkdsl/nn/ads.py).

Two directions of integration:

* **inward** (:func:`generate_response`): boundary pairs (φ, π) drawn uniformly from the box
  φ ∈ [0, 1.5], π ∈ [−0.2, 0.2] at η_ini (the paper's box), integrated to η_fin in the true metric
  with a fine RK4 (``substeps`` steps, independent of the network) and labelled with the horizon
  residual F = 2π/η − m²φ − λφ³ at η_fin (``label = "response"``, optionally with noise on asinh F);
* **outward** (:func:`horizon_samples`): the paper's regular / irregular classification data
  (``label = "horizon"``). Regular boundary data (|F| < ε) fill a thin band of the box — with the
  paper's box and ε = 0.1 well under 1 % of uniform draws for AdS–Schwarzschild — so drawing in the
  box and keeping the regular ones does not reach the paper's scale. Instead each regular sample starts
  at the horizon side: φ_h and a residual F ∈ (−ε, ε) drawn uniformly, π_h = η_fin(F + m²φ_h + λφ_h³)/2
  (so the residual at η_fin is F by construction), integrated *outward* to η_ini with the same fine
  RK4; those that land in the box are the regular samples (label 0). Irregular samples (label 1) are
  box draws integrated inward whose |F| ≥ ε. The returned ``F`` of every sample is the residual of
  the inward solve from its boundary point, so the label can be checked (the round trip is tested).
"""

from __future__ import annotations

import math

import torch

from bkdsl.nn.ads import Bulk, MetricFn, horizon_residual, integrate_true, regular_momentum

PHI_BOX = (0.0, 1.5)
PI_BOX = (-0.2, 0.2)


class AdSDataError(ValueError):
    """The generator could not make the data asked for (too few samples in the box, non-finite solves)."""


def _draw_box(g: torch.Generator, n: int, phi_range, pi_range) -> torch.Tensor:
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([phi_range[0] + (phi_range[1] - phi_range[0]) * u[:, 0],
                        pi_range[0] + (pi_range[1] - pi_range[0]) * u[:, 1]], 1)


def inward_residual(h: MetricFn, x: torch.Tensor, bulk: Bulk, substeps: int = 2000) -> torch.Tensor:
    """F at η_fin of the solutions with boundary data x = (φ, π) at η_ini (non-finite where it overflows)."""
    phi, pi = integrate_true(h, x[:, 0], x[:, 1], bulk, substeps)
    return horizon_residual(phi, pi, bulk.eta_fin, bulk.m2, bulk.lam)


def generate_response(h: MetricFn, samples: int, bulk: Bulk = Bulk(), label: str = "response",
                      eps: float = 0.1, phi_range=PHI_BOX, pi_range=PI_BOX, seed: int = 0,
                      substeps: int = 2000, noise: float = 0.0, phi_h_range=(0.0, 2.0)) -> dict[str, torch.Tensor]:
    """Boundary data x = (φ, π) at η_ini and labels from the bulk metric ``h`` (float64).

    Returns ``{"x": [S, 2], "y": [S], "F": [S]}``. ``label="response"``: y = sinh(asinh F + noise·ξ),
    ξ ~ N(0, 1) (relative noise for |F| ≫ 1, absolute near 0; ``F`` stays noise-free); samples whose
    solve overflows are dropped. ``label="horizon"``: :func:`horizon_samples`."""
    if label == "horizon":
        return horizon_samples(h, samples, bulk, eps, phi_range, pi_range, seed, substeps, phi_h_range)
    if label != "response":
        raise ValueError(f"label must be 'response' or 'horizon', got {label!r}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number ≥ 0, got {noise!r}")
    g = torch.Generator().manual_seed(seed)
    x = _draw_box(g, samples, phi_range, pi_range)
    F = inward_residual(h, x, bulk, substeps)
    ok = torch.isfinite(F)
    x, F = x[ok], F[ok]
    if len(F) == 0:
        raise AdSDataError("every boundary sample overflowed on the way to the horizon; check the metric")
    y = torch.sinh(torch.asinh(F) + noise * torch.randn(len(F), generator=g, dtype=torch.float64)) if noise else F
    return {"x": x, "y": y, "F": F}


def horizon_samples(h: MetricFn, samples: int, bulk: Bulk = Bulk(), eps: float = 0.1, phi_range=PHI_BOX,
                    pi_range=PI_BOX, seed: int = 0, substeps: int = 2000,
                    phi_h_range=(0.0, 2.0), max_rounds: int = 50) -> dict[str, torch.Tensor]:
    """The paper's classification data, balanced: ``samples // 2`` regular (y = 0; made by integrating
    outward from the horizon side, module docstring) and as many irregular (y = 1; box draws with
    |F| ≥ ε). ``phi_h_range``: where the horizon values φ_h are drawn. Raises :class:`AdSDataError` if
    ``max_rounds`` rounds of draws do not fill a class (the band misses the box)."""
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    g = torch.Generator().manual_seed(seed)
    need = samples // 2
    if need < 1:
        raise ValueError(f"the horizon mode needs at least 2 samples, got {samples}")
    out = Bulk(bulk.m2, bulk.lam, eta_ini=bulk.eta_fin, eta_fin=bulk.eta_ini)
    pos, neg = [], []
    n_pos = n_neg = 0
    for _ in range(max_rounds):
        batch = max(2 * need, 256)
        if n_pos < need:
            u = torch.rand(batch, 2, generator=g, dtype=torch.float64)
            phi_h = phi_h_range[0] + (phi_h_range[1] - phi_h_range[0]) * u[:, 0]
            F_h = eps * (2 * u[:, 1] - 1)
            pi_h = regular_momentum(phi_h, bulk.eta_fin, bulk.m2, bulk.lam, F_h)
            phi_b, pi_b = integrate_true(h, phi_h, pi_h, out, substeps)
            inside = ((phi_b >= phi_range[0]) & (phi_b <= phi_range[1]) & (pi_b >= pi_range[0])
                      & (pi_b <= pi_range[1]) & torch.isfinite(phi_b) & torch.isfinite(pi_b))
            xb = torch.stack([phi_b, pi_b], 1)[inside]
            pos.append(xb)
            n_pos += len(xb)
        if n_neg < need:
            xb = _draw_box(g, batch, phi_range, pi_range)
            F = inward_residual(h, xb, bulk, substeps)
            keep = torch.isfinite(F) & (F.abs() >= eps)
            neg.append(xb[keep])
            n_neg += int(keep.sum())
        if n_pos >= need and n_neg >= need:
            break
    if n_pos < need or n_neg < need:
        raise AdSDataError(f"found {n_pos} regular and {n_neg} irregular boundary samples for {need} each; "
                           "the regular band misses the box — widen phi_h_range or the box")
    x = torch.cat([torch.cat(pos)[:need], torch.cat(neg)[:need]])
    y = torch.cat([torch.zeros(need, dtype=torch.float64), torch.ones(need, dtype=torch.float64)])
    F = inward_residual(h, x, bulk, substeps)
    perm = torch.randperm(len(x), generator=g)
    return {"x": x[perm], "y": y[perm], "F": F[perm]}


def split(data: dict[str, torch.Tensor], fractions=(0.8, 0.2), seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Random disjoint parts of a data dict (e.g. train / validation), sizes by ``fractions``."""
    n = len(data["x"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    bounds = [round(n * sum(fractions[:i])) for i in range(len(fractions) + 1)]
    return [{k: v[perm[a:b]] for k, v in data.items()} for a, b in zip(bounds[:-1], bounds[1:])]
