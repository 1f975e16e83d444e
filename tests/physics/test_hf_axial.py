"""Axial Kohn-Sham HF+BCS: stencils, the Hamiltonian as the derivative of the discrete energy, a coarse Mg24."""

import math

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.physics.cli import main
from bkdsl.physics.hf_axial import AxialLattice, AxialSkyrme, axial_hf_bcs, central, staggered
from bkdsl.physics.skyrme import SLY4


@pytest.mark.parametrize("order", [2, 4, 6, 8])
def test_stencils_are_exact_on_polynomials_of_their_order(order):
    n, h = 24, 0.5
    x = (torch.arange(n, dtype=torch.float64) - n / 2 + 0.5) * h       # centres, symmetric about 0
    xf = (torch.arange(n + 1, dtype=torch.float64) - n / 2) * h        # faces
    D, I = staggered(n, h, order, None)
    C = central(n, h, order, None)
    k = order // 2 + 1                                                  # interior rows only (walls cut stencils)
    for p in range(order + 1):
        f = x**p
        df = p * xf ** max(p - 1, 0) if p else torch.zeros_like(xf)
        assert torch.allclose((D @ f)[k:-k], df[k:-k], atol=1e-9 * (1 + df.abs().max()))
        if p < order:
            assert torch.allclose((I @ f)[k:-k], (xf**p)[k:-k], atol=1e-9 * (1 + (xf**p).abs().max()))
        dc = p * x ** max(p - 1, 0) if p else torch.zeros_like(x)
        assert torch.allclose((C @ f)[k:-k], dc[k:-k], atol=1e-9 * (1 + dc.abs().max()))


def test_axis_parity_folding():
    n, h = 12, 0.5
    r = (torch.arange(n, dtype=torch.float64) + 0.5) * h
    De, _ = staggered(n, h, 4, 1)
    Do, _ = staggered(n, h, 4, -1)
    assert abs(float((De @ (r**2))[0])) < 1e-12          # an even function has zero slope on the axis
    assert float((Do @ r)[0]) == pytest.approx(1.0)      # an odd one keeps its slope


def test_hamiltonian_is_the_derivative_of_the_discrete_energy():
    """eps_k = g_k^T h g_k must equal (1/2) dE/d(v_k^2) and Delta_k = -(1/2) dE/d(u_k v_k): the fields
    code and the Hamiltonian code are written separately, so this checks one against the other
    (including the spin-orbit cross terms and the axis parities)."""
    lat = AxialLattice(4, 8, 0.8, order=4)
    F = AxialSkyrme(SLY4, 24, lat, V0=-683.344, com_C=0.625)
    gen = torch.Generator().manual_seed(1)
    M = 4 * 8
    om2 = 3
    g = torch.linalg.qr(torch.randn(2 * M, 3, generator=gen, dtype=torch.float64))[0].T   # 3 orthonormal states
    vv = torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64)
    uv = torch.sqrt(vv * (1 - vv))

    gg = g.reshape(3, 2, 4, 8)
    other = F.fields(gg[:, 0] * lat.S, gg[:, 1] * lat.S, 0.7 * vv, 0.7 * uv, om2)   # the other species, fixed

    def fields_of(vv_, uv_):
        f = F.fields(gg[:, 0] * lat.S, gg[:, 1] * lat.S, vv_, uv_, om2)
        return {k: torch.stack([v, other[k]]) for k, v in f.items()}

    def energy(vv_, uv_):
        return F.energy(fields_of(vv_, uv_))["total"]

    Fr = {k: v.detach().clone().requires_grad_(True) for k, v in fields_of(vv, uv).items()}
    grads = torch.autograd.grad(F.energy(Fr)["total"], [Fr[k] for k in AxialSkyrme.FIELDS])
    G = dict(zip(AxialSkyrme.FIELDS, grads))
    h, K, _ = F.hamiltonian(G, 0, om2)
    for k in range(3):
        d = torch.zeros(3, dtype=torch.float64)
        d[k] = 1e-6
        dE_dv = float((energy(vv + d, uv) - energy(vv - d, uv)) / 2e-6)
        dE_duv = float((energy(vv, uv + d) - energy(vv, uv - d)) / 2e-6)
        assert float(g[k] @ h @ g[k]) == pytest.approx(0.5 * dE_dv, rel=1e-6, abs=1e-6)
        assert float(-0.5 * g[k] @ K @ g[k]) == pytest.approx(-0.5 * dE_duv, rel=1e-6, abs=1e-6)
    assert torch.allclose(h, h.T)


def test_coarse_mg24_converges_with_pairing():
    """A coarse stand-in for the thesis run (CI budget): 24Mg, no Coulomb, 6 x 12 cells of 1.2 fm."""
    r = axial_hf_bcs("Mg24", grid=(6, 12, 1.2), order=4, omega_max2=5, mix=0.3, tol_e=1e-5, tol_rho=1e-6, max_iter=100)
    assert r.converged and 150 < r.binding_energy < 300
    assert r.components["pairing"] < 0 and min(r.pairing_gap) > 0.1
    assert abs(r.fermi[0] - r.fermi[1]) < 1e-6             # N = Z and no Coulomb: isospin symmetric
    assert abs(r.Q20) < 0.1 and r.iterations < 60        # Broyden: ~30 iterations


def test_refusals():
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=(6, 13, 1.2))
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=(6, 12, 1.2), order=3)
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", coulomb=True)
    assert e.value.code == "E0201"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=(6, 12, 1.2), max_iter=2)
    assert e.value.code == "E0704"


def test_cli_hf_bcs_wiring(capsys):
    assert main(["ground-state", "Mg24", "--method", "hf-bcs", "--grid", "6,13,1.2", "--json"]) == 1
    assert '"E0703"' in capsys.readouterr().out
    assert main(["ground-state", "Mg24", "--method", "hf-bcs", "--grid", "6;12"]) == 1
    assert "E0206" in capsys.readouterr().err
