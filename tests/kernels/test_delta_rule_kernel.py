"""The chunked Triton delta rule (CPU interpreter) against its PyTorch reference, and the custom op.

Inputs are fresh random tensors (seeded per case). Keys are kept where the delta rule is a contraction
(β‖φ(k)‖² < 2): raw keys 0.5·N(0, 1) − 2 under the in-kernel feature map, L1-normalised φ(k) otherwise.
Tolerances: float32 kernels against the float64 recurrence 2e-5 relative to the output's scale
(measured ~1e-7); bfloat16 inputs 3e-2 relative (bf16 keeps 8 significant bits; the kernel computes in
float32 from the rounded inputs, so the error is the inputs' rounding carried through the recurrence).
"""

import pytest
import torch
import triton
import triton.language as tl

from bkdsl.kernels import dispatch
from bkdsl.kernels.delta_rule import chunk as kc
from bkdsl.kernels.delta_rule import naive, smem
from bkdsl.kernels.delta_rule.op import delta_rule
from bkdsl.nn.fast_weights import FastWeightLayer, fast_weight_chunked


def _inputs(B, H, N, dk, dv, feature_map, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, N, dk, generator=g, dtype=torch.float64)
    k = torch.randn(B, H, N, dk, generator=g, dtype=torch.float64)
    v = torch.randn(B, H, N, dv, generator=g, dtype=torch.float64)
    beta = torch.rand(B, H, N, generator=g, dtype=torch.float64)
    if feature_map:
        k = 0.5 * k - 2.0
    else:
        q = naive.elu_plus_one(q)
        k = naive.elu_plus_one(k)
        k = k / k.sum(-1, keepdim=True)
    return [t.to(dtype) for t in (q, k, v, beta)]


def _rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


# (B, H, N, d_k, d_v): one token; a chunk's tail (N < 64); exactly one chunk; several chunks with a
# tail; d_k, d_v not powers of two (masked columns); d_v > d_k with two d_v blocks of the state scan.
CASES = [(1, 1, 1, 16, 16), (2, 1, 37, 16, 16), (1, 2, 64, 16, 32), (1, 1, 150, 20, 24), (1, 1, 80, 16, 48)]


@pytest.mark.parametrize("B,H,N,dk,dv", CASES)
@pytest.mark.parametrize("feature_map,normalize", [(True, True), (False, True), (True, False)])
def test_forward_matches_float64_recurrence(B, H, N, dk, dv, feature_map, normalize):
    q, k, v, beta = _inputs(B, H, N, dk, dv, feature_map, seed=N * 10 + dk + dv + 3 * feature_map)
    y, den, *_ = kc.delta_rule_fwd_triton(q, k, v, beta, feature_map, normalize, block_v=16 if dv > 16 else 64,
                                          block_v_out=16 if dv > 24 else 64)
    ref = naive.delta_rule_recurrent(q.double(), k.double(), v.double(), beta.double(), feature_map, normalize)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert _rel(y, ref) < 2e-5


