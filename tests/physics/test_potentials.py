import math

import torch

from bkdsl.physics.grid import AxialGrid
from bkdsl.physics.potentials import (hermite_functions, ho_quantum_numbers, laguerre_functions,
                                      random_ho, rnd, sho)


def test_ho_basis_orthonormal():
    z = torch.linspace(-40, 40, 8001, dtype=torch.float64)
    H = hermite_functions(z / 2.3, 30) / math.sqrt(2.3)
    assert torch.allclose((H @ H.T) * (z[1] - z[0]), torch.eye(31, dtype=torch.float64), atol=1e-9)
    r = torch.linspace(1e-8, 40, 40001, dtype=torch.float64)
    pairs = [(n, 3) for n in range(12)]
    L = laguerre_functions((r / 2.1) ** 2, pairs) / 2.1
    M = (L * r * (r[1] - r[0])) @ L.T            # \int phi phi r dr = delta (thesis eq. 4.4)
    assert torch.allclose(M, torch.eye(12, dtype=torch.float64), atol=1e-6)


def test_random_ho_deterministic():
    g = AxialGrid((24, 64, 0.4))
    qn = ho_quantum_numbers()
    assert all(nz / 1.1736 + 2 * nr + lam <= 26 + 1e-9 for nz, nr, lam in qn)
    v1, p1 = random_ho(g, 3, torch.Generator().manual_seed(5))
    v2, _ = random_ho(g, 3, torch.Generator().manual_seed(5))
    assert v1.shape == (3, 24, 64) and torch.equal(v1, v2) and torch.isfinite(v1).all()
    assert set(p1["v0"].tolist()) <= {0.6, 1.2, 1.8, 2.4}
    assert ((p1["b_z"] >= 2.08) & (p1["b_z"] <= 1.5 * 2.08)).all()


def test_sho_and_rnd():
    g = AxialGrid((10, 20, 0.8))
    v, p = sho(g, 4, torch.Generator().manual_seed(0))
    assert (v >= 0).all() and ((p["k_r"] >= 0) & (p["k_r"] <= 1.1)).all()
    v, _ = rnd(g, 2, torch.Generator().manual_seed(0), A=24)
    assert v.shape == (2, 10, 20) and torch.isfinite(v).all()
    # the mask kills the field far outside r0 = 1.4 * 1.2 * 24^(1/3) = 4.84 fm
    far = torch.sqrt(g.R**2 + g.Z**2) > 9.0
    assert v[:, far].abs().max() < 0.5 * v.abs().max()


def test_batched_random_ho_equals_per_sample_draws():
    """The data generator draws each sample's numbers from its own generator and evaluates the basis
    expansion batched: the potentials must equal the one-at-a-time ones exactly."""
    from bkdsl.physics.dataset import _potentials, _sample_generator
    from bkdsl.physics.potentials import make_potentials

    g = AxialGrid((12, 32, 0.8))
    v, v0 = _potentials("random_ho", g, 7, range(3, 9), 236, {"v0": (0.6, 2.4)})
    assert v.shape == (6, 12, 32)
    for j, i in enumerate(range(3, 9)):
        vi, pi = make_potentials("random_ho", g, 1, _sample_generator(7, i), A=236, v0=(0.6, 2.4))
        assert torch.allclose(vi[0], v[j], rtol=0, atol=1e-12) and pi["v0"].item() == v0[j]
    assert len(set(v0)) > 1 or len(v0) < 3
