import math

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.physics.grid import AxialGrid, GridSpec, SpectralBasis, check_grid
from bkdsl.physics.nuclei import get_nucleus


def test_half_step_lattice():
    g = AxialGrid((10, 20, 0.8))                     # thesis ch. 3 grid
    assert g.r[0].item() == pytest.approx(0.4) and g.r[-1].item() == pytest.approx(7.6)
    assert g.z[0].item() == pytest.approx(-7.6) and g.z[-1].item() == pytest.approx(7.6)


def test_measure_gaussian():
    g = AxialGrid((40, 80, 0.25))
    f = torch.exp(-(g.R**2 + g.Z**2) / 2.0)
    assert g.integrate(f).item() == pytest.approx((2 * math.pi) ** 1.5, rel=4e-3)   # midpoint rule, O(h^2)


def test_too_small():
    with pytest.raises(BkError) as e:
        check_grid(GridSpec(12, 24, 0.5), get_nucleus("Pb208"))
    assert e.value.code == "E0703" and "nr =" in e.value.diagnostic.help
    check_grid(GridSpec(48, 128, 0.4), get_nucleus("U236"))


def test_spectral_basis_orthonormal():
    g = AxialGrid((16, 32, 0.5))
    b = SpectralBasis(g, 2.5)
    c = torch.randn(3, *b.shape, dtype=torch.float64) * b.mask
    psi = b.to_grid(c)
    assert g.integrate(psi**2) == pytest.approx((c**2).sum(dim=(-2, -1)), rel=1e-10)
    assert torch.allclose(b.from_grid(psi), c, atol=1e-10)
