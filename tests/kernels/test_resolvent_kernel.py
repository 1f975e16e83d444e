"""The Triton resolvent kernels (CPU interpreter) against the reference, and the custom op's traces."""

import pytest
import torch
import triton

from bkdsl.kernels import dispatch
from bkdsl.kernels.resolvent import ops  # noqa: F401  (registers torch.ops.bkdsl.resolvent_diag*)
from bkdsl.kernels.resolvent import segmented as kr
from bkdsl.kernels.resolvent import variants
from bkdsl.nn.resolvent import resolvent_backward_reference, resolvent_diag, resolvent_diag_reference




def _chain(batch, n, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    a = 2.0 * torch.randn(batch, n, generator=g, dtype=dtype)
    b = 1.0 + 0.3 * torch.randn(batch, n - 1, generator=g, dtype=dtype)
    w = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(
        torch.complex64 if dtype == torch.float32 else torch.complex128)
    return a, b, w


def _poisoned(batch, n, dtype):
    """Outputs filled with NaN, so an element the kernel never writes fails the comparison."""
    g = torch.full((batch, n), complex(float("nan"), float("nan")),
                   dtype=torch.complex64 if dtype == torch.float32 else torch.complex128)
    ga = torch.full((batch, n), float("nan"), dtype=dtype)
    gb = torch.full((batch, max(n - 1, 0)), float("nan"), dtype=dtype)
    return g, (ga, gb)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)


# (batch, N, SEG, SEGS): N = 1 and 2; odd N; N not a multiple of the segment or of the window
# (SEG·SEGS), so the last window is padded; several windows (the carry between them); a segment of
# one site; one segment per window (SEGS = 1, the purely sequential limit). One program holds the
# whole batch (block_b = 8): the interpreter runs programs one after another.
CASES = [(3, 1, 4, 4), (2, 2, 4, 4), (5, 7, 2, 4), (4, 21, 4, 4), (8, 64, 4, 4), (3, 19, 1, 8), (2, 13, 4, 1)]


@pytest.mark.parametrize("batch,n,seg,segs", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_segmented_forward_matches_reference(batch, n, seg, segs, dtype):
    a, b, _ = _chain(batch, n, dtype, seed=batch * 100 + n)
    z = (0.4, 0.1)
    out, _ = _poisoned(batch, n, dtype)
    g = kr.resolvent_diag_triton(a, b, *z, seg=seg, segs=segs, block_b=8, out=out)
    assert g.data_ptr() == out.data_ptr()
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, complex(*z)), **_tol(dtype))


@pytest.mark.parametrize("batch,n,seg,segs", CASES)
def test_segmented_backward_matches_reference(batch, n, seg, segs):
    dtype = torch.float64 if n % 2 else torch.float32
    a, b, w = _chain(batch, n, dtype, seed=batch * 100 + n + 1)
    z = (-0.3, 0.15)
    _, out = _poisoned(batch, n, dtype)
    ga, gb = kr.resolvent_diag_backward_triton(a, b, *z, w, seg=seg, segs=segs, block_b=8, out=out)
    ra, rb = resolvent_backward_reference(a, b, complex(*z), w)
    scale = max(ra.abs().max().item(), 1.0)
    torch.testing.assert_close(ga / scale, ra / scale, **_tol(dtype))
    torch.testing.assert_close(gb / scale, rb / scale, **_tol(dtype))


# The forward variants (variants.py launchers, keywords io=, renorm=) against the same reference. Cases add SEG 8 and
# 16 (a tile then moves in chunks of 4 sites), N a multiple of SEG (the tile's per-chunk masks) and not,
# SEG 3 (tile rounds it up to 4); block_b = 2 with odd batches leaves the last program half empty.
VARIANTS = [("packed", "max"), ("tile", "max"), ("strided", "pow2"), ("tile", "pow2")]
VARIANT_CASES = [(3, 1, 4, 4), (5, 7, 2, 4), (3, 21, 4, 4), (2, 64, 4, 4), (3, 19, 1, 8), (2, 13, 4, 1),
                 (3, 40, 8, 2), (3, 35, 16, 2), (2, 48, 16, 2), (3, 10, 3, 2)]


@pytest.mark.parametrize("batch,n,seg,segs", VARIANT_CASES)
@pytest.mark.parametrize("io,renorm", VARIANTS)
def test_forward_variants_match_reference(batch, n, seg, segs, io, renorm):
    dtype = torch.float64 if n % 2 else torch.float32
    a, b, _ = _chain(batch, n, dtype, seed=batch * 100 + n + 7)
    z = (0.3, 0.12)
    out, _ = _poisoned(batch, n, dtype)
    g = variants.resolvent_diag_triton_variant(a, b, *z, seg=seg, segs=segs, block_b=2, out=out, io=io,
                                               renorm=renorm)
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, complex(*z)), **_tol(dtype))