@pytest.mark.parametrize("B,H,N,dk,dv", [(1, 1, 37, 16, 16), (1, 2, 150, 20, 24), (2, 1, 80, 16, 48)])
@pytest.mark.parametrize("feature_map,normalize", [(True, True), (False, True), (True, False)])
def test_gradients_match_reference_autograd(B, H, N, dk, dv, feature_map, normalize):
    q, k, v, beta = _inputs(B, H, N, dk, dv, feature_map, seed=N + dk + 7 * normalize)
    g = torch.Generator().manual_seed(N + 1)
    dy = torch.randn(B, H, N, dv, generator=g)
    fwd = kc.delta_rule_fwd_triton(q, k, v, beta, feature_map, normalize, block_v=16, block_v_out=16)
    grads = kc.delta_rule_bwd_triton(q, k, v, beta, *fwd, dy, feature_map, normalize, block_v=16, block_v_out=16)
    xs = [t.double().requires_grad_() for t in (q, k, v, beta)]
    naive.delta_rule_chunked(*xs, feature_map, normalize).backward(dy.double())
    for name, got, x in zip(("q", "k", "v", "beta"), grads, xs):
        assert got.shape == x.shape and got.dtype == torch.float32, name
        assert torch.isfinite(got).all(), name
        assert _rel(got, x.grad) < 5e-5, (name, _rel(got, x.grad))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_forward_and_backward_within_documented_tolerance(dtype):
    q, k, v, beta = _inputs(1, 2, 100, 16, 16, True, seed=11, dtype=dtype)
    y, *rest = kc.delta_rule_fwd_triton(q, k, v, beta, True, True)
    assert y.dtype == dtype
    ref = naive.delta_rule_recurrent(q.double(), k.double(), v.double(), beta.double(), True, True)
    assert _rel(y, ref) < 3e-2
    dy = torch.randn(1, 2, 100, 16, generator=torch.Generator().manual_seed(5)).to(dtype)
    grads = kc.delta_rule_bwd_triton(q, k, v, beta, y, *rest, dy, True, True)
    xs = [t.double().requires_grad_() for t in (q, k, v, beta)]
    naive.delta_rule_chunked(*xs, True, True).backward(dy.double())
    for got, x in zip(grads, xs):
        assert got.dtype == dtype
        assert _rel(got, x.grad) < 3e-2


def test_reference_chunked_equals_recurrence_and_the_fast_weight_form():
    q, k, v, beta = (t.double() for t in _inputs(2, 2, 130, 8, 12, False, seed=3))
    y = naive.delta_rule_chunked(q, k, v, beta, False, True, chunk=32)
    torch.testing.assert_close(y, naive.delta_rule_recurrent(q, k, v, beta, False, True), rtol=1e-10, atol=1e-10)
    y_fw, _ = fast_weight_chunked(q, k, v, beta, "delta", True, chunk=64)
    torch.testing.assert_close(y, y_fw, rtol=1e-10, atol=1e-10)


def test_custom_op_autograd_matches_reference():
    q, k, v, beta = _inputs(1, 1, 70, 16, 16, True, seed=21)
    xs = [t.clone().requires_grad_() for t in (q, k, v, beta)]
    with dispatch.force("triton"):
        y = delta_rule(*xs)
    (y * torch.linspace(-1, 1, 16)).sum().backward()
    rs = [t.double().requires_grad_() for t in (q, k, v, beta)]
    y_ref = naive.delta_rule_chunked(*rs)
    (y_ref * torch.linspace(-1, 1, 16, dtype=torch.float64)).sum().backward()
    assert _rel(y, y_ref) < 2e-5
    for x, r in zip(xs, rs):
        assert _rel(x.grad, r.grad) < 5e-5


