"""The fused routing kernel (CPU interpreter) against the float64 reference, and the custom op."""

import dataclasses

import pytest
import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.hyperbolic_routing import kernel as kh
from bkdsl.kernels.hyperbolic_routing import ops as kops
from bkdsl.kernels.hyperbolic_routing import variants as kv
from bkdsl.nn import poincare as pb
from bkdsl.nn.hyperbolic_moe import HyperbolicMoE, hyperbolic_route, hyperbolic_route_reference, route_backward




def _ball_points(n, d, gen, scale=2.0):
    return pb.expmap0(scale * torch.randn(n, d, generator=gen))


def _rel_err(got, want):
    """max |got − want| / |want| (float64 want); where want = 0, got must be 0 to 1e-30."""
    got = got.double()
    err = (got - want).abs()
    pos = want.abs() > 0
    rel = torch.where(pos, err / torch.where(pos, want.abs(), 1.0), err * 1e30)
    return rel.max().item()


# the forward launches: persistent D-tiled (default), the first version's launch, and the benchmark peers
# of variants.py (persistent whole-row with the centroid block resident; select / measure split);
# small tiles so that programs loop over several token tiles
CONFIGS = {
    "default": kh.DEFAULT_CONFIG,
    "v1": kh.V1_CONFIG,
    "tiled_small": kh.RouteConfig(kernel="tiled", block_t=16, block_d=16, programs_per_sm=1),
    "rows": kh.RouteConfig(kernel="rows", block_t=16, num_warps=4, programs_per_sm=1),
    # the forward sweep's variants (bench/hyperbolic_routing.py): ‖x‖² once per tile, one measure loop
    # for all slots, and select / measure as two kernels joined by the index output
    "xsq_once": kh.RouteConfig(block_t=16, block_d=16, programs_per_sm=1, xsq_once=True),
    "fused_measure": kh.RouteConfig(block_t=16, block_d=16, programs_per_sm=1, fused_measure=True),
    "split": kh.RouteConfig(kernel="split", block_t=16, block_d=16, programs_per_sm=1),
    "split_fused": kh.RouteConfig(kernel="split", block_t=16, block_d=16, programs_per_sm=0, fused_measure=True,
                                  xsq_once=True),
}


def _check_against_reference(x, mu, k, c=1.0, tol=1e-5, config=None):
    gate, idx, dist = kv.hyperbolic_route_variant(x, mu, k, c, config)
    rg, ri, rd = hyperbolic_route_reference(x.double(), mu.double(), k, c)
    # the selected experts' distances are the k smallest (ties may swap indices, not distances)
    assert _rel_err(dist, rd) <= tol
    assert _rel_err(gate, rg) <= tol
    # and they are the distances to the experts named in idx
    d_named = pb.dist(x.double()[:, None, :], mu.double()[idx], c)
    assert _rel_err(dist, d_named) <= tol
    return idx, ri


# (T, E, D, k): D not a multiple of BLOCK_D, T not a multiple of BLOCK_T, E < 16 (padded), k = 1..4
@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
@pytest.mark.parametrize("T,E,D,k", [(70, 6, 40, 2), (33, 64, 64, 4), (5, 3, 7, 1), (64, 17, 33, 3)])
def test_matches_reference_on_random_points(T, E, D, k, config):
    gen = torch.Generator().manual_seed(T * 1000 + E)
    x, mu = _ball_points(T, D, gen), _ball_points(E, D, gen)
    idx, ri = _check_against_reference(x, mu, k, config=CONFIGS[config])
    assert (idx == ri).float().mean() > 0.99


