"""The Triton scattering attention computes exactly the reference's function (CPU interpreter, fp32).

Every check draws fresh random inputs; scores are built so that some block pairs are skipped and some
tokens are inactive (asserted, so the test exercises what it claims).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bkdsl.kernels import dispatch
from bkdsl.kernels.scattering_attention.kernel import (
    Launch,
    Tiles,
    block_plan,
    lpt_order,
    scattering_attention_backward,
    scattering_attention_forward,
)
from bkdsl.kernels.scattering_attention.ops import scattering_attention_triton
from bkdsl.nn.scattering_attention import (
    active_tokens,
    block_keep_mask,
    block_scores,
    scattering_attention_core,
    scattering_attention_reference,
)


def _qkv(b: int, h: int, n: int, d: int, gen: torch.Generator, dtype=torch.float32):
    return [torch.randn(b, h, n, d, generator=gen, dtype=dtype).requires_grad_() for _ in range(3)]


def _gated_score(b: int, n: int, block: int, gen: torch.Generator) -> torch.Tensor:
    """S with a mix of strong, middling and weak blocks, so that with τ = 1 pairs are skipped and
    tokens of kept blocks are sometimes inactive."""
    nb = -(-n // block)
    level = torch.tensor([0.1, 0.6, 1.3, 2.5])[torch.randint(0, 4, (b, nb), generator=gen)]
    level[:, 0], level[:, 1] = 0.1, 2.5  # one weak block (never kept) and one strong one
    s = level.repeat_interleave(block, dim=1)[:, :n] * torch.rand(b, n, generator=gen)
    return s


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def _compare(q, k, v, s, tau, block, causal, tiles=None):
    scale = 1.0 / math.sqrt(q.shape[-1])
    o, lse = scattering_attention_forward(q, k, v, s, tau, block, causal, scale, tiles=tiles)
    ref = scattering_attention_reference(q, k, v, s, tau, block, causal, scale)
    do = torch.randn_like(ref)
    grads = scattering_attention_backward(do, q, k, v, o, lse, s, tau, block, causal, scale, tiles=tiles)
    ref_grads = torch.autograd.grad(ref, (q, k, v), do)
    assert _rel(o, ref) < 1e-5
    for g, rg in zip(grads, ref_grads):
        assert torch.isfinite(g).all()
        assert _rel(g, rg) < 1e-5
    # inactive tokens: exactly zero output, exactly zero dq
    inactive = ~active_tokens(s, tau, block, causal)
    assert (o[inactive[:, None, :].expand(o.shape[:3])] == 0).all()
    assert (grads[0][inactive[:, None, :].expand(o.shape[:3])] == 0).all()
    return inactive


CASES = [  # (B, H, N, D, block, causal)
    (1, 2, 128, 16, 32, False),
    (1, 2, 128, 16, 32, True),
    (2, 2, 256, 64, 64, False),
    (2, 2, 256, 64, 64, True),
    (1, 2, 200, 16, 32, True),  # N not a multiple of the block
    (1, 1, 136, 16, 64, False),
]


@pytest.mark.parametrize("b,h,n,d,block,causal", CASES)
def test_matches_reference_forward_and_gradients(b, h, n, d, block, causal):
    gen = torch.Generator().manual_seed(1000 * n + 10 * block + causal)
    q, k, v = _qkv(b, h, n, d, gen)
    s = _gated_score(b, n, block, gen)
    keep, _ = block_keep_mask(s, 1.0, block, causal)
    allowed = keep.shape[1] * (keep.shape[1] + 1) // 2 if causal else keep.shape[1] ** 2
    assert 0 < keep.sum() < b * allowed, "the draw must skip some block pairs and keep others"
    inactive = _compare(q, k, v, s, 1.0, block, causal)
    assert inactive.any() and not inactive.all()


@pytest.mark.parametrize("causal", [False, True])
def test_tiles_smaller_than_the_block(causal):
    """Query and key tiles that subdivide the rule's block (several tiles per kept block, and a
    causal diagonal spread over several tiles)."""
    gen = torch.Generator().manual_seed(7 + causal)
    q, k, v = _qkv(1, 2, 256, 16, gen)
    s = _gated_score(1, 256, 64, gen)
    tiles = Tiles(fwd=Launch(32, 16, 4, 1), dkdv=Launch(16, 32, 4, 1), dq=Launch(32, 16, 4, 1))
    _compare(q, k, v, s, 1.0, 64, causal, tiles=tiles)


VARIANTS = {  # name -> Tiles; rule block 64, so tiles subdivide it and the diagonal spans several tiles
    "diag-split": Tiles(Launch(32, 16, 4, 1, diag=1), Launch(16, 32, 4, 1, diag=1), Launch(32, 16, 4, 1, diag=1)),
    "diag-slice2": Tiles(Launch(32, 32, 4, 1, diag=2), Launch(32, 32, 4, 1, diag=2), Launch(32, 32, 4, 1, diag=2)),
    "diag-wide": Tiles(Launch(16, 64, 4, 1, diag=2), Launch(64, 16, 4, 1, diag=2), Launch(16, 64, 4, 1, diag=2)),
    "lpt": Tiles(Launch(32, 16, 4, 1, lpt=True), Launch(16, 32, 4, 1, lpt=True), Launch(32, 16, 4, 1, lpt=True)),
    "tma": Tiles(Launch(32, 16, 4, 1, tma=True), Launch(16, 32, 4, 1), Launch(32, 16, 4, 1)),
    "all": Tiles(Launch(32, 16, 4, 1, diag=2, lpt=True, tma=True), Launch(16, 32, 4, 1, diag=2, lpt=True),
                 Launch(32, 32, 4, 1, diag=2, lpt=True)),
}


@pytest.mark.parametrize("n", [256, 200])  # 200: N not a multiple of the block
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_match_reference(variant, causal, n):
    """Every launch variant (split diagonal, LPT order, tensor-descriptor loads) computes the rule."""
    gen = torch.Generator().manual_seed(100 * sorted(VARIANTS).index(variant) + 10 * causal + n)
    q, k, v = _qkv(2, 2, n, 16, gen)
    s = _gated_score(2, n, 64, gen)
    _compare(q, k, v, s, 1.0, 64, causal, tiles=VARIANTS[variant])


@pytest.mark.parametrize("causal", [False, True])
def test_lpt_order_is_decreasing_work(causal):
    """The order kernel is a stable sort of the blocks by work 2·cnt (+1 for a kept causal diagonal)."""
    gen = torch.Generator().manual_seed(17 + causal)
    s = _gated_score(3, 37 * 16, 16, gen)
    plan = block_plan(s, 1.0, 16, causal)
    for cnt in (plan.row_cnt, plan.col_cnt):
        work = 2 * cnt.flatten().long()
        if causal:
            work += (plan.sigma * plan.sigma > 1.0).flatten().long()
        want = torch.sort(-work, stable=True).indices
        assert torch.equal(lpt_order(cnt, plan.sigma, 1.0, causal).long(), want)
        assert work.unique().numel() > 2, "the draw must have blocks of different work"


def test_ties_at_the_threshold_follow_the_strict_rule():
    """σ_I·σ_J = τ exactly is skipped and S_i·m_I = τ exactly is inactive, in the kernel as in the
    reference (both take one float32 product)."""
    gen = torch.Generator().manual_seed(3)
    q, k, v = _qkv(1, 1, 128, 16, gen)
    levels = torch.tensor([[2.0, 0.5, 1.0, 0.25]])  # products 1.0 = τ on several pairs
    s = levels.repeat_interleave(32, dim=1) * (torch.rand(1, 128, generator=gen) < 0.5)
    s[:, ::32] = levels  # every block reaches its level exactly
    for causal in (False, True):
        _compare(q, k, v, s, 1.0, 32, causal)


@pytest.mark.parametrize("causal", [False, True])
def test_all_active_is_dense_softmax_attention(causal):
    gen = torch.Generator().manual_seed(11 + causal)
    q, k, v = _qkv(2, 2, 128, 32, gen)
    s = 1.0 + torch.rand(2, 128, generator=gen)  # S ≥ 1 > √τ: every pair kept, every token active
    o = scattering_attention_triton(q, k, v, s, 0.5, 32, causal)
    dense = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert _rel(o, dense) < 1e-5


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    n=st.sampled_from([32, 80, 128, 160]),
    block=st.sampled_from([16, 32]),
    causal=st.booleans(),
    tau=st.sampled_from([0.25, 1.0, 3.0]),
)
def test_block_plan_is_the_rule(data, n, block, causal, tau):
    """The plan kernels' σ, m and kept lists are exactly the rule's (levels chosen so ties occur)."""
    values = st.sampled_from([0.0, 0.125, 0.5, 1.0, 1.5, 2.0, 4.0])
    s = torch.tensor(data.draw(st.lists(st.lists(values, min_size=n, max_size=n), min_size=1, max_size=2)))
    plan = block_plan(s, tau, block, causal)
    keep, m = block_keep_mask(s, tau, block, causal)
    assert torch.equal(plan.sigma, block_scores(s, block))
    assert torch.equal(plan.rowmax, m)
    nb = keep.shape[1]
    for b in range(s.shape[0]):
        for i in range(nb):
            row = plan.row_idx[b, i, : plan.row_cnt[b, i]].tolist()
            want = [j for j in range(nb) if keep[b, i, j] and not (causal and j == i)]
            assert row == want
            col = plan.col_idx[b, i, : plan.col_cnt[b, i]].tolist()
            want_col = [r for r in range(nb) if keep[b, r, i] and (r > i if causal else True)]
            assert col == want_col


def test_custom_op_registration():
    gen = torch.Generator().manual_seed(5)
    q, k, v = _qkv(1, 1, 64, 16, gen)
    s = _gated_score(1, 64, 16, gen)
    torch.library.opcheck(
        torch.ops.bkdsl.scattering_attention.default,
        (q, k, v, s, 1.0, 16, True, 0.25),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )
    # the score gets no gradient through the threshold (dS = 0), even when it asks for one
    s.requires_grad_()
    scattering_attention_triton(q, k, v, s, 1.0, 16, True).square().sum().backward()
    assert s.grad is None and q.grad is not None


def test_dispatch_switch_picks_each_path(monkeypatch):
    gen = torch.Generator().manual_seed(9)
    q, k, v = _qkv(1, 1, 64, 16, gen)
    s = _gated_score(1, 64, 32, gen)
    called = []
    import bkdsl.kernels.scattering_attention.ops as kmod

    real = kmod.scattering_attention_triton
    monkeypatch.setattr(kmod, "scattering_attention_triton", lambda *a: called.append(1) or real(*a))
    with dispatch.force("reference"):
        o_ref, stats = scattering_attention_core(q, k, v, s, 1.0, 32, False, return_stats=True)
    assert not called
    with dispatch.force("triton"):
        o_tri = scattering_attention_core(q, k, v, s, 1.0, 32, False)
    assert called
    assert _rel(o_tri, o_ref) < 1e-5
    assert stats.kept_blocks.shape == (1, 2)


def test_half_precision_close_to_the_float32_reference():
    gen = torch.Generator().manual_seed(13)
    q, k, v = (x.detach().half().requires_grad_() for x in _qkv(1, 2, 128, 16, gen))
    s = _gated_score(1, 128, 32, gen)
    o = scattering_attention_triton(q, k, v, s, 1.0, 32, True)
    ref = scattering_attention_reference(q.float(), k.float(), v.float(), s, 1.0, 32, True)
    assert o.dtype == torch.float16
    assert _rel(o, ref) < 5e-3
    do = torch.randn_like(ref)
    grads = torch.autograd.grad(o, (q, k, v), do.half())
    ref_grads = torch.autograd.grad(
        scattering_attention_reference(*(x.float() for x in (q, k, v)), s, 1.0, 32, True), (q, k, v), do
    )
    for g, rg in zip(grads, ref_grads):
        assert _rel(g, rg) < 1e-2


def test_default_tiles_pick_the_causal_entry_on_the_gpu_table(monkeypatch):
    """Off the interpreter, causal calls with 128-blocks get the causal entry (LPT, split diagonal, TMA
    where Triton has tensor descriptors); other calls keep the measured non-causal table."""
    import bkdsl.kernels.scattering_attention.kernel as ksa

    monkeypatch.setattr(ksa.dispatch, "interpreting", lambda: False)
    causal = ksa.default_tiles(128, 128, causal=True)
    assert causal == ksa._GPU_TILES_CAUSAL[128] or causal.fwd.tma is False
    assert causal.dkdv.lpt and causal.dkdv.diag == 2 and causal.fwd.lpt
    assert ksa.default_tiles(128, 128) == ksa._GPU_TILES[128]
    assert ksa.default_tiles(64, 128, causal=True).dkdv.lpt is False   # not measured at 64-blocks
    monkeypatch.setattr(ksa, "_has_tensor_descriptors", lambda: False)
    assert ksa.default_tiles(128, 128, causal=True).fwd.tma is False


def test_a_default_tile_that_fails_to_compile_falls_back(monkeypatch, caplog):
    """#20.3 under the interpreter: each kernel's table starts with a fake tile of 48 rows (tl.arange needs a
    power of two, so it fails to compile); every kernel falls back to its next tile, says so once, records
    the tile it runs (``active_tile``), and computes the reference's function."""
    import logging

    import bkdsl.kernels.scattering_attention.kernel as ksa
    from bkdsl.kernels import tiles

    tiles.reset()
    real = ksa.tile_table
    fake = Launch(48, 64, 4, 1)
    monkeypatch.setattr(ksa, "tile_table", lambda block, d, causal: {f: (fake,) + t for f, t in real(block, d, causal).items()})
    gen = torch.Generator().manual_seed(23)
    q, k, v = _qkv(1, 2, 128, 16, gen)
    s = _gated_score(1, 128, 32, gen)
    try:
        with caplog.at_level(logging.WARNING, logger="bkdsl.kernels.tiles"):
            _compare(q, k, v, s, 1.0, 32, True)
            _compare(q, k, v, s, 1.0, 32, True)  # the second call goes straight to the working tile
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 3 and all("48" in w and "falling back" in w for w in warnings)
        from bkdsl.kernels.scattering_attention import active_tile

        active = active_tile()
        assert len(active) == 3 and fake not in active.values()
        assert {name.split(" ")[0] for name in active} == {"scattering_attention.fwd", "scattering_attention.dkdv",
                                                           "scattering_attention.dq"}
    finally:
        tiles.reset()


def test_tile_table_orders_default_first_and_ends_safe(monkeypatch):
    import bkdsl.kernels.scattering_attention.kernel as ksa

    monkeypatch.setattr(ksa.dispatch, "interpreting", lambda: False)
    table = ksa.tile_table(128, 128, causal=True)
    first = ksa.default_tiles(128, 128, causal=True)
    for f in ("fwd", "dkdv", "dq"):
        assert table[f][0] == getattr(first, f)
        assert table[f][-1] == getattr(ksa._SAFE_TILES, f)
        assert len(set(table[f])) == len(table[f])
    # the dK/dV tile that crashed ptxas on the H200 (64 × 128, 8 warps, 3 stages) has the measured 64 × 64 behind it
    assert table["dkdv"][0][:4] == (64, 128, 8, 3) and ksa._GPU_TILES[128].dkdv in table["dkdv"][1:]
