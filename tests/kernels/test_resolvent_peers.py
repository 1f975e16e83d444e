"""The resolvent's PyTorch peers of the benchmark (issue #20.5) against the float64 dense oracle, on fresh
random chains: the two-sided diagonal by two prefix scans (doubling, associative_scan) and by the dense
inverse, and the doubling scan's gradients against the reference adjoint sweeps."""

import pytest
import torch

from bkdsl.kernels.resolvent import naive, variants


def _chain(batch, n, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = 2.0 * torch.randn(batch, n, generator=g, dtype=dtype)
    b = 1.0 + 0.3 * torch.randn(batch, n - 1, generator=g, dtype=dtype)
    return a, b


@pytest.mark.parametrize("scan", ["doubling", "associative"])
@pytest.mark.parametrize("n", [1, 2, 7, 64, 100])
def test_scan_peer_matches_the_dense_oracle(scan, n):
    a, b = _chain(3, n, seed=int(torch.randint(1 << 30, ())))
    ref = naive.resolvent_diag_dense(a.double(), b.double(), 0.1j)
    g = torch.complex(*variants.resolvent_diag_scan_parts(a, b, 0.0, 0.1, scan))
    assert torch.isfinite(torch.view_as_real(g)).all()
    assert ((g.to(ref.dtype) - ref).abs().max() / ref.abs().max()).item() < 1e-5


def test_scan_peer_refuses_an_unknown_scan():
    a, b = _chain(1, 4, seed=0)
    with pytest.raises(ValueError, match="scan"):
        variants.resolvent_diag_scan_parts(a, b, 0.0, 0.1, "sequential")


def test_doubling_peer_gradients_match_the_adjoint_sweeps():
    a, b = _chain(2, 33, seed=int(torch.randint(1 << 30, ())), dtype=torch.float64)
    w = torch.randn(2, 33, dtype=torch.complex128)
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    gr, gi = variants.resolvent_diag_scan_parts(ar, br, 0.3, 0.1, "doubling")
    ga, gb = torch.autograd.grad((gr, gi), (ar, br), (w.real, w.imag))
    ra, rb = naive.resolvent_backward_reference(a, b, complex(0.3, 0.1), w)
    torch.testing.assert_close(ga, ra, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(gb, rb, rtol=1e-8, atol=1e-9)


def test_dense_inverse_peer_matches_the_reference():
    a, b = _chain(2, 40, seed=int(torch.randint(1 << 30, ())), dtype=torch.float64)
    ref = naive.resolvent_diag_reference(a, b, 0.2j)
    torch.testing.assert_close(variants.resolvent_diag_dense_inverse(a, b, 0.2j), ref, rtol=1e-10, atol=1e-12)