@pytest.mark.parametrize("batch,n,seg,segs", VARIANT_CASES)
@pytest.mark.parametrize("io", ["strided", "tile"])
def test_production_layouts_match_reference(batch, n, seg, segs, io):
    """The production module's own layouts (no variant switches left in it) at the variant cases."""
    dtype = torch.float64 if n % 2 else torch.float32
    a, b, _ = _chain(batch, n, dtype, seed=batch * 100 + n + 11)
    z = (0.3, 0.12)
    out, _ = _poisoned(batch, n, dtype)
    g = kr.resolvent_diag_triton(a, b, *z, seg=seg, segs=segs, block_b=2, out=out, io=io)
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, complex(*z)), **_tol(dtype))


@pytest.mark.parametrize("io,renorm", [("packed", "max"), ("tile", "pow2")])
@pytest.mark.parametrize("batch,n,seg,segs", [(3, 21, 4, 4), (2, 32, 8, 2)])
def test_backward_variants_match_reference(batch, n, seg, segs, io, renorm):
    """The backward's Möbius sweeps (α, β into scratch) with the forward's I/O and renormalisation."""
    dtype = torch.float64 if n % 2 else torch.float32
    a, b, w = _chain(batch, n, dtype, seed=batch * 100 + n + 3)
    z = (-0.3, 0.15)
    _, out = _poisoned(batch, n, dtype)
    ga, gb = variants.resolvent_diag_backward_triton_variant(a, b, *z, w, seg=seg, segs=segs, block_b=2, out=out,
                                                             io=io, renorm=renorm)
    ra, rb = resolvent_backward_reference(a, b, complex(*z), w)
    scale = max(ra.abs().max().item(), 1.0)
    torch.testing.assert_close(ga / scale, ra / scale, **_tol(dtype))
    torch.testing.assert_close(gb / scale, rb / scale, **_tol(dtype))


def test_variant_names_are_checked():
    a, b, _ = _chain(2, 70, torch.float32, seed=13)
    with pytest.raises(ValueError, match="io must be"):
        kr.resolvent_diag_triton(a, b, 0.0, 0.1, io="vector")
    with pytest.raises(ValueError, match="variants"):        # the packed variant left the production module
        kr.resolvent_diag_triton(a, b, 0.0, 0.1, io="packed")
    with pytest.raises(TypeError):
        kr.resolvent_diag_triton(a, b, 0.0, 0.1, renorm="pow2")
    with pytest.raises(ValueError, match="io must be"):
        variants.resolvent_diag_triton_variant(a, b, 0.0, 0.1, io="vector")
    with pytest.raises(ValueError, match="renorm must be"):
        variants.resolvent_diag_triton_variant(a, b, 0.0, 0.1, renorm="none")
    with pytest.raises(ValueError, match="SEG ≤ 32"):
        kr.resolvent_diag_triton(a, b, 0.0, 0.1, seg=64, segs=1, io="tile")


@pytest.mark.parametrize("io,renorm", [("strided", "max")] + VARIANTS)
def test_renormalisation_keeps_segment_products_finite(io, renorm):
    """|a| ~ 1e5 over 16-site segments: the raw transfer-matrix product would reach ~1e80 (float32
    overflows at 3e38); renormalised, G is finite and right."""
    a, b, _ = _chain(2, 64, torch.float32, seed=8)
    a = a * 5e4
    if renorm == "max" and io != "packed":
        g = kr.resolvent_diag_triton(a, b, 0.0, 0.1, seg=16, segs=4, block_b=2, io=io)
    else:
        g = variants.resolvent_diag_triton_variant(a, b, 0.0, 0.1, seg=16, segs=4, block_b=2, io=io, renorm=renorm)
    ref = resolvent_diag_reference(a.double(), b.double(), 0.1j)
    assert torch.isfinite(torch.view_as_real(g)).all()
    torch.testing.assert_close(g.to(torch.complex128), ref, rtol=1e-4, atol=1e-9)


