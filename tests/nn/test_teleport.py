"""Gradient teleportation: the Dyson propagator of the layer chain, and the hooks against plain backprop."""

import math

import pytest
import torch

from bkdsl.nn.teleport import GradientTeleport, born_series, chain_hamiltonian, decay_length, dyson_green, free_energy


class Dense(torch.nn.Module):
    def __init__(self, w: int, gain: float = 1.0):
        super().__init__()
        self.lin = torch.nn.Linear(w, w)
        with torch.no_grad():
            self.lin.weight.mul_(gain)

    def forward(self, x):
        return torch.tanh(self.lin(x))


def _stack(depth=12, w=6, seed=0, gain=1.0):
    torch.manual_seed(seed)
    return torch.nn.ModuleList([Dense(w, gain) for _ in range(depth)])


def _grads(layers, x, tele=None):
    for p in layers.parameters():
        p.grad = None
    if tele is not None:
        tele.attach(list(layers))
    h = x
    for m in layers:
        h = m(h)
    (h ** 2).sum().backward()
    if tele is not None:
        tele.detach()
    return [p.grad.clone() for p in layers.parameters()]


def test_dyson_equation_holds_for_the_solved_propagator():
    n, m = 10, 0.7
    sigma = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * m * m / 2
    g0, g = dyson_green(n, m), dyson_green(n, m, sigma)
    s = torch.diag(-sigma)
    assert torch.allclose(g, g0 + g0 @ s @ g, atol=1e-12)           # G = G₀ + G₀ΣG
    # the truncated Born series converges to it
    errs = [float((born_series(n, m, sigma, k) - g).abs().max()) for k in (0, 2, 8, 30)]
    assert errs[-1] < 1e-9 and errs[0] > errs[1] > errs[2] > errs[3]


def test_free_propagator_is_sign_definite_and_decays_with_the_mass():
    n = 200
    for m in (0.3, 1.0):
        g = -dyson_green(n, m)
        assert bool((g >= 0).all())
        # in the bulk of the chain |G(l, k)| ∝ e^{−|l−k|/ξ}
        ratio = float(g[100, 105] / g[100, 104])  # far from the open ends
        assert ratio == pytest.approx(math.exp(-1 / decay_length(m)), rel=1e-6)
    assert free_energy(0.5) == -2.25
    assert torch.equal(chain_hamiltonian(3), torch.tensor([[0., -1, 0], [-1, 0, -1], [0, -1, 0]], dtype=torch.float64))


def test_strength_zero_is_plain_backprop_exactly():
    layers = _stack()
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2))
    plain = _grads(layers, x)
    tele = _grads(layers, x, GradientTeleport(0.0, mass=0.5))
    assert all(torch.equal(a, b) for a, b in zip(plain, tele))


def test_teleported_term_matches_the_formula():
    # layers whose Jacobian is zero (weight 0): the chain delivers nothing below the top layer, so the
    # bias gradient of layer l is exactly λ Σ_{k>l} (−G(l,k)) δ_k^chain with only δ_top non-zero
    depth, w, lam, m = 6, 4, 0.3, 0.8
    layers = torch.nn.ModuleList([torch.nn.Linear(w, w) for _ in range(depth)])
    with torch.no_grad():
        for lin in layers:
            lin.weight.zero_()
            lin.bias.normal_()
    x = torch.randn(3, w, generator=torch.Generator().manual_seed(3))
    tele = GradientTeleport(lam, mass=m, adaptive=False).attach(list(layers))
    h = x
    for lin in layers:
        h = lin(h)
    (h * torch.arange(1.0, w + 1)).sum().backward()
    top = torch.arange(1.0, w + 1) * 3  # δ of the last output summed over the batch of 3
    g = -dyson_green(depth, m)
    assert torch.allclose(layers[-1].bias.grad, top)
    # layer depth-2 receives λ(−G) δ_top; lower layers additionally the chain-zero … only δ^chain terms count
    for l in range(depth - 1):
        expect = lam * float(g[l, depth - 1]) * top
        assert torch.allclose(layers[l].bias.grad, expect.float(), atol=1e-6), l
    tele.detach()


def test_teleport_lifts_vanishing_gradients_of_a_deep_plain_stack():
    layers = _stack(depth=40, w=8, gain=0.5)      # a damping stack: the chain gradient shrinks geometrically
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(4))
    plain = _grads(layers, x)
    tele = _grads(layers, x, GradientTeleport(0.5, mass=0.5))
    first_plain, first_tele = float(plain[0].norm()), float(tele[0].norm())
    assert first_plain < 1e-6 * float(plain[-2].norm())
    assert first_tele > 1e3 * first_plain


def test_adaptive_self_energy_is_measured_and_capped():
    layers = _stack(depth=10, w=6, gain=0.5)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(5))
    t = GradientTeleport(0.2, mass=0.6)
    _grads(layers, x, t)
    assert t.sigma is not None and t.sigma.shape == (10,)
    assert bool((t.sigma >= 0).all()) and bool((t.sigma <= 0.18 + 1e-12).all()) and float(t.sigma.max()) > 0


def test_a_layer_that_did_not_run_is_refused():
    layers = _stack(depth=4)
    t = GradientTeleport(0.3).attach(list(layers))
    h = torch.randn(2, 6)
    for m in list(layers)[:3]:      # the last layer is skipped
        h = m(h)
    with pytest.raises(ValueError, match="3 of the 4 layers"):
        h.sum().backward()
    t.detach()


@pytest.mark.parametrize("bad", [dict(strength=-1.0), dict(strength=float("nan")), dict(strength=0.1, mass=0.0)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        GradientTeleport(**bad)