def test_custom_op_passes_opcheck():
    q, k, v, beta = _inputs(1, 1, 20, 16, 16, True, seed=2)
    args = (q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), beta.requires_grad_(), True, True)
    torch.library.opcheck(torch.ops.bkdsl.delta_rule.default, args,
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


def test_dispatch_reference_on_cpu_by_default():
    q, k, v, beta = _inputs(1, 1, 10, 16, 16, True, seed=4)
    with dispatch.force("auto"):
        y = delta_rule(q, k, v, beta)
    torch.testing.assert_close(y, naive.delta_rule_chunked(q, k, v, beta))


@pytest.mark.parametrize("key_norm", [False, True])
def test_fast_weight_layer_takes_the_kernel_when_dispatched(key_norm):
    torch.manual_seed(0)
    layer = FastWeightLayer(24, d_key=16, heads=2, key_norm=key_norm)
    with torch.no_grad():  # β ≈ e⁻⁵: β‖φ(k)‖² < 2 without key_norm too (a contraction, no blow-up)
        layer.wb.bias.fill_(-5.0)
    x = torch.randn(2, 70, 24)
    with dispatch.force("reference"):
        assert not layer.uses_kernel(x)
        y_ref = layer(x)
        g_ref = torch.autograd.grad(y_ref.square().sum(), list(layer.parameters()))
    with dispatch.force("triton"):
        assert layer.uses_kernel(x)
        y = layer(x)
        g = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
    assert _rel(y, y_ref) < 1e-4
    for a, b in zip(g, g_ref):
        assert _rel(a, b) < 1e-3


def test_fast_weight_layer_additive_and_recurrent_stay_on_the_reference():
    with dispatch.force("triton"):
        x = torch.randn(1, 8, 16)
        assert not FastWeightLayer(16, rule="additive").uses_kernel(x)
        assert not FastWeightLayer(16, mode="recurrent").uses_kernel(x)
        assert not FastWeightLayer(16, d_key=160).uses_kernel(x)  # wider than the kernel's tiles


@pytest.mark.parametrize("shapes", [((1, 1, 8, 16), (1, 1, 8, 8), (1, 1, 8, 16), (1, 1, 8)),
                                    ((1, 1, 8, 16), (1, 1, 8, 16), (1, 1, 9, 16), (1, 1, 8)),
                                    ((1, 1, 8, 16), (1, 1, 8, 16), (1, 1, 8, 16), (1, 8)),
                                    ((8, 16), (8, 16), (8, 16), (8,)),
                                    ((1, 1, 8, 130), (1, 1, 8, 130), (1, 1, 8, 16), (1, 1, 8))])
def test_bad_shapes_are_refused(shapes):
    q, k, v, beta = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match="delta_rule"):
        kc.delta_rule_fwd_triton(q, k, v, beta)


def test_mixed_dtypes_are_refused():
    q, k, v, beta = _inputs(1, 1, 8, 16, 16, True, seed=1)
    with pytest.raises(ValueError, match="share a dtype"):
        kc.delta_rule_fwd_triton(q.double(), k, v, beta)


class _FlakyKernel:
    """Stands in for a jitted kernel: configurations with 8 warps 'fail to compile'."""

    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        def launch(*args, num_warps, num_stages, **meta):
            self.calls.append((num_warps, num_stages))
            if num_warps == 8:
                raise RuntimeError("out of resource: shared memory")
        return launch


def test_launch_falls_back_to_the_next_config_once_and_says_so(monkeypatch):
    monkeypatch.setattr(kc, "CONFIGS", {"fake": ((8, 1), (4, 2))})
    monkeypatch.setattr(kc, "_chosen", {})
    kern = _FlakyKernel()
    x = torch.zeros(1)
    with pytest.warns(RuntimeWarning, match="fell back to \\(4 warps, 2 stages\\)"):
        kc._launch("fake", kern, (1,), (x,), dict(BK=16))
    kc._launch("fake", kern, (1,), (x,), dict(BK=16))  # remembered: no second try of (8, 1)
    assert kern.calls == [(8, 1), (4, 2), (4, 2)]
    assert list(kc.chosen_configs().values()) == [(4, 2)]


def test_launch_refuses_when_no_config_compiles(monkeypatch):
    monkeypatch.setattr(kc, "CONFIGS", {"fake": ((8, 1), (8, 2))})
    monkeypatch.setattr(kc, "_chosen", {})
    with pytest.raises(RuntimeError, match="no configuration compiled"):
        kc._launch("fake", _FlakyKernel(), (1,), (torch.zeros(1),), {})


@pytest.mark.parametrize("dot", ["tf32", "ieee"])
def test_dot_precisions_compute_the_same_function(dot):
    q, k, v, beta = _inputs(1, 1, 70, 16, 16, True, seed=9)
    y = kc.delta_rule_fwd_triton(q, k, v, beta, True, True, dot=dot)[0]
    ref = naive.delta_rule_recurrent(q.double(), k.double(), v.double(), beta.double(), True, True)
    assert _rel(y, ref) < 2e-5  # the interpreter computes every precision in float32


def test_unknown_dot_precision_is_refused():
    q, k, v, beta = _inputs(1, 1, 8, 16, 16, True, seed=1)
    with pytest.raises(ValueError, match="dot must be one of"):
        kc.delta_rule_fwd_triton(q, k, v, beta, dot="fp8")


