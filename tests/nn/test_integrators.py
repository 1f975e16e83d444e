"""Integrators: order, symplecticity (probe), exact inverses, reversible backprop, source 000 §4."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from bkdsl.nn.hamiltonians import (MLPHamiltonian, MLPPotential, PendulumPotential, ProductHamiltonian,
                                   QuadraticKinetic, SeparableHamiltonian, pendulum_energy)
from bkdsl.nn.integrators import (INVERTIBLE, METHODS, ORDER, SYMPLECTIC, Integrator, augment_time_reversal,
                                  bidirectional_consistency, time_reverse)
from bkdsl.verify.probes import probe_symplectic



@pytest.fixture(autouse=True)
def _float64():
    """Every test here runs in float64; restored afterwards so other modules keep their default."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def pend():
    return SeparableHamiltonian(QuadraticKinetic(1.0), PendulumPotential(1.0))


@pytest.mark.parametrize("method", METHODS)
def test_convergence_order(method):
    """Global error at t = 1 shrinks like dt^order (halving dt)."""
    H = pend()
    q0, p0 = torch.tensor([[1.0]]), torch.tensor([[0.3]])
    ref = Integrator(H, "yoshida4", 1e-3, 1000)(q0, p0)
    errs = []
    for n in (20, 40):
        q, p = Integrator(H, method, 1.0 / n, n)(q0, p0)
        errs.append(float((q - ref[0]).abs() + (p - ref[1]).abs()))
    rate = torch.log2(torch.tensor(errs[0] / errs[1]))
    assert abs(float(rate) - ORDER[method]) < 0.35, (method, errs, rate)


@pytest.mark.parametrize("method", METHODS)
def test_symplectic_probe_separates_methods(method):
    I = Integrator(pend(), method, 0.2, 3)
    r = probe_symplectic(I, 2)
    assert r.ok == (method in SYMPLECTIC), r.detail


def test_implicit_midpoint_symplectic_for_nonseparable_h_rk4_not():
    H = ProductHamiltonian(1)
    assert probe_symplectic(Integrator(H, "implicit_midpoint", 0.1, 3), 2).ok
    assert not probe_symplectic(Integrator(H, "rk4", 0.1, 3), 2).ok
    with pytest.raises(ValueError):
        Integrator(H, "leapfrog", 0.1)


@settings(max_examples=25, deadline=None)
@given(method=st.sampled_from(sorted(INVERTIBLE)), q=st.floats(-3, 3), p=st.floats(-2, 2),
       dt=st.floats(0.01, 0.3))
def test_exact_inverse_round_trip(method, q, p, dt):
    I = Integrator(pend(), method, dt, 10)
    q0, p0 = torch.tensor([[q]]), torch.tensor([[p]])
    back = I.backward_flow(*I(q0, p0))
    assert abs(float(back[0] - q0)) < 1e-11 and abs(float(back[1] - p0)) < 1e-11


def test_leapfrog_energy_bounded_rk4_drifts():
    H = pend()
    q, p = torch.tensor([[2.0]]), torch.tensor([[0.0]])
    e0 = float(pendulum_energy(q, p))
    out = {}
    for m in ("leapfrog", "rk4"):
        qs, ps = Integrator(H, m, 0.5, 1).trajectory(q, p, 4000)
        err = (pendulum_energy(qs, ps) - e0).abs().squeeze()
        out[m] = (float(err[:400].max()), float(err[-400:].max()))
    lf, rk = out["leapfrog"], out["rk4"]
    assert lf[1] < 1.5 * lf[0] < 0.2, out  # bounded: no growth
    assert rk[1] > 5 * rk[0], out  # drift: grows with time


