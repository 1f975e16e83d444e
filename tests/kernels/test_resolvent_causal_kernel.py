"""The causal (retarded) resolvent kernels (CPU interpreter) against the reference, and their custom op."""

import pytest
import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.resolvent import causal as kc
from bkdsl.kernels.resolvent import ops  # noqa: F401  (registers torch.ops.bkdsl.resolvent_diag_causal)
from bkdsl.kernels.resolvent.naive import (resolvent_causal_backward_reference, resolvent_diag_causal_dense,
                                           resolvent_diag_causal_reference)
from bkdsl.nn.resolvent import resolvent_diag


def _chain(batch, n, dtype, seed, disorder=2.0):
    g = torch.Generator().manual_seed(seed)
    a = disorder * torch.randn(batch, n, generator=g, dtype=dtype)
    b = 1.0 + 0.3 * torch.randn(batch, n - 1, generator=g, dtype=dtype)
    w = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(
        torch.complex64 if dtype == torch.float32 else torch.complex128)
    return a, b, w


def _poisoned(batch, n, dtype):
    """Outputs filled with NaN, so an element the kernel never writes fails the comparison."""
    g = torch.full((batch, n), complex(float("nan"), float("nan")),
                   dtype=torch.complex64 if dtype == torch.float32 else torch.complex128)
    return g, (torch.full((batch, n), float("nan"), dtype=dtype),
               torch.full((batch, max(n - 1, 0)), float("nan"), dtype=dtype))


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)


# (batch, N, SEG, SEGS, io): N = 1, 2; odd N; N not a multiple of the segment or window (padded last
# window); several windows (the carry); one site per segment; one segment per window; the tile I/O with
# chunks of 4 sites (SEG 8) and SEG rounded up (3 → 4).
CASES = [(3, 1, 4, 4, "strided"), (2, 2, 4, 4, "tile"), (5, 7, 2, 4, "strided"), (4, 21, 4, 4, "tile"),
         (3, 64, 4, 4, "strided"), (3, 19, 1, 8, "strided"), (2, 13, 4, 1, "tile"), (3, 40, 8, 2, "tile"),
         (3, 10, 3, 2, "tile")]


