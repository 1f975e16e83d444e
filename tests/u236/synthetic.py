"""Synthetic stand-in data with the *shapes and units* of ``nuclear_densities`` (tests only).

Not physics: Fermi-shaped blobs on the 48 × 128 axial grid (0.4 fm) with random elongation and
octupole-like shift, an "energy" that is a smooth function of them, and the Q20 / Q30 moments of the
blob. Used to exercise the runner (parity metrics, plots, speed keys) without the physics generator;
never for a reported number.
"""

from __future__ import annotations

import math

import torch

from bkdsl.train.data import Dataset, FieldInfo

NR, NZ, H = 48, 128, 0.4


def make(n: int = 64, seed: int = 0, nr: int = NR, nz: int = NZ) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    r = (torch.arange(nr, dtype=torch.float64) + 0.5) * H
    z = (torch.arange(nz, dtype=torch.float64) - nz / 2 + 0.5) * H
    R, Z = torch.meshgrid(r, z, indexing="ij")
    b2 = torch.rand(n, generator=g, dtype=torch.float64) * 0.4            # elongation
    b3 = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 0.4    # pear shape (odd in z)
    R0 = 7.4
    x = R[None] ** 2 / (1 - b2[:, None, None] / 2) ** 2 + (Z[None] - b3[:, None, None] * Z[None] ** 2 / R0) ** 2 / (1 + b2[:, None, None]) ** 2
    rho = 0.16 / (1 + torch.exp((x.sqrt() - R0) / 0.55))
    dV = 2 * math.pi * R * H * H
    Y20 = math.sqrt(5 / (16 * math.pi)) * (2 * Z ** 2 - R ** 2)
    Y30 = math.sqrt(7 / (16 * math.pi)) * Z * (2 * Z ** 2 - 3 * R ** 2)
    Q20 = (rho * Y20 * dV).sum((-2, -1))
    Q30 = (rho * Y30 * dV).sum((-2, -1))
    E = -1780.0 + 20 * (b2 - 0.2) ** 2 + 30 * b3 ** 2
    fields = {"rho": rho[:, None].float(), "E": E[:, None].float(), "Q20": Q20[:, None].float(), "Q30": Q30[:, None].float()}
    info = {"rho": FieldInfo("rho", shape=(1, nr, nz), unit="fm^-3", axes=("c", "r", "z")),
            "E": FieldInfo("E", shape=(1,), unit="MeV"), "Q20": FieldInfo("Q20", shape=(1,), unit="fm^2"),
            "Q30": FieldInfo("Q30", shape=(1,), unit="fm^3", odd_under=("z",))}
    return Dataset(fields, info, meta={"source": "synthetic (tests)"})
