"""The Triton resolvent kernels (CPU interpreter) against the reference, and the custom op's traces."""

import pytest
import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels import resolvent as kr
from bkdsl.nn.resolvent import resolvent_backward_reference, resolvent_diag, resolvent_diag_reference




def _chain(batch, n, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    a = 2.0 * torch.randn(batch, n, generator=g, dtype=dtype)
    b = 1.0 + 0.3 * torch.randn(batch, n - 1, generator=g, dtype=dtype)
    w = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(
        torch.complex64 if dtype == torch.float32 else torch.complex128)
    return a, b, w


# Sizes cover N = 1 and 2, odd N (a middle site where the sweeps meet), N not a multiple of the chunk,
# and a batch that leaves a program's lanes partly empty.
CASES = [(3, 1), (2, 2), (5, 7), (33, 10), (4, 21)]


@pytest.mark.parametrize("batch,n", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_backward_match_reference(batch, n, dtype):
    a, b, w = _chain(batch, n, dtype, seed=batch * 100 + n)
    z = (0.4, 0.1)
    g = kr.resolvent_diag_triton(a, b, *z, chunk=4)
    ref = resolvent_diag_reference(a, b, complex(*z))
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(g, ref, **tol)
    ga, gb = kr.resolvent_diag_backward_triton(a, b, *z, w, chunk=4)
    ra, rb = resolvent_backward_reference(a, b, complex(*z), w)
    scale = max(ra.abs().max().item(), 1.0)
    torch.testing.assert_close(ga / scale, ra / scale, **tol)
    torch.testing.assert_close(gb / scale, rb / scale, **tol)


def test_default_launch_parameters_and_every_output_written():
    a, b, _ = _chain(37, 40, torch.float32, seed=11)
    g = kr.resolvent_diag_triton(a, b, -0.5, 0.2)
    assert torch.isfinite(torch.view_as_real(g)).all()
    torch.testing.assert_close(g, resolvent_diag_reference(a, b, -0.5 + 0.2j), rtol=2e-5, atol=2e-5)


def test_custom_op_autograd_through_triton():
    a, b, w = _chain(3, 9, torch.float64, seed=5)
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
    with dispatch.force("reference"):
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
