import math

import pytest
import torch

from bkdsl.physics.grid import AxialGrid
from bkdsl.physics.multipoles import multipoles, to_barn_units


def test_deformed_gaussian():
    g = AxialGrid((40, 120, 0.25))
    a, c = 2.0, 3.0                                   # sigma_r, sigma_z (fm)
    rho = torch.exp(-g.R**2 / (2 * a * a) - (g.Z - 0.0) ** 2 / (2 * c * c))
    rho = 100 * rho / g.integrate(rho)
    Q = multipoles(rho, g, 3)
    # <2 z^2 - r^2> = 2 c^2 - 2 a^2 for this Gaussian; Q20 = sqrt(5/16 pi) A <2z^2 - r^2>
    assert Q[0].item() == pytest.approx(100 / math.sqrt(4 * math.pi), rel=1e-6)
    assert Q[2].item() == pytest.approx(math.sqrt(5 / (16 * math.pi)) * 100 * (2 * c * c - 2 * a * a), rel=2e-3)
    assert abs(Q[3].item()) < 1e-8
    assert to_barn_units(Q)[2].item() == pytest.approx(Q[2].item() / 100)


def test_parity_flips_q30():
    g = AxialGrid((20, 60, 0.3))
    rho = torch.exp(-(g.R**2 + (g.Z - 1) ** 2) / 4) * (1 + 0.3 * torch.tanh(g.Z))
    Q = multipoles(rho, g, 3)
    Qf = multipoles(rho.flip(-1), g, 3)
    assert Qf[3].item() == pytest.approx(-Q[3].item(), rel=1e-10)
    assert Qf[2].item() == pytest.approx(Q[2].item(), rel=1e-10)