def _hard_inputs(seed=7, E=16, D=48, T=96):
    """Centroids at ‖μ‖ = 1 − 1e-6 and 0.5; tokens within 1e-5..1e-3 (relative) of one of them; the
    first four tokens exactly on their centroid. Returns x, μ, the owner of each token."""
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.randn(E, D, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    radius = torch.where(torch.arange(E) < E // 2, 1 - 1e-6, 0.5).double()
    mu = (dirs * radius[:, None]).float()
    owner = torch.randint(E, (T,), generator=gen)
    base = mu[owner].double()
    step = torch.logspace(-5, -3, T, dtype=torch.float64)[:, None] * (1 - base.norm(dim=1, keepdim=True))
    x = pb.project((base + step * torch.randn(T, D, generator=gen, dtype=torch.float64)).float())
    x[:4] = mu[owner[:4]]                      # exactly coincident: d = 0, gate = 1
    return x, mu, owner


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_boundary_and_near_coincident_points(config):
    x, mu, owner = _hard_inputs()
    idx, _ = _check_against_reference(x, mu, 2, config=CONFIGS[config])
    assert (idx[:, 0] == owner).all()
    gate, _, dist = kv.hyperbolic_route_variant(x[:4], mu, 1, config=CONFIGS[config])
    assert (dist == 0).all() and (gate == 1).all()


def test_tokens_at_the_boundary_far_from_everything():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 24, generator=gen, dtype=torch.float64)
    x = (x / x.norm(dim=1, keepdim=True) * (1 - 1e-6)).float()
    mu = _ball_points(9, 24, gen)
    _check_against_reference(x, mu, 3)


@pytest.mark.parametrize("c", [2.5, 1.1])
def test_curvature(c):
    """1.1 is not a float32 number: 1 − c‖x‖² at the sphere needs c beyond fp32 (the kernel splits it)."""
    gen = torch.Generator().manual_seed(5)
    x, mu = pb.expmap0(torch.randn(20, 16, generator=gen), c), pb.expmap0(torch.randn(5, 16, generator=gen), c)
    x[:5] = pb.expmap0(20.0 * torch.randn(5, 16, generator=gen), c)     # on the float32 boundary
    mu[:2] = pb.expmap0(20.0 * torch.randn(2, 16, generator=gen), c)
    for config in (kh.DEFAULT_CONFIG, CONFIGS["rows"]):
        _check_against_reference(x, mu, 2, c, config=config)


def test_distances_come_out_ascending_and_name_their_experts():
    """Slots are re-sorted by the accurate distance, whatever order the selection found them in."""
    gen = torch.Generator().manual_seed(13)
    x, mu = _ball_points(50, 12, gen, scale=0.5), _ball_points(9, 12, gen, scale=0.5)
    for config in CONFIGS.values():
        _, idx, dist = kv.hyperbolic_route_variant(x, mu, 4, 1.0, config)
        assert (dist[:, 1:] >= dist[:, :-1]).all()
        assert (idx.sort(1).values[:, 1:] != idx.sort(1).values[:, :-1]).all()   # k distinct experts


def test_the_production_launcher_runs_only_the_tiled_kernel():
    """rows and split are benchmark peers (variants.py, not imported by the production path)."""
    gen = torch.Generator().manual_seed(3)
    x, mu = _ball_points(8, 8, gen), _ball_points(4, 8, gen)
    for name in ("rows", "split"):
        with pytest.raises(ValueError, match="variants"):
            kh.hyperbolic_route_triton(x, mu, 2, 1.0, CONFIGS[name])
    with pytest.raises(ValueError):
        kv.hyperbolic_route_variant(x, mu, 2, 1.0, dataclasses.replace(kh.DEFAULT_CONFIG, kernel="dense"))


@pytest.mark.parametrize("variant", ["xsq_once", "fused_measure", "split", "split_fused"])
def test_variants_give_the_default_launchs_bits(variant):
    """The variants reorganise loads and loops, not arithmetic: same sums in the same order, so (under the
    interpreter) the same bits as the plain tiled kernel at the same tile sizes, hard inputs included."""
    x, mu, _ = _hard_inputs(seed=19, E=12, D=40, T=50)
    plain = kh.RouteConfig(block_t=16, block_d=16, programs_per_sm=1)
    want = kh.hyperbolic_route_triton(x, mu, 3, 1.0, plain)
    got = kv.hyperbolic_route_variant(x, mu, 3, 1.0, CONFIGS[variant])
    assert torch.isfinite(want[0]).all()
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_launcher_host_arithmetic():
    """The plain-integer helpers that replace triton.cdiv / next_power_of_2 on the host, and the cached
    two-float split of c (rounded as torch rounds to float32)."""
    for n in (1, 2, 3, 16, 17, 255, 256, 257):
        assert kh._pow2(n) == 1 << (n - 1).bit_length() and kh._pow2(n) >= n > kh._pow2(n) // 2
        assert kh._cdiv(n, 16) == -(-n // 16) == (n + 15) // 16
    for c in (1.0, 1.1, 2.5, 1 / 3):
        c_hi, c_lo = kh._split(c)
        assert c_hi == float(torch.tensor(c, dtype=torch.float32))
        assert c_lo == float(torch.tensor(c - c_hi, dtype=torch.float32))
        assert abs(c_hi + c_lo - c) <= 2.0 ** -46 * c


def test_backward_gets_no_materialised_zero_gradients(monkeypatch):
    """A loss that uses only the gate hands the backward None for the distance (and nothing is built
    for the index): no zero-filled [T, k] tensors per step."""
    seen = []
    kernel_backward = kh.route_backward_triton
    monkeypatch.setattr(kops, "route_backward_triton",
                        lambda x, mu, idx, gg, gd, *a, **kw: seen.append((gg, gd)) or kernel_backward(x, mu, idx, gg, gd,
                                                                                                      *a, **kw))
    gen = torch.Generator().manual_seed(37)
    x, mu = _ball_points(20, 8, gen), _ball_points(5, 8, gen)
    xr, mr = x.clone().requires_grad_(True), mu.clone().requires_grad_(True)
    with dispatch.force("triton"):
        gate, _, _ = torch.ops.bkdsl.hyperbolic_route(xr, mr, 2, 1.0)
        gx, gmu = torch.autograd.grad(gate.sum(), (xr, mr))
    assert len(seen) == 1 and seen[0][0] is not None and seen[0][1] is None
    rx, rmu = route_backward(x.double(), mu.double(), hyperbolic_route_reference(x.double(), mu.double(), 2)[1],
                             torch.ones(20, 2, dtype=torch.float64), None)
    assert _row_rel_err(gx, rx) <= 1e-5 and _row_rel_err(gmu, rmu) <= 1e-5


def _poisoned(monkeypatch):
    """Make every output buffer start as NaN (floats) or −1 (indices)."""
    def alloc(shape, dtype, device):
        fill = -1 if dtype == torch.int64 else float("nan")
        return torch.full(shape, fill, dtype=dtype, device=device)

    monkeypatch.setattr(kh, "_alloc", alloc)


@pytest.mark.parametrize("config", ["default", "tiled_small", "rows", "fused_measure", "split"])
def test_every_output_element_is_written(monkeypatch, config):
    _poisoned(monkeypatch)
    gen = torch.Generator().manual_seed(17)
    T, E, D, k = 75, 5, 19, 2                  # 75 = 4 tiles of 16 + 11: the loop's last tile is partial
    x, mu = _ball_points(T, D, gen), _ball_points(E, D, gen)
    gate, idx, dist = kv.hyperbolic_route_variant(x, mu, k, 1.0, CONFIGS[config])
    assert torch.isfinite(gate).all() and torch.isfinite(dist).all()
    assert ((idx >= 0) & (idx < E)).all()
    gx, gmu = kh.route_backward_triton(x, mu, idx, torch.randn(T, k, generator=gen),
                                       torch.randn(T, k, generator=gen), 1.0, kh.BackwardConfig(block_t=16))
    assert torch.isfinite(gx).all() and torch.isfinite(gmu).all()


def _row_rel_err(got, want):
    """max over rows of ‖got − want‖ / ‖want‖ (float64 want; rows with want = 0 must be 0 to 1e-30)."""
    err = (got.double() - want).norm(dim=1)
    ref = want.norm(dim=1)
    return torch.where(ref > 0, err / torch.where(ref > 0, ref, 1.0), err * 1e30).max().item()


def _check_backward(x, mu, k, c=1.0, config=None, tol=1e-5, grads=("gate", "dist"), seed=0):
    gen = torch.Generator().manual_seed(seed)
    _, idx, _ = hyperbolic_route_reference(x.double(), mu.double(), k, c)
    gg = torch.randn(x.shape[0], k, generator=gen) if "gate" in grads else None
    gd = torch.randn(x.shape[0], k, generator=gen) if "dist" in grads else None
    gx, gmu = kh.route_backward_triton(x, mu, idx, gg, gd, c, config)
    rx, rmu = route_backward(x.double(), mu.double(), idx, None if gg is None else gg.double(),
                             None if gd is None else gd.double(), c)
    assert gx.dtype == torch.float32 and gmu.dtype == torch.float32
    assert _row_rel_err(gx, rx) <= tol
    assert _row_rel_err(gmu, rmu) <= tol
    return gx, gmu


BACKWARD_CONFIGS = {
    "workspace": kh.BackwardConfig(block_t=16, block_d=16),
    "atomic": kh.BackwardConfig(block_t=16, block_d=16, atomic=True),
}


@pytest.mark.parametrize("bconfig", BACKWARD_CONFIGS, ids=list(BACKWARD_CONFIGS))
@pytest.mark.parametrize("T,E,D,k", [(70, 6, 40, 2), (37, 17, 33, 1), (5, 3, 7, 2)])
def test_backward_kernel_matches_closed_form(T, E, D, k, bconfig):
    gen = torch.Generator().manual_seed(T + 100 * E + D)
    x, mu = _ball_points(T, D, gen), _ball_points(E, D, gen)
    gx, gmu = _check_backward(x, mu, k, config=BACKWARD_CONFIGS[bconfig])
    assert gmu.abs().sum() > 0                  # the centroids did receive a gradient


@pytest.mark.parametrize("grads", [("gate",), ("dist",)])
def test_backward_with_one_incoming_gradient(grads):
    gen = torch.Generator().manual_seed(23)
    x, mu = _ball_points(30, 20, gen), _ball_points(7, 20, gen)
    _check_backward(x, mu, 2, grads=grads, config=BACKWARD_CONFIGS["workspace"])


def test_backward_on_boundary_and_near_coincident_points():
    """Gradients of order 1e6 (1/α at ‖x‖ = 1 − 1e-6) and the subgradient 0 at x = μ, vs float64."""
    x, mu, owner = _hard_inputs()
    for bconfig in BACKWARD_CONFIGS.values():
        _check_backward(x, mu, 2, config=bconfig)


@pytest.mark.parametrize("c", [2.5, 1.1])
def test_backward_curvature(c):
    gen = torch.Generator().manual_seed(29)
    x, mu = pb.expmap0(torch.randn(20, 16, generator=gen), c), pb.expmap0(torch.randn(5, 16, generator=gen), c)
    x[:5] = pb.expmap0(20.0 * torch.randn(5, 16, generator=gen), c)
    _check_backward(x, mu, 2, c=c, config=BACKWARD_CONFIGS["workspace"])


def test_custom_op_gradients_match_reference_autograd(monkeypatch):
    """The op's backward runs the Triton pair on the Triton path and agrees with autograd of the reference."""
    calls = []
    kernel_backward = kh.route_backward_triton
    monkeypatch.setattr(kops, "route_backward_triton", lambda *a, **kw: calls.append(1) or kernel_backward(*a, **kw))
    gen = torch.Generator().manual_seed(11)
    x, mu = _ball_points(30, 20, gen), _ball_points(7, 20, gen)
    wg, wd = torch.randn(30, 2, generator=gen), torch.randn(30, 2, generator=gen)
    grads = []
    for mode in ("triton", "reference"):
        xr, mr = x.clone().requires_grad_(True), mu.clone().requires_grad_(True)
        with dispatch.force(mode):
            if mode == "triton":
                gate, idx, dist = torch.ops.bkdsl.hyperbolic_route(xr, mr, 2, 1.0)
            else:
                gate, idx, dist = hyperbolic_route(xr, mr, 2)
            grads.append(torch.autograd.grad((gate * wg).sum() + (dist * wd).sum(), (xr, mr)))
    assert calls == [1]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_opcheck_and_compile_and_export():
    gen = torch.Generator().manual_seed(2)
    x, mu = _ball_points(12, 8, gen), _ball_points(4, 8, gen)
    torch.library.opcheck(torch.ops.bkdsl.hyperbolic_route.default, (x, mu, 2, 1.0),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))

    def mix(x, mu):
        gate, idx, dist = torch.ops.bkdsl.hyperbolic_route(x, mu, 2, 1.0)
        return (gate / gate.sum(-1, keepdim=True) * dist).sum(-1)

    out = torch.compile(mix, fullgraph=True, backend="aot_eager")(x, mu)
    torch.testing.assert_close(out, mix(x, mu))

    class Mix(torch.nn.Module):
        def forward(self, x, mu):
            return mix(x, mu)

    ep = torch.export.export(Mix(), (x, mu))
    assert torch.ops.bkdsl.hyperbolic_route.default in [n.target for n in ep.graph.nodes]


def test_moe_forward_through_the_kernel_matches_reference():
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(0)
    moe = HyperbolicMoE(8, 5, top_k=2)
    x = _ball_points(40, 8, gen)
    with dispatch.force("triton"):
        y_t = moe(x)
    with dispatch.force("reference"):
        y_r = moe(x)
    torch.testing.assert_close(y_t, y_r, rtol=1e-4, atol=1e-5)


def _bench_module():
    """bench/hyperbolic_routing.py, loaded from the file."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "hyperbolic_routing.py"
    spec = importlib.util.spec_from_file_location("bench_hyperbolic_routing", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bench_hard_inputs(T, E, D, gen):
    """The bench's ``hard_inputs`` itself (on the CPU): centroids at ‖μ‖ = 1 − 1e-6 and 0.5, tokens
    within 1e-5..1e-3 of one of them, the first quarter at ‖x‖ = 1 − 1e-6 in random directions."""
    return _bench_module().hard_inputs(T, E, D, gen, "cpu")


def test_bench_sweep_records_an_inaccurate_variant_as_failed_and_does_not_time_it(monkeypatch, tmp_path):
    """The sweep checks each variant on random and hard inputs before timing: one whose distances are
    off by 1e-4 relative lands in failed_or_skipped (with the reason), is not timed, and the JSON on
    disk says so; the accurate one is timed."""
    import json
    from types import SimpleNamespace

    mod = _bench_module()
    gen = torch.Generator().manual_seed(41)
    T, E, D, k = 40, 6, 16, 2
    x, mu = _ball_points(T, D, gen), _ball_points(E, D, gen)
    hx, hmu = mod.hard_inputs(T, E, D, gen, "cpu")
    good = kh.RouteConfig(block_t=16, block_d=16, programs_per_sm=1)
    bad = dataclasses.replace(good, xsq_once=True)
    real = kh.hyperbolic_route_triton

    def route(x, mu, k, c=1.0, config=None):
        gate, idx, dist = real(x, mu, k, c, config)
        return gate, idx, dist * (1 + 1e-4) if config == bad else dist

    monkeypatch.setattr(kh, "hyperbolic_route_triton", route)
    result = {"forward_sweep_ms": {}, "failed_or_skipped": {}, "max_error": {}, "bytes_floor": {"ms": 1.0},
              "date": "test", "dry": True}
    run = mod.Run(SimpleNamespace(budget=1e9, out=str(tmp_path)), result)
    timed = []
    mod.sweep_forward(run, [good, bad], x, mu, hx, hmu, k, mod.reference64(x, mu, k), mod.reference64(hx, hmu, k),
                      lambda fn: timed.append(fn) or 1.0, 1e9, True)
    assert list(result["forward_sweep_ms"]) == [good.label()] and len(timed) == 1
    assert result["failed_or_skipped"][bad.label()].startswith("failed the accuracy check")
    assert bad.label() in json.loads(run.path.read_text())["failed_or_skipped"]


def test_backward_rows_whose_terms_cancel_at_the_bench_distribution():
    """The bench's inputs (random scale-2 points; hard inputs) and N(0, 1) incoming gradients, with the
    cancellations that a few hundred of the bench's 65 536 rows show (Σ|g r|/|Σ g r| up to 4e4) made
    certain: far tokens (every random one, the hard inputs' first quarter; t ≈ 8e5..5e11) get
    g_2 r_2 = −g_1 r_1 (1 + δ), so that b = Σ_j g_j r_j/α (∝ 1/α ≈ 5e5) cancels; near-coincident tokens
    (d ≈ 0) get grad_gate_1 e^{−d_1} = grad_dist_1 (1 + δ), so that g_1 = grad_dist_1 − e^{−d_1} grad_gate_1
    cancels; δ = 1e-6..1e-2. fp32 per-(token, slot) scalars lost 4.2e-4 (random) and 3.5e-2 (hard) of
    such rows here; the float64 ones 1.4e-7 and 6.8e-7 (docs/kernels_routing.md, "Measured")."""
    gen = torch.Generator().manual_seed(31)
    T, E, D, k = 128, 64, 32, 2
    for case in ("random", "hard"):
        x, mu = ((_ball_points(T, D, gen), _ball_points(E, D, gen)) if case == "random"
                 else _bench_hard_inputs(T, E, D, gen))
        _, idx, dist = hyperbolic_route_reference(x.double(), mu.double(), k)
        gg, gd = torch.randn(T, k, generator=gen), torch.randn(T, k, generator=gen)
        gg64, gd64 = gg.double(), gd.double()
        far = torch.arange(T) < (T if case == "random" else T // 4)
        n_far = int(far.sum())
        delta = torch.logspace(-6, -2, max(n_far, T - n_far), dtype=torch.float64)
        half = (dist / 2).sinh() ** 2                               # t = sinh²(d/2)
        r = (half / (1 + half)).sqrt()                              # r / 2√c
        g1 = gd64[far, 0] - (-dist[far, 0]).exp() * gg64[far, 0]
        gd[far, 1] = (-g1 * r[far, 0] / r[far, 1] * (1 + delta[:n_far])
                      + (-dist[far, 1]).exp() * gg64[far, 1]).float()
        near = ~far
        gg[near, 0] = (gd64[near, 0] * (1 + delta[:T - n_far]) * dist[near, 0].exp()).float()
        gx, gmu = kh.route_backward_triton(x, mu, idx, gg, gd, 1.0, BACKWARD_CONFIGS["workspace"])
        rx, rmu = route_backward(x.double(), mu.double(), idx, gg.double(), gd.double())
        assert _row_rel_err(gx, rx) <= 1e-5, case
        # ∂L/∂μ_e sums contributions ±w μ_e with w ≈ 1e6 that cancel (Σ‖q‖/‖Σ q‖ up to 290 here): the
        # exact contributions rounded once to fp32 and summed exactly already err 3.6e-6 (random)
        assert _row_rel_err(gmu, rmu) <= 2e-5, case


def test_naive_distance_matches_the_ball_module():
    """The reference's own float64 distance (kernels/ imports nothing of bkdsl.nn) agrees with
    bkdsl.nn.poincare.dist, near the boundary and at x = μ."""
    from bkdsl.kernels.hyperbolic_routing.naive import poincare_dist64

    gen = torch.Generator().manual_seed(41)
    for c in (1.0, 2.5):
        x, mu = _ball_points(30, 12, gen), _ball_points(6, 12, gen)
        x = x / c ** 0.5
        mu = torch.cat([mu / c ** 0.5, x[:1]])  # one centroid on a token: d = 0
        got = poincare_dist64(x[:, None], mu[None], c)
        want = pb.dist(x.double()[:, None], mu.double()[None], c)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_dispatch_decides_once_and_keeps_float64_on_the_reference(monkeypatch):
    """float64 tokens never reach the op, even with the Triton path forced; float32 ones do."""
    from bkdsl.kernels import hyperbolic_routing as routing

    seen = []
    real = kh.hyperbolic_route_triton
    monkeypatch.setattr(kops, "hyperbolic_route_triton", lambda *a, **kw: seen.append(a[0].dtype) or real(*a, **kw))
    gen = torch.Generator().manual_seed(43)
    x, mu = _ball_points(10, 8, gen), _ball_points(4, 8, gen)
    with dispatch.force("triton"):
        routing.hyperbolic_route(x.double(), mu.double(), 2)
        routing.hyperbolic_route(x, mu, 2)
    assert seen == [torch.float32]
