import math

import torch

from bkdsl.physics.constants import E2_MEV_FM
from bkdsl.physics.coulomb import Coulomb, uniform_sphere_potential
from bkdsl.physics.grid import AxialGrid


def _sphere(g, Z, R, n=8):
    frac = torch.zeros(g.shape, dtype=torch.float64)
    for a in range(n):
        for b in range(n):
            rr = g.R + ((a + 0.5) / n - 0.5) * g.h
            zz = g.Z + ((b + 0.5) / n - 0.5) * g.h
            frac += ((rr**2 + zz**2) < R**2).double() * rr / g.R
    rho = frac / (n * n)
    return rho * Z / g.integrate(rho)


def test_uniform_sphere():
    g = AxialGrid((48, 128, 0.4))
    Z, R = 92.0, 7.4
    rho = _sphere(g, Z, R)
    V = Coulomb(g).potential(rho[None])[0]
    Va = uniform_sphere_potential(g, Z, R)
    assert ((V - Va).abs().max() / Va.max()).item() < 2e-3
    E = 0.5 * g.integrate(rho * V).item()
    assert abs(E / (0.6 * Z * Z * E2_MEV_FM / R) - 1) < 2e-3


def test_gaussian_charge_and_batch():
    g = AxialGrid((30, 80, 0.4))
    s = 1.5
    rho = torch.exp(-(g.R**2 + g.Z**2) / (2 * s * s))
    rho = rho / g.integrate(rho)
    V = Coulomb(g).potential(torch.stack([rho, 2 * rho]))
    x = torch.sqrt(g.R**2 + g.Z**2)
    Va = E2_MEV_FM * torch.erf(x / (math.sqrt(2) * s)) / x
    assert ((V[0] - Va).abs().max() / Va.max()).item() < 3e-3   # point-sampled Gaussian vs cell averages
    assert torch.allclose(V[1], 2 * V[0])
