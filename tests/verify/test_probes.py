"""The probes can fail: each one separates a structured map from an unstructured one."""

import torch

from bkdsl.verify import probes


def test_unitary_probe():
    Q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    assert probes.probe_unitary(lambda x: x @ Q.T, 8, inverse=lambda y: y @ Q).ok
    r = probes.probe_unitary(lambda x: 1.01 * x, 8)
    assert not r.ok and abs(r.value - 0.01) < 1e-12 and "tolerance 1e-10" in r.detail


def test_isometric_not_onto():
    E = torch.eye(8, 4, dtype=torch.float64)  # ℝ⁴ → ℝ⁸ embedding
    assert probes.probe_isometric(lambda x: x @ E.T, 4).ok


def test_contractive_probe():
    assert probes.probe_contractive(lambda x: 0.5 * x, 6).ok
    assert not probes.probe_contractive(lambda x: torch.cat([1.5 * x[:, :1], x[:, 1:]], 1), 6).ok


def test_symplectic_probe():
    def shear(x):
        q, p = x.chunk(2, -1)
        p = p - 0.3 * torch.sin(q)
        return torch.cat([q + 0.3 * p, p], -1)

    assert probes.probe_symplectic(shear, 2).ok
    assert not probes.probe_symplectic(lambda x: 0.9 * x, 2).ok
    assert probes.omega(1).tolist() == [[0.0, 1.0], [-1.0, 0.0]]


def test_reversible_and_commutative_probes():
    assert probes.probe_reversible(lambda x: 2 * x + 1, lambda y: (y - 1) / 2, 5).ok
    assert not probes.probe_reversible(lambda x: x.tanh(), lambda y: y, 5).ok
    assert probes.probe_commutative(lambda x, y: x * y, 5).ok
    assert not probes.probe_commutative(lambda x, y: x - y, 5).ok


def test_nan_fails():
    assert not probes.probe_isometric(lambda x: x * float("nan"), 3).ok