def test_bf16_inputs_default_to_bf16_operands_emulated_under_the_interpreter(monkeypatch):
    assert kc._default_dot(torch.bfloat16) == "bf16"
    assert kc._default_dot(torch.float32) == "tf32x3"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kc._kernel_dot(None, torch.bfloat16) == "bf16_emulated"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert kc._kernel_dot(None, torch.bfloat16) == "bf16"  # what the GPU compiles


def test_bf16_operands_round_the_products_and_stay_within_the_bf16_tolerance():
    """float32 inputs with dot="bf16": the operands of the big products and the scratch are rounded to
    bf16 (fla's precision), so the error is far above the float32 path's and within the half-precision
    bound — forward and all four gradients (the operand rounding alone: the _dot probe test)."""
    q, k, v, beta = _inputs(1, 2, 150, 16, 24, True, seed=17)
    dy = torch.randn(1, 2, 150, 24, generator=torch.Generator().manual_seed(3))
    xs = [t.double().requires_grad_() for t in (q, k, v, beta)]
    ref = naive.delta_rule_chunked(*xs, True, True)
    ref.backward(dy.double())
    fwd = kc.delta_rule_fwd_triton(q, k, v, beta, True, True, dot="bf16", block_v=16, block_v_out=16)
    grads = kc.delta_rule_bwd_triton(q, k, v, beta, *fwd, dy, True, True, dot="bf16", block_v=16, block_v_out=16)
    assert 1e-5 < _rel(fwd[0], ref) < 3e-2
    for name, got, x in zip(("q", "k", "v", "beta"), grads, xs):
        assert torch.isfinite(got).all(), name
        assert _rel(got, x.grad) < 3e-2, (name, _rel(got, x.grad))


@triton.jit
def _dot_probe(a_ptr, b_ptr, c_ptr, DOT: tl.constexpr):
    i = tl.arange(0, 32)
    a = tl.load(a_ptr + i[:, None] * 32 + i[None, :])
    b = tl.load(b_ptr + i[:, None] * 32 + i[None, :])
    tl.store(c_ptr + i[:, None] * 32 + i[None, :], kc._dot(a, b, DOT))


def test_dot_rounds_the_operands_to_bf16_only_in_the_bf16_modes():
    """kc._dot itself: "bf16_emulated" (what the interpreter runs for "bf16") rounds both operands to bf16
    (error vs the exact product at bf16's level, within 2 bf16 ulps of the rounded operands' product);
    "ieee" does not."""
    g = torch.Generator().manual_seed(8)
    a, b = torch.randn(32, 32, generator=g), torch.randn(32, 32, generator=g)
    exact = a.double() @ b.double()
    scale = (a.abs().double() @ b.abs().double()).max().item()
    c = torch.empty(32, 32)
    _dot_probe[(1,)](a, b, c, DOT="bf16_emulated")
    assert (c.double() - exact).abs().max().item() > 1e-3 * scale
    rounded = a.bfloat16().double() @ b.bfloat16().double()
    assert (c.double() - rounded).abs().max().item() < 2 * 2.0 ** -8 * scale
    _dot_probe[(1,)](a, b, c, DOT="ieee")
    assert (c.double() - exact).abs().max().item() < 1e-5 * scale


def test_grads_kernel_columns_per_step_fit_sm90_shared_memory():
    assert kc._grads_block_v("bf16", 64, 128) == 64
    assert kc._grads_block_v("bf16_emulated", 64, 128) == 64
    assert kc._grads_block_v("tf32", 64, 128) == 32   # 64 needs 254 KB with float32 operands
    assert kc._grads_block_v("tf32x3", 64, 16) == 16


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_default_grads_config_fits_sm90_shared_memory(dtype):
    """The backward's biggest kernel, compiled for sm_90 by Triton (no GPU needed), in its first table
    configuration at d = 128 with φ and the normaliser: at most 200 KB (the first H200 run failed at 254 KB)."""
    dot = kc._default_dot(dtype)
    w, st = kc._table("grads", {"DOT": kc._grads_dot(dot)})[0]
    b = smem.smem_bytes("grads", dtype, dot, True, True, w, st)
    assert 0 < b <= 200 * 1024, b


