"""The reference resolvent diagonal against the dense float64 inverse: values, gradients, stability."""

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.nn.resolvent import (ResolventDiag, resolvent_diag, resolvent_diag_dense,
                                resolvent_diag_reference)




def _chain(batch, n, dtype=torch.float64, seed=0, disorder=2.0):
    g = torch.Generator().manual_seed(seed)
    a = disorder * torch.randn(batch, n, generator=g, dtype=dtype)
    b = 1.0 + 0.3 * torch.randn(batch, n - 1, generator=g, dtype=dtype)
    return a, b


@pytest.mark.parametrize("n", [1, 2, 3, 8, 31])
@pytest.mark.parametrize("z", [0.1j, 0.5 + 0.1j, (-1.3, 0.05)])
def test_matches_dense_inverse(n, z):
    a, b = _chain(4, n, seed=n)
    g = resolvent_diag(a, b, z)
    assert g.dtype == torch.complex128 and g.shape == (4, n)
    torch.testing.assert_close(g, resolvent_diag_dense(a, b, z), rtol=1e-10, atol=1e-12)


def test_float32_gives_complex64_close_to_dense():
    a, b = _chain(3, 40, dtype=torch.float32, seed=1)
    g = resolvent_diag(a, b, 0.2 + 0.1j)
    assert g.dtype == torch.complex64
    ref = resolvent_diag_dense(a, b, 0.2 + 0.1j)
    assert ((g.to(torch.complex128) - ref).abs().max() / ref.abs().max()) < 1e-5


@pytest.mark.parametrize("seed", range(4))
def test_gradients_match_autograd_through_dense_inverse(seed):
    a, b = _chain(3, 12, seed=seed)
    a.requires_grad_(True)
    b.requires_grad_(True)
    z = complex(0.7 * seed - 1.0, 0.1 + 0.05 * seed)
    w = torch.randn(3, 12, dtype=torch.complex128, generator=torch.Generator().manual_seed(100 + seed))
    got = torch.autograd.grad(resolvent_diag(a, b, z), (a, b), w)
    want = torch.autograd.grad(resolvent_diag_dense(a, b, z), (a, b), w)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11)


def test_gradcheck_adjoint_sweeps():
    a, b = _chain(2, 6, seed=7)
    a.requires_grad_(True)
    b.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ResolventDiag.apply(a, b, 0.3 + 0.2j), (a, b))


def test_backward_is_not_autograd_through_the_loop():
    a, b = _chain(2, 5)
    a.requires_grad_(True)
    g = resolvent_diag(a, b, 0.1j)
    assert type(g.grad_fn).__name__ == "ResolventDiagBackward"


def test_long_chain_float32_is_finite():
    """N = 65 536 with random potentials: the determinant products would overflow; the ratios don't."""
    a, b = _chain(2, 65_536, dtype=torch.float32, seed=3, disorder=3.0)
    a.requires_grad_(True)
    b.requires_grad_(True)
    g = resolvent_diag(a, b, 0.1j)
    assert torch.isfinite(torch.view_as_real(g)).all()
    # |G_ii| ≤ 1/Im z and Im G_ii > 0 (the local density of states is non-negative)
    assert g.abs().max() <= 10.0 * (1 + 1e-5)
    assert (g.imag > 0).all()
    (g.real.sum() + 0.5 * g.imag.sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_long_chain_sum_rule():
    """Σ_i G_ii = tr (H − zI)⁻¹: compare a slice of a long chain's diagonal with the dense oracle."""
    a, b = _chain(1, 400, seed=5)
    torch.testing.assert_close(resolvent_diag_reference(a, b, 0.3j), resolvent_diag_dense(a, b, 0.3j),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("z", [0.5, 0.5 - 0.1j, (0.0, 0.0)])
def test_rejects_im_z_not_positive(z):
    a, b = _chain(1, 4)
    with pytest.raises(BkError) as e:
        resolvent_diag(a, b, z)
    assert e.value.code == "E0304"


def test_rejects_bad_shapes_and_dtypes():
    a, b = _chain(2, 5)
    with pytest.raises(BkError) as e:
        resolvent_diag(a, b[:, :3], 0.1j)
    assert e.value.code == "E0401"
    with pytest.raises(BkError) as e:
        resolvent_diag(a, b.float(), 0.1j)
    assert e.value.code == "E0403"
