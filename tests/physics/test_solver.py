import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.physics.grid import AxialGrid
from bkdsl.physics.solver import densities_in_potential

GRID = (19, 38, 0.5)


def _well(g):
    return -2.0 * torch.exp(-(g.R**2 + (g.Z - 1.0) ** 2) / 8.0)


def test_hellmann_feynman_and_particle_numbers():
    """dE_min/d lambda = \\int v rho for E(lambda) = min_rho E_EDF + E_CoM + lambda \\int v rho.
    Central finite difference with d lambda = 0.01; stated tolerance: relative 1e-6."""
    g = AxialGrid(GRID)
    v = _well(g)
    lam = torch.tensor([0.99, 1.0, 1.01], dtype=torch.float64)
    r = densities_in_potential("O16", lam[:, None, None] * v, grid=GRID, tol_res=1e-6, tol_de=1e-9,
                               max_iter=3000)
    E = r.energies["total"]
    fd = (E[2] - E[0]) / 0.02
    hf = r.energies["external"][1]           # \int v rho at lambda = 1
    assert fd.item() == pytest.approx(hf.item(), rel=1e-6)
    N = g.integrate(r.rho_q[:, 0])
    Z = g.integrate(r.rho_q[:, 1])
    assert torch.allclose(N, torch.full_like(N, 8.0), atol=1e-6)
    assert torch.allclose(Z, torch.full_like(Z, 8.0), atol=1e-6)
    assert (r.rho_q >= 0).all()


def test_nonfinite_potential_e0704():
    g = AxialGrid(GRID)
    v = _well(g)[None].repeat(2, 1, 1)
    v[1, 3, 5] = float("nan")
    with pytest.raises(BkError) as e:
        densities_in_potential("O16", v, grid=GRID)
    assert e.value.code == "E0704" and "not finite" in str(e.value)
    r = densities_in_potential("O16", v, grid=GRID, on_fail="keep")
    assert r.converged.tolist() == [True, False]


def test_too_few_iterations_e0704():
    g = AxialGrid(GRID)
    v = 30.0 * torch.sin(g.Z)[None] * torch.exp(-g.R**2 / 20)      # a violent potential
    with pytest.raises(BkError) as e:
        densities_in_potential("O16", v, grid=GRID, max_iter=5)
    assert e.value.code == "E0704" and e.value.diagnostic.help


def _mg24_problem():
    from bkdsl.physics.etf import SkyrmeETF
    from bkdsl.physics.nuclei import get_nucleus
    from bkdsl.physics.potentials import sho
    from bkdsl.physics.skyrme import get_functional
    from bkdsl.physics.solver import Variational

    g = AxialGrid((10, 20, 0.8))
    F = SkyrmeETF(get_functional("sly4"), get_nucleus("Mg24"), g, com_C=0.625)
    v, _ = sho(g, 3, torch.Generator().manual_seed(4))
    return F, Variational(F), v


@pytest.mark.parametrize("broken", [False, True])
def test_compiled_energy_is_used_only_if_it_agrees_with_eager(monkeypatch, broken):
    """solve(compile=True) runs the energy through torch.compile after a trial value-and-gradient
    agrees with eager; a compiler whose result differs (or that raises) is dropped with a warning,
    and the solution is the eager one either way."""
    from bkdsl.physics.solver import solve

    F, space, v = _mg24_problem()
    calls = {"n": 0}

    def fake_compile(fn, dynamic=None):
        def wrapped(c, vv):
            calls["n"] += 1
            e = fn(c, vv)
            return e + 1.0 if broken else e
        return wrapped

    ref = solve(F, v, space=space, max_iter=40, tol_res=1e-3, tol_de=1e-6)
    monkeypatch.setattr(torch, "compile", fake_compile)
    if broken:
        with pytest.warns(RuntimeWarning, match="torch.compile of the ETF energy failed"):
            res = solve(F, v, space=space, max_iter=40, tol_res=1e-3, tol_de=1e-6, compile=True)
        assert calls["n"] == 1                     # the trial only
    else:
        res = solve(F, v, space=space, max_iter=40, tol_res=1e-3, tol_de=1e-6, compile=True)
        assert calls["n"] > 10                     # every evaluation went through it
    assert torch.equal(res.iterations, ref.iterations)
    torch.testing.assert_close(res.energies["total"], ref.energies["total"], rtol=0, atol=1e-9)