def test_grads_kernel_uses_ieee_dots_for_float32_operands():
    assert kc._grads_dot("bf16") == "bf16" and kc._grads_dot("bf16_emulated") == "bf16_emulated"
    assert kc._grads_dot("tf32x3") == "ieee" and kc._grads_dot("tf32") == "ieee"


def test_float32_operands_use_their_own_smaller_tables():
    assert kc._table("grads", {"DOT": "tf32x3"}) == kc.CONFIGS["grads_f32"]
    assert kc._table("grads", {"DOT": "bf16"}) == kc.CONFIGS["grads"]
    assert kc._table("state_bwd", {"DOT": "ieee"})[0][1] == 1   # 2 stages: 213 KB with float32 operands
    assert kc._table("wy", {"DOT": "tf32"}) == kc.CONFIGS["wy"]


def test_empty_sequence_gives_empty_output_and_gradients():
    xs = [torch.zeros(s, requires_grad=True) for s in ((1, 2, 0, 16), (1, 2, 0, 16), (1, 2, 0, 8), (1, 2, 0))]
    y = torch.ops.bkdsl.delta_rule(*xs, True, True)[0]
    assert y.shape == (1, 2, 0, 8)
    y.sum().backward()
    assert [x.grad.shape for x in xs] == [x.shape for x in xs]


@pytest.mark.parametrize("B,H,N,dk,dv", [(1, 1, 37, 16, 16), (1, 2, 150, 20, 24)])
@pytest.mark.parametrize("feature_map", [True, False])
def test_batched_block_inverse_matches_rowwise_and_the_recurrence(B, H, N, dk, dv, feature_map):
    """The WY kernel's two inversions of the diagonal blocks (four blocks side by side, or one after the
    other) run the same sums: same T, W_k, U_v scratch and y; and y matches the float64 recurrence."""
    q, k, v, beta = _inputs(B, H, N, dk, dv, feature_map, seed=int(torch.randint(1 << 30, ())))
    batched = kc.delta_rule_fwd_triton(q, k, v, beta, feature_map, True, inverse="batched")
    rowwise = kc.delta_rule_fwd_triton(q, k, v, beta, feature_map, True, inverse="rowwise")
    for got, want in zip(batched[:3], rowwise[:3]):       # y, den, T
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    ref = naive.delta_rule_recurrent(q.double(), k.double(), v.double(), beta.double(), feature_map, True)
    assert torch.isfinite(batched[0]).all() and _rel(batched[0], ref) < 2e-5
    with pytest.raises(ValueError, match="inverse"):
        kc.delta_rule_fwd_triton(q, k, v, beta, feature_map, True, inverse="neumann")


def test_batched_inverse_that_does_not_compile_falls_back_once(monkeypatch):
    """A WY specialisation whose batched inverse compiles with no configuration runs the row-wise form,
    with one warning, and goes straight to it afterwards."""
    q, k, v, beta = _inputs(1, 1, 20, 16, 16, True, seed=5)
    real_launch = kc._launch
    calls = []

    def launch(name, kernel, grid, args, meta, config=None):
        calls.append(meta.get("INV4"))
        if name == "wy" and meta.get("INV4"):
            raise RuntimeError("no configuration compiled (simulated)")
        return real_launch(name, kernel, grid, args, meta, config)
    monkeypatch.setattr(kc, "_launch", launch)
    monkeypatch.setattr(kc, "_batched_inverse_failed", set())
    with pytest.warns(RuntimeWarning, match="batched block inverse"):
        y = kc.delta_rule_fwd_triton(q, k, v, beta, True, True)[0]
    want = kc.delta_rule_fwd_triton(q, k, v, beta, True, True, inverse="rowwise")[0]
    torch.testing.assert_close(y, want, rtol=0, atol=0)
    calls.clear()
    kc.delta_rule_fwd_triton(q, k, v, beta, True, True)
    assert True not in calls                                 # the failed form is not tried again