@pytest.mark.parametrize("method", ["leapfrog", "yoshida4", "symplectic_euler", "implicit_midpoint"])
def test_reversible_gradients_equal_autograd(method):
    torch.manual_seed(0)
    H = SeparableHamiltonian(QuadraticKinetic(1.0), MLPPotential(2, 16, 2), dim=2)
    q0 = torch.randn(4, 2, requires_grad=True)
    p0 = torch.randn(4, 2, requires_grad=True)
    grads = []
    for rev in (False, True):
        q, p = Integrator(H, method, 0.05, 60, reversible=rev)(q0, p0)
        loss = (q ** 2).sum() + (p * torch.sin(p)).sum()
        grads.append(torch.autograd.grad(loss, [q0, p0, *H.parameters()], allow_unused=True,
                                         materialize_grads=True))
    for a, b in zip(*grads):
        assert (a - b).abs().max() <= 1e-6 * max(1.0, float(b.abs().max()))


def test_reversible_refused_without_inverse():
    with pytest.raises(ValueError):
        Integrator(pend(), "rk4", 0.1, 5, reversible=True)


def live_saved_bytes(fn):
    """Bytes of tensors that autograd keeps for backward after ``fn()`` returns (the stored graph)."""
    import gc
    import weakref

    class Box:
        __slots__ = ("t", "__weakref__")

    refs = []

    def pack(t):
        b = Box()
        b.t = t
        refs.append(weakref.ref(b))
        return b

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda b: b.t):
        out = fn()
    gc.collect()
    n = sum(r().t.numel() * r().t.element_size() for r in refs if r() is not None)
    del out
    return n


def test_reversible_stores_no_trajectory():
    """The graph kept for backward does not grow with the number of steps in reversible mode."""
    H = SeparableHamiltonian(QuadraticKinetic(1.0), MLPPotential(2, 16, 2), dim=2)
    q0 = torch.randn(8, 2, requires_grad=True)

    def kept(steps, rev):
        return live_saved_bytes(lambda: Integrator(H, "leapfrog", 0.05, steps, reversible=rev)(q0, torch.zeros_like(q0)))

    assert kept(200, True) == kept(20, True)
    assert kept(200, False) > 5 * kept(20, False)


def test_general_neural_h_with_implicit_midpoint():
    torch.manual_seed(0)
    I = Integrator(MLPHamiltonian(1, 16, 2), "implicit_midpoint", 0.05, 3)
    assert probe_symplectic(I, 2).ok


def test_time_reversal_is_a_trajectory():
    H = pend()
    I = Integrator(H, "leapfrog", 0.1, 1)
    qs, ps = I.trajectory(torch.tensor([[1.0]]), torch.tensor([[0.2]]), 30)  # [31, 1, 1]
    qr, pr = time_reverse(qs, ps, time_dim=0)
    # stepping the reversed state forward follows the reversed trajectory
    q1, p1 = I(qr[0], pr[0])
    assert torch.allclose(q1, qr[1], atol=1e-12) and torch.allclose(p1, pr[1], atol=1e-12)
    qa, pa = augment_time_reversal(qs.transpose(0, 1), ps.transpose(0, 1))
    assert qa.shape[0] == 2


def test_bidirectional_consistency_euclidean_and_hyperbolic():
    import geoopt

    H = pend()
    I = Integrator(H, "leapfrog", 0.1, 10)
    x = torch.tensor([[0.3], [0.1]])
    fwd = I(x[:1], x[1:])
    back = I.backward_flow(*fwd)
    assert float(bidirectional_consistency(torch.cat(back, -1), x.T)) < 1e-12
    rk = Integrator(H, "rk4", 0.1, 10)
    from bkdsl.nn.integrators import rk4_step

    qb, pb = rk(x[:1], x[1:])
    for _ in range(10):
        qb, pb = rk4_step(H, qb, pb, -0.1)
    assert float(bidirectional_consistency(torch.cat([qb, pb], -1), x.T)) > 1e-9
    ball = geoopt.PoincareBall(c=1.0)
    u = ball.projx(torch.tensor([[0.5, 0.1]]))
    v = ball.projx(torch.tensor([[0.45, 0.12]]))
    assert abs(float(bidirectional_consistency(u, v, ball_c=1.0)) - float(ball.dist(u, v))) < 1e-12
