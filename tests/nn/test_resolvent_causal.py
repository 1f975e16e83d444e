"""The causal (retarded) resolvent diagonal against the dense float64 inverse of each leading block."""

import pytest
import torch

from bkdsl.nn.resolvent import (ResolventDiagCausal, resolvent_diag, resolvent_diag_causal_dense,
                                resolvent_diag_causal_reference, resolvent_diag_dense)


def _chain(batch, n, dtype=torch.float64, seed=0, disorder=2.0):
    g = torch.Generator().manual_seed(seed)
    a = disorder * torch.randn(batch, n, generator=g, dtype=dtype)
    b = 1.0 + 0.3 * torch.randn(batch, n - 1, generator=g, dtype=dtype)
    return a, b


@pytest.mark.parametrize("n", [1, 2, 3, 8, 31])
@pytest.mark.parametrize("z", [0.1j, 0.5 + 0.1j, (-1.3, 0.05)])
def test_causal_matches_dense_leading_blocks(n, z):
    a, b = _chain(4, n, seed=10 + n)
    g = resolvent_diag(a, b, z, causal=True)
    assert g.dtype == torch.complex128 and g.shape == (4, n)
    torch.testing.assert_close(g, resolvent_diag_causal_dense(a, b, z), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(resolvent_diag_causal_reference(a, b, z), g, rtol=0, atol=0)


def test_causal_differs_from_two_sided_except_at_the_last_site():
    """The last leading block is H itself, so only G_{N−1,N−1} coincides with the two-sided diagonal."""
    a, b = _chain(3, 16, seed=2)
    g_c, g = resolvent_diag(a, b, 0.1j, causal=True), resolvent_diag_dense(a, b, 0.1j)
    torch.testing.assert_close(g_c[:, -1], g[:, -1], rtol=1e-10, atol=1e-12)
    assert (g_c[:, :-1] - g[:, :-1]).abs().max() > 1e-3


def test_causal_float32_gives_complex64_close_to_dense():
    a, b = _chain(3, 40, dtype=torch.float32, seed=1)
    g = resolvent_diag(a, b, 0.2 + 0.1j, causal=True)
    assert g.dtype == torch.complex64
    ref = resolvent_diag_causal_dense(a, b, 0.2 + 0.1j)
    assert ((g.to(torch.complex128) - ref).abs().max() / ref.abs().max()) < 1e-5


@pytest.mark.parametrize("seed", range(4))
def test_causal_gradients_match_autograd_through_dense_blocks(seed):
    a, b = _chain(3, 12, seed=seed)
    a.requires_grad_(True)
    b.requires_grad_(True)
    z = complex(0.7 * seed - 1.0, 0.1 + 0.05 * seed)
    w = torch.randn(3, 12, dtype=torch.complex128, generator=torch.Generator().manual_seed(200 + seed))
    got = torch.autograd.grad(resolvent_diag(a, b, z, causal=True), (a, b), w)
    want = torch.autograd.grad(resolvent_diag_causal_dense(a, b, z), (a, b), w)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11)


def test_causal_gradcheck_adjoint_sweep():
    a, b = _chain(2, 6, seed=7)
    a.requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ResolventDiagCausal.apply(a, b, 0.3 + 0.2j), (a, b))
    g = resolvent_diag(a, b, 0.1j, causal=True)
    assert type(g.grad_fn).__name__ == "ResolventDiagCausalBackward"


@pytest.mark.parametrize("j", [0, 1, 7, 18, 19])
def test_causal_output_before_j_ignores_a_j_and_b_j(j):
    """Perturbing a_j (or the bond b_j to the right of j) moves no output at i < j (nor at j for b_j)."""
    a, b = _chain(2, 20, seed=j)
    g = resolvent_diag(a, b, 0.4 + 0.1j, causal=True)
    a2 = a.clone()
    a2[:, j] += 1.7
    g2 = resolvent_diag(a2, b, 0.4 + 0.1j, causal=True)
    assert torch.equal(g2[:, :j], g[:, :j])
    assert (g2[:, j] - g[:, j]).abs().min() > 1e-6  # and the perturbation does reach site j
    if j < 19:
        b2 = b.clone()
        b2[:, j] -= 0.5
        g3 = resolvent_diag(a, b2, 0.4 + 0.1j, causal=True)
        assert torch.equal(g3[:, : j + 1], g[:, : j + 1])
        assert (g3[:, j + 1] - g[:, j + 1]).abs().min() > 1e-6


def test_causal_gradient_is_lower_triangular():
    """∂G_i/∂a_j = 0 for j > i: the Jacobian of the causal diagonal w.r.t. a is lower triangular."""
    a, b = _chain(1, 9, seed=4)
    jac = torch.autograd.functional.jacobian(lambda x: resolvent_diag(x, b, 0.2j, causal=True).real, a)[0, :, 0]
    assert torch.count_nonzero(torch.triu(jac, diagonal=1)) == 0
    assert torch.count_nonzero(torch.diagonal(jac)) == 9


def test_causal_long_chain_float32_is_finite_and_bounded():
    """N = 65 536: |G⁽ⁱ⁾_ii| ≤ 1/Im z and Im G > 0 at every site; the gradients are finite."""
    a, b = _chain(2, 65_536, dtype=torch.float32, seed=3, disorder=3.0)
    a.requires_grad_(True)
    b.requires_grad_(True)
    g = resolvent_diag(a, b, 0.1j, causal=True)
    assert torch.isfinite(torch.view_as_real(g)).all()
    assert g.abs().max() <= 10.0 * (1 + 1e-5)
    assert (g.imag > 0).all()
    (g.real.sum() + 0.5 * g.imag.sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