def test_bounds_hold_with_strong_disorder_and_small_im_z():
    """Im z = 0.01, disorder 3, float32: |G_ii| ≤ 1/Im z and Im G_ii > 0 (the re-sweeps are the
    sequential Schur steps, seeded inside Im x ≤ −Im z), and G matches the float64 reference."""
    a, b, _ = _chain(2, 256, torch.float32, seed=9)
    a = 1.5 * a
    g = kr.resolvent_diag_triton(a, b, 0.2, 0.01, seg=8, segs=8, block_b=2)
    assert torch.isfinite(torch.view_as_real(g)).all()
    assert g.abs().max() <= 100.0 * (1 + 1e-5)
    assert (g.imag > 0).all()
    ref = resolvent_diag_reference(a.double(), b.double(), 0.2 + 0.01j)
    assert ((g.to(torch.complex128) - ref).abs().max() / ref.abs().max()) < 1e-4


def test_default_launch_parameters():
    a, b, w = _chain(3, 40, torch.float32, seed=11)
    g = kr.resolvent_diag_triton(a, b, -0.5, 0.2)
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, -0.5 + 0.2j), **_tol(torch.float32))
    assert kr.segment_layout(2048) == (kr.SEG, kr.SEGS)
    assert kr.segment_layout(40) == (kr.SEG, min(kr.SEGS, triton.next_power_of_2(triton.cdiv(40, kr.SEG))))
    assert kr.segment_layout(3) == (3, 1)             # shorter than a segment: one segment


def test_sequential_peer_still_matches_reference():
    """The previous kernels (kept for the benchmark) against the reference."""
    a, b, w = _chain(5, 11, torch.float64, seed=12)
    z = (0.4, 0.1)
    g = variants.resolvent_diag_triton_sequential(a, b, *z, chunk=4)
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, complex(*z)), **_tol(torch.float64))
    ga, gb = variants.resolvent_diag_backward_triton_sequential(a, b, *z, w, chunk=4)
    ra, rb = resolvent_backward_reference(a, b, complex(*z), w)
    torch.testing.assert_close(ga, ra, **_tol(torch.float64))
    torch.testing.assert_close(gb, rb, **_tol(torch.float64))


def test_custom_op_autograd_through_triton():
    a, b, w = _chain(2, 6, torch.float64, seed=5)
    a.requires_grad_(True)
    b.requires_grad_(True)
    with dispatch.force("triton"):
        g = resolvent_diag(a, b, 0.1 + 0.3j)
        assert type(g.grad_fn).__name__ != "ResolventDiagBackward"  # the custom op's autograd
        got = torch.autograd.grad(g, (a, b), w)
    with dispatch.force("reference"):
        want = torch.autograd.grad(resolvent_diag(a, b, 0.1 + 0.3j), (a, b), w)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode,custom_op", [("reference", False), ("triton", True)])
def test_bkdsl_kernels_switch_picks_the_implementation(monkeypatch, mode, custom_op):
    monkeypatch.setenv("BKDSL_KERNELS", mode)
    a, b, _ = _chain(2, 3, torch.float64, seed=4)
    a.requires_grad_(True)
    g = resolvent_diag(a, b, 0.1j)
    assert (type(g.grad_fn).__name__ != "ResolventDiagBackward") == custom_op
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, 0.1j).to(g.dtype), rtol=1e-11, atol=1e-12)


def test_opcheck():
    a, b, _ = _chain(2, 6, torch.float64, seed=1)
    torch.library.opcheck(torch.ops.bkdsl.resolvent_diag.default, (a, b, 0.2, 0.1),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


def _lds(a, b):
    """A caller of the op: the local density of states −Im G_ii / π, summed."""
    return (torch.ops.bkdsl.resolvent_diag(a, b, 0.0, 0.1).imag / torch.pi).sum(-1)


def test_torch_compile_fullgraph_traces_the_op():
    a, b, _ = _chain(2, 7, torch.float32, seed=2)
    a.requires_grad_(True)
    compiled = torch.compile(_lds, fullgraph=True, backend="aot_eager")
    out = compiled(a, b)
    out.sum().backward()
    ga = a.grad.clone()
    a.grad = None
    _lds(a, b).sum().backward()
    torch.testing.assert_close(out, _lds(a, b).detach())
    torch.testing.assert_close(ga, a.grad)


def test_torch_export_sees_one_node():
    class LDS(torch.nn.Module):
        def forward(self, a, b):
            return _lds(a, b)

    a, b, _ = _chain(2, 7, torch.float32, seed=3)
    ep = torch.export.export(LDS(), (a, b))
    targets = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert torch.ops.bkdsl.resolvent_diag.default in targets
    torch.testing.assert_close(ep.module()(a, b), _lds(a, b))
