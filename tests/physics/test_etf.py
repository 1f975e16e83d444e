import pytest
import torch

from bkdsl.physics.etf import SkyrmeETF
from bkdsl.physics.grid import AxialGrid
from bkdsl.physics.nuclei import get_nucleus
from bkdsl.physics.skyrme import get_functional
from bkdsl.physics.solver import Variational, fermi_psi


def _setup():
    g = AxialGrid((19, 38, 0.5))
    F = SkyrmeETF(get_functional("sly4"), get_nucleus("O16"), g, com_C=1.0)
    return g, F, Variational(F, 2.5)


def test_scale_invariance_and_numbers():
    g, F, sp = _setup()
    c = sp.coefficients(fermi_psi(F))
    e1 = F.energy(sp.psi(c))["total"]
    e2 = F.energy(sp.psi(3.7 * c))["total"]
    assert torch.allclose(e1, e2, rtol=1e-13)
    rho_q = sp.psi(c) ** 2
    assert torch.allclose(g.integrate(rho_q[0]), torch.tensor([8.0, 8.0], dtype=torch.float64), atol=1e-10)


def test_autograd_matches_finite_difference():
    g, F, sp = _setup()
    c = sp.coefficients(fermi_psi(F)).requires_grad_(True)
    v = -torch.exp(-(g.R**2 + (g.Z - 1) ** 2) / 6)[None]
    e = F.energy(sp.psi(c), v)["total"].sum()
    (gr,) = torch.autograd.grad(e, c)
    d = torch.randn_like(c) * sp.basis.mask
    h = 1e-5
    with torch.no_grad():
        fd = (F.energy(sp.psi(c + h * d), v)["total"] - F.energy(sp.psi(c - h * d), v)["total"]) / (2 * h)
    assert fd.item() == pytest.approx((gr * d).sum().item(), rel=1e-6)


def test_float32_work_precision_accumulates_in_float64():
    g32 = AxialGrid((19, 38, 0.5), dtype=torch.float32)
    F32 = SkyrmeETF(get_functional("sly4"), get_nucleus("O16"), g32)
    sp32 = Variational(F32, 2.5)
    g, F, sp = _setup()
    c = sp.coefficients(fermi_psi(F))
    e64 = F.energy(sp.psi(c))["edf"]
    e32 = F32.energy(sp32.psi(c.float()))["edf"]
    assert e32.dtype == torch.float64 and abs(e32.item() - e64.item()) < 1e-3