@pytest.mark.parametrize("batch,n,seg,segs,io", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_causal_forward_matches_reference(batch, n, seg, segs, io, dtype):
    a, b, _ = _chain(batch, n, dtype, seed=batch * 100 + n)
    z = (0.4, 0.1)
    out, _ = _poisoned(batch, n, dtype)
    g = kc.resolvent_diag_causal_triton(a, b, *z, seg=seg, segs=segs, block_b=2, out=out, io=io)
    assert g.data_ptr() == out.data_ptr()
    torch.testing.assert_close(g, resolvent_diag_causal_reference(a, b, complex(*z)), **_tol(dtype))


@pytest.mark.parametrize("batch,n,seg,segs,io", CASES)
def test_causal_backward_matches_reference(batch, n, seg, segs, io):
    dtype = torch.float64 if n % 2 else torch.float32
    a, b, w = _chain(batch, n, dtype, seed=batch * 100 + n + 1)
    z = (-0.3, 0.15)
    _, out = _poisoned(batch, n, dtype)
    ga, gb = kc.resolvent_diag_causal_backward_triton(a, b, *z, w, seg=seg, segs=segs, block_b=2, out=out, io=io)
    ra, rb = resolvent_causal_backward_reference(a, b, complex(*z), w)
    scale = max(ra.abs().max().item(), 1.0)
    torch.testing.assert_close(ga / scale, ra / scale, **_tol(dtype))
    torch.testing.assert_close(gb / scale, rb / scale, **_tol(dtype))


def test_causal_kernel_against_dense_leading_blocks():
    a, b, _ = _chain(2, 24, torch.float64, seed=31)
    g = kc.resolvent_diag_causal_triton(a, b, 0.25, 0.07, seg=2, segs=4, block_b=2)
    torch.testing.assert_close(g, resolvent_diag_causal_dense(a, b, 0.25 + 0.07j), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("j", [0, 5, 9, 17])
def test_causal_kernel_is_causal(j):
    """Perturbing a_j moves no output of the kernel before j (several windows, so the scan's carry and
    the seeds of later segments are exercised) and does move output j."""
    a, b, _ = _chain(2, 18, torch.float32, seed=40 + j)
    g = kc.resolvent_diag_causal_triton(a, b, 0.1, 0.2, seg=2, segs=2, block_b=2)
    a2 = a.clone()
    a2[:, j] += 2.5
    g2 = kc.resolvent_diag_causal_triton(a2, b, 0.1, 0.2, seg=2, segs=2, block_b=2)
    assert torch.equal(g2[:, :j], g[:, :j])
    assert (g2[:, j] - g[:, j]).abs().min() > 1e-4


def test_causal_bounds_with_strong_disorder_and_small_im_z():
    """Im z = 0.01, disorder 3, float32: |G⁽ⁱ⁾_ii| ≤ 1/Im z and Im G > 0, and G matches float64."""
    a, b, _ = _chain(2, 256, torch.float32, seed=9, disorder=3.0)
    g = kc.resolvent_diag_causal_triton(a, b, 0.2, 0.01, seg=8, segs=8, block_b=2)
    assert torch.isfinite(torch.view_as_real(g)).all()
    assert g.abs().max() <= 100.0 * (1 + 1e-5)
    assert (g.imag > 0).all()
    ref = resolvent_diag_causal_reference(a.double(), b.double(), 0.2 + 0.01j)
    assert ((g.to(torch.complex128) - ref).abs().max() / ref.abs().max()) < 1e-4


def test_causal_default_launch_parameters():
    a, b, w = _chain(2, 40, torch.float32, seed=11)
    torch.testing.assert_close(kc.resolvent_diag_causal_triton(a, b, -0.5, 0.2),
                               resolvent_diag_causal_reference(a, b, -0.5 + 0.2j), **_tol(torch.float32))
    ga, gb = kc.resolvent_diag_causal_backward_triton(a, b, -0.5, 0.2, w)
    ra, rb = resolvent_causal_backward_reference(a, b, -0.5 + 0.2j, w)
    torch.testing.assert_close(ga, ra, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gb, rb, rtol=1e-4, atol=1e-4)


def test_causal_custom_op_autograd_through_triton():
    a, b, w = _chain(2, 9, torch.float64, seed=5)
    a.requires_grad_(True)
    b.requires_grad_(True)
    with dispatch.force("triton"):
        g = resolvent_diag(a, b, 0.1 + 0.3j, causal=True)
        assert "ResolventDiagCausalBackward" != type(g.grad_fn).__name__  # the custom op's autograd
        got = torch.autograd.grad(g, (a, b), w)
    with dispatch.force("reference"):
        g_ref = resolvent_diag(a, b, 0.1 + 0.3j, causal=True)
        assert type(g_ref.grad_fn).__name__ == "ResolventDiagCausalBackward"
        want = torch.autograd.grad(g_ref, (a, b), w)
    torch.testing.assert_close(g.detach(), g_ref.detach(), rtol=1e-11, atol=1e-12)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


def test_causal_opcheck():
    a, b, _ = _chain(2, 6, torch.float64, seed=1)
    torch.library.opcheck(torch.ops.bkdsl.resolvent_diag_causal.default, (a, b, 0.2, 0.1),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


def test_causal_torch_compile_fullgraph_traces_the_op():
    def lds(a, b):
        return (torch.ops.bkdsl.resolvent_diag_causal(a, b, 0.0, 0.1).imag / torch.pi).sum(-1)

    a, b, _ = _chain(2, 7, torch.float32, seed=2)
    a.requires_grad_(True)
    out = torch.compile(lds, fullgraph=True, backend="aot_eager")(a, b)
    out.sum().backward()
    ga = a.grad.clone()
    a.grad = None
    lds(a, b).sum().backward()
    torch.testing.assert_close(out, lds(a, b).detach())
    torch.testing.assert_close(ga, a.grad)


@pytest.mark.parametrize("causal,op", [(True, "resolvent_diag_causal"), (False, "resolvent_diag")])
def test_fusion_rewrites_to_the_matching_op(causal, op):
    """The fx fusion pass must keep a causal call causal (the two-sided op would read the future)."""
    import torch.fx as fx

    from bkdsl.lower.fusion import fuse_kernels

    graph = fx.Graph()
    a_in, b_in = graph.placeholder("a"), graph.placeholder("b")
    graph.output(graph.call_function(resolvent_diag, (a_in, b_in), {"z": 0.1j, "causal": causal}))
    gm = fx.GraphModule(torch.nn.Module(), graph)
    assert fuse_kernels(gm) == 1
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets == [getattr(torch.ops.bkdsl, op).default]
    a, b, _ = _chain(2, 11, torch.float64, seed=3)
    with dispatch.force("reference"):
        want = resolvent_diag(a, b, 0.1j, causal=causal)
    torch.testing.assert_close(gm(a, b), want, rtol=1e-11, atol=1e-12)


def test_causal_peers_match_reference():
    """The bench's peers (variants, off the production path): the sequential kernel, the doubling scan
    (also its autograd gradients), torch's associative_scan (generic mode on the CPU)."""
    from bkdsl.kernels.resolvent import variants

    a, b, w = _chain(3, 37, torch.float64, seed=21)
    z = 0.3 + 0.1j
    ref = resolvent_diag_causal_reference(a, b, z)
    torch.testing.assert_close(variants.resolvent_diag_causal_triton_sequential(a, b, z.real, z.imag), ref,
                               **_tol(torch.float64))
    torch.testing.assert_close(variants.resolvent_diag_causal_associative_scan(a, b, z, combine_mode="generic"), ref,
                               rtol=1e-10, atol=1e-12)
    a.requires_grad_(True)
    b.requires_grad_(True)
    g = variants.resolvent_diag_causal_doubling(a, b, z)
    torch.testing.assert_close(g, ref, rtol=1e-10, atol=1e-12)
    got = torch.autograd.grad(g, (a, b), w)
    want = resolvent_causal_backward_reference(a.detach(), b.detach(), z, w)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11)


@pytest.mark.slow
def test_causal_kernel_at_n_65536_is_finite_bounded_and_right():
    """N = 65 536 (8 windows of 32 × 256 sites, one chain; the interpreter's cost is per window):
    finite, |G| ≤ 1/Im z, Im G > 0, and equal to the float64 reference to float32 accuracy; the backward
    finite and right too. The bench checks the default layout at this N on the GPU."""
    a, b, w = _chain(1, 65_536, torch.float32, seed=65, disorder=3.0)
    g = kc.resolvent_diag_causal_triton(a, b, 0.0, 0.1, seg=32, segs=256)
    assert torch.isfinite(torch.view_as_real(g)).all()
    assert g.abs().max() <= 10.0 * (1 + 1e-5) and (g.imag > 0).all()
    ref = resolvent_diag_causal_reference(a.double(), b.double(), 0.1j)
    assert ((g.to(torch.complex128) - ref).abs().max() / ref.abs().max()) < 1e-4
    ga, gb = kc.resolvent_diag_causal_backward_triton(a, b, 0.0, 0.1, w, seg=32, segs=256)
    ra, rb = resolvent_causal_backward_reference(a.double(), b.double(), 0.1j, w.to(torch.complex128))
    assert torch.isfinite(ga).all() and torch.isfinite(gb).all()
    assert ((ga.double() - ra).abs().max() / ra.abs().max()) < 1e-3
    assert ((gb.double() - rb).abs().max() / rb.abs().max()) < 1e-3
