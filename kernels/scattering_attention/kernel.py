"""Block-sparse flash attention gated by the scattering score — Triton, forward and backward.

Specification: :func:`bkdsl.kernels.scattering_attention.naive.scattering_attention_reference` (the rule
is stated in :mod:`bkdsl.nn.scattering_attention`'s docstring). In short, with σ_I = max_{i∈I} S_i over blocks of ``block`` tokens:
query block I attends key block J ⇔ σ_I·σ_J > τ (J ≤ I when causal); token i ∈ I is active ⇔
S_i·m_I > τ with m_I = max σ_J over causally allowed J; o_i = softmax(scale·q_i K_keptᵀ) V_kept if
active, 0 otherwise. The score S gets no gradient (the rule is piecewise constant in S).

Pipeline (no N×N mask and no per-pair Python work exists at any point)
----------------------------------------------------------------------
1. ``_block_score_kernel``   σ[B, nB] = blockwise max of S                  (reads S once)
2. ``_block_plan_kernel``    per (b, I): m_I, and the kept key blocks of I compacted into a list
                             ``row_idx[b, I, :row_cnt[b, I]]`` (J < I when causal; the diagonal block
                             is decided inside the attention kernel). When causal, also the transposed
                             list ``col_idx[b, J, :col_cnt]`` = {I > J kept} for the dK/dV pass; without
                             causality the rule is symmetric and the row list serves both.
                             The compaction is a prefix sum over a vector of nB block scores.
3. ``_attn_fwd``             flash attention (online softmax in base 2, log2 e folded into the scale)
                             whose key loop runs over the kept list only: skipped blocks are never
                             loaded. Causal: an unmasked loop over kept off-diagonal blocks, then the
                             diagonal block with the token mask if σ_I² > τ. Inactive tokens write 0 and
                             a log-sum-exp of +∞, which zeroes their probabilities in the backward pass.
4. ``_attn_bwd_preprocess``  Δ_i = Σ_d dO_id O_id
5. ``_attn_bwd_dkdv``        per key tile: loop over the kept query blocks (column list), FlashAttention-2
                             style: dV += Pᵀ dO, dK += scale · (P ∘ (dP − Δ))ᵀ Q
6. ``_attn_bwd_dq``          per query tile: loop over the kept key blocks (row list): dQ += scale · dS K

Launch variants (fields of :class:`Launch`, constexpr flags in the kernels, all off by default):
``diag`` splits the causal diagonal block into an unmasked part and masked sub-tiles; ``lpt`` launches
the rule blocks in decreasing-work order (:func:`lpt_order`); ``tma`` (forward) loads Q, K, V through
tensor descriptors. docs/kernels_attention.md gives their predictions; bench/scattering_attention.py
``--variants`` measures them.

Why a compacted list rather than testing σ_I·σ_J > τ inside the key loop: a branch around the loads
inside the loop defeats Triton's software pipelining (``num_stages``); loading the next block index
from a list keeps the loop branch-free. The list is block-level, B·nB² int32 (32 KiB for B = 2,
N = 8192, block 128), the same structure as FlexAttention's BlockMask.

Constraints: block a power of two ≥ 16; head dim a power of two in [16, 128]; q, k, v of one shape
[B, H, N, D] and dtype (fp16, bf16, fp32 — fp32 dots run in IEEE fp32, not tf32); N need not be a
multiple of the block (keys past N are masked, queries past N never stored).

Registered (:mod:`.ops`) as ``torch.ops.bkdsl.scattering_attention(q, k, v, score, tau, block, causal,
scale) -> (o, lse)`` with ``register_fake`` and ``register_autograd`` (backward op
``torch.ops.bkdsl.scattering_attention_backward``). ``lse`` is the per-row log₂-sum-exp of the scaled
logits (+∞ for inactive tokens); it carries no gradient.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from bkdsl.kernels import dispatch, tiles as tile_tables

LOG2E = 1.4426950408889634

__all__ = [
    "BlockPlan",
    "block_plan",
    "lpt_order",
    "scattering_attention_forward",
    "scattering_attention_backward",
    "Tiles",
    "Launch",
    "default_tiles",
    "tile_table",
    "override_tiles",
]


# ----------------------------------------------------------------------------------------------------
# 1–2. the block plan: σ, m, compacted kept lists
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _block_score_kernel(S, SIGMA, N, NB, BLOCK: tl.constexpr):
    """σ[b, J] = max_{j ∈ J} S[b, j]; tokens past N count as 0 (S ≥ 0, so 0 is neutral)."""
    jb = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    offs = jb * BLOCK + tl.arange(0, BLOCK)
    s = tl.load(S + b * N + offs, mask=offs < N, other=0.0)
    tl.store(SIGMA + b * NB + jb, tl.max(s, axis=0))


@triton.jit
def _block_plan_kernel(
    SIGMA, ROWMAX, ROW_CNT, ROW_IDX, COL_CNT, COL_IDX, tau, NB,
    CAUSAL: tl.constexpr, NB_POW2: tl.constexpr,
):
    """For block I of sequence b: m_I, and the kept partners of I as a compacted, ascending list.

    row list: {J : σ_I σ_J > τ} (J < I when causal);  col list (causal only): {J > I : σ_I σ_J > τ}.
    """
    i = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    jj = tl.arange(0, NB_POW2)
    inside = jj < NB
    sig = tl.load(SIGMA + b * NB + jj, mask=inside, other=0.0)
    sig_i = tl.load(SIGMA + b * NB + i)
    row_base = (b * NB + i) * NB
    if CAUSAL:
        allowed = inside & (jj <= i)
    else:
        allowed = inside
    tl.store(ROWMAX + b * NB + i, tl.max(tl.where(allowed, sig, 0.0), axis=0))
    pair = (sig_i * sig > tau) & inside
    if CAUSAL:
        row = pair & (jj < i)
    else:
        row = pair
    row_i = row.to(tl.int32)
    tl.store(ROW_IDX + row_base + tl.cumsum(row_i, 0) - 1, jj, mask=row)
    tl.store(ROW_CNT + b * NB + i, tl.sum(row_i, axis=0))
    if CAUSAL:
        col = pair & (jj > i)
        col_i = col.to(tl.int32)
        tl.store(COL_IDX + row_base + tl.cumsum(col_i, 0) - 1, jj, mask=col)
        tl.store(COL_CNT + b * NB + i, tl.sum(col_i, axis=0))


class BlockPlan(NamedTuple):
    """What the kernels iterate over, all O(B·nB) except the two lists (B·nB² int32).

    ``sigma[B, nB]`` σ; ``rowmax[B, nB]`` m_I; ``row_cnt/row_idx`` kept key blocks of each query block
    (off-diagonal only when causal); ``col_cnt/col_idx`` kept query blocks I > J of each key block J
    (causal; the row list itself otherwise, by the symmetry of σ_I·σ_J > τ).
    """

    sigma: Tensor
    rowmax: Tensor
    row_cnt: Tensor
    row_idx: Tensor
    col_cnt: Tensor
    col_idx: Tensor


def block_plan(score: Tensor, tau: float, block: int, causal: bool) -> BlockPlan:
    """Launch the two plan kernels on ``score`` [B, N] (any real dtype, ≥ 0)."""
    s = score.detach().float().contiguous()
    bsz, n = s.shape
    nb = triton.cdiv(n, block)
    dev = s.device
    sigma = torch.empty(bsz, nb, dtype=torch.float32, device=dev)
    rowmax = torch.empty_like(sigma)
    row_cnt = torch.empty(bsz, nb, dtype=torch.int32, device=dev)
    row_idx = torch.empty(bsz, nb, nb, dtype=torch.int32, device=dev)
    if causal:
        col_cnt, col_idx = torch.empty_like(row_cnt), torch.empty_like(row_idx)
    else:
        col_cnt, col_idx = row_cnt, row_idx
    _block_score_kernel[(nb, bsz)](s, sigma, n, nb, BLOCK=block)
    _block_plan_kernel[(nb, bsz)](
        sigma, rowmax, row_cnt, row_idx, col_cnt, col_idx, float(tau), nb,
        CAUSAL=causal, NB_POW2=triton.next_power_of_2(nb),
    )
    return BlockPlan(sigma, rowmax, row_cnt, row_idx, col_cnt, col_idx)


@triton.jit
def _lpt_order_kernel(CNT, SIGMA, ORDER, tau, TOTAL, CAUSAL: tl.constexpr, TOTAL_POW2: tl.constexpr):
    """ORDER = the flat rule blocks b·nB + I sorted by decreasing work, ties by increasing index.

    Work in half-block units: 2·cnt (kept off-diagonal blocks) + 1 for a kept causal diagonal (a
    triangle). One program sorts the packed key work·P + (P − 1 − idx), P = TOTAL_POW2, descending;
    the index is the key's low part. Padding lanes get key −1 and sort last.
    """
    idx = tl.arange(0, TOTAL_POW2)
    inside = idx < TOTAL
    work = 2 * tl.load(CNT + idx, mask=inside, other=0).to(tl.int64)
    if CAUSAL:
        sig = tl.load(SIGMA + idx, mask=inside, other=0.0)
        work += (sig * sig > tau).to(tl.int64)
    key = tl.where(inside, work * TOTAL_POW2 + (TOTAL_POW2 - 1 - idx), -1)
    key = tl.sort(key, descending=True)
    tl.store(ORDER + idx, ((TOTAL_POW2 - 1) - key % TOTAL_POW2).to(tl.int32), mask=inside)


def lpt_order(cnt: Tensor, sigma: Tensor, tau: float, causal: bool) -> Tensor:
    """Longest-processing-time order of the rule blocks (flat b·nB + I, int32) for a count list of
    the plan (``row_cnt`` for queries, ``col_cnt`` for keys). Launching the heaviest blocks first
    trims the tail where a few long programs run alone (greedy LPT: makespan ≤ 4/3 of optimal)."""
    total = cnt.numel()
    order = torch.empty(total, dtype=torch.int32, device=cnt.device)
    _lpt_order_kernel[(1,)](
        cnt, sigma, order, float(tau), total, CAUSAL=causal, TOTAL_POW2=triton.next_power_of_2(total),
    )
    return order


@triton.jit
def _program_tile(ORDER, H, NB, BLOCK: tl.constexpr, TILE: tl.constexpr, LPT: tl.constexpr):
    """(b, h, b·H + h, rule block, first row) of this program's resident tile.

    Default: grid (tiles, B·H), tile index = program_id(0). LPT: a 1-D grid; program p takes rule
    block ORDER[p // (H·T)], head (p // T) % H, tile p % T of that block, T = BLOCK // TILE. The GPU
    issues programs in increasing id, so the heaviest blocks start first; tiles of one block and head
    are neighbours and share their K/V (or Q/dO) blocks in L2.
    """
    if LPT:
        TPB: tl.constexpr = BLOCK // TILE
        pid = tl.program_id(0)
        flat = tl.load(ORDER + pid // (H * TPB))
        rem = pid % (H * TPB)
        b = (flat // NB).to(tl.int64)
        h = (rem // TPB).to(tl.int64)
        blk = flat % NB
        start = blk * BLOCK + (rem % TPB) * TILE
    else:
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        start = tl.program_id(0) * TILE
        blk = start // BLOCK
    return b, h, b * H + h, blk, start


# ----------------------------------------------------------------------------------------------------
# 3. forward
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _kv_rows(base, desc, b, h, start, stride_n, N,
             ROWS: tl.constexpr, HEAD_DIM: tl.constexpr, EVEN_N: tl.constexpr, TMA: tl.constexpr):
    """Rows [start, start + ROWS) of one head's [N, D] matrix; rows past N read as 0.

    TMA: one tensor-descriptor load of the [1, 1, ROWS, D] box of the [B, H, N, D] tensor (the copy
    engine zero-fills rows past N); otherwise a pointer load from ``base`` (the head's first row)."""
    if TMA:
        x = desc.load([b.to(tl.int32), h.to(tl.int32), start, 0]).reshape(ROWS, HEAD_DIM)
    else:
        offs = start + tl.arange(0, ROWS)
        ptrs = base + offs[:, None] * stride_n + tl.arange(0, HEAD_DIM)[None, :]
        if EVEN_N:
            x = tl.load(ptrs)
        else:
            x = tl.load(ptrs, mask=offs[:, None] < N, other=0.0)
    return x


@triton.jit
def _fwd_tile(
    acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h, start_n, offs_m, stride_kn, stride_vn,
    qk_scale, N,
    BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, EVEN_N: tl.constexpr, DIAGONAL: tl.constexpr,
    PRECISION: tl.constexpr, TMA: tl.constexpr,
):
    """One key tile of the online softmax (base 2): m ← max(m, rowmax(s)); acc ← α·acc + P V."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    k = _kv_rows(k_base, k_desc, b, h, start_n, stride_kn, N, BLOCK_N, HEAD_DIM, EVEN_N, TMA)
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
    if DIAGONAL or not EVEN_N:
        valid = offs_n[None, :] < N
        if DIAGONAL:
            valid = valid & (offs_m[:, None] >= offs_n[None, :])
        s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        # A row may have seen only masked keys so far: subtract 0 instead of −∞ (no NaN).
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_use = m_new
    p = tl.math.exp2(s - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None]
    v = _kv_rows(v_base, v_desc, b, h, start_n, stride_vn, N, BLOCK_N, HEAD_DIM, EVEN_N, TMA)
    acc = tl.dot(p.to(v.dtype), v, acc, input_precision=PRECISION)
    return acc, l_i, m_new


@triton.jit
def _attn_fwd(
    Q, K, V, O, LSE, SCORE, SIGMA, ROWMAX, ROW_CNT, ROW_IDX, ORDER, QD, KD, VD,
    qk_scale, tau,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son,
    H, N, NB,
    BLOCK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, PRECISION: tl.constexpr,
    DIAG_SPLIT: tl.constexpr, FULL_N: tl.constexpr, MASK_N: tl.constexpr,
    LPT: tl.constexpr, TMA: tl.constexpr,
):
    """Variants (constexpr): DIAG_SPLIT — the causal diagonal block as keys before the query tile,
    unmasked in FULL_N tiles, then the query tile's own span masked in MASK_N sub-tiles (the default
    masks every diagonal tile of BLOCK_N keys); LPT — heaviest query blocks first (ORDER, see
    :func:`_program_tile`); TMA — Q and the kept off-diagonal K, V tiles by tensor-descriptor loads
    (QD, KD, VD), the diagonal by pointers (its tile shapes differ from the descriptors' boxes)."""
    b, h, bh, blk_i, start_m = _program_tile(ORDER, H, NB, BLOCK, BLOCK_M, LPT)
    plan_row = b * NB + blk_i
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    q = _kv_rows(Q + b * sqb + h * sqh, QD, b, h, start_m, sqn, N, BLOCK_M, HEAD_DIM, EVEN_N, TMA)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    # Kept key blocks (off-diagonal when causal), BLOCK // BLOCK_N tiles each, in one flat loop.
    TILES: tl.constexpr = BLOCK // BLOCK_N
    n_kept = tl.load(ROW_CNT + plan_row)
    for it in range(0, n_kept * TILES):
        blk_j = tl.load(ROW_IDX + plan_row * NB + it // TILES)
        start_n = blk_j * BLOCK + (it % TILES) * BLOCK_N
        acc, l_i, m_i = _fwd_tile(
            acc, l_i, m_i, q, k_base, v_base, KD, VD, b, h, start_n, offs_m, skn, svn, qk_scale, N,
            BLOCK_N, HEAD_DIM, EVEN_N, False, PRECISION, TMA,
        )
    if CAUSAL:
        sig_i = tl.load(SIGMA + plan_row)
        if sig_i * sig_i > tau:
            if DIAG_SPLIT:
                for start_n in range(blk_i * BLOCK, start_m, FULL_N):
                    acc, l_i, m_i = _fwd_tile(
                        acc, l_i, m_i, q, k_base, v_base, KD, VD, b, h, start_n, offs_m, skn, svn,
                        qk_scale, N, FULL_N, HEAD_DIM, EVEN_N, False, PRECISION, False,
                    )
                for start_n in range(start_m, start_m + BLOCK_M, MASK_N):
                    acc, l_i, m_i = _fwd_tile(
                        acc, l_i, m_i, q, k_base, v_base, KD, VD, b, h, start_n, offs_m, skn, svn,
                        qk_scale, N, MASK_N, HEAD_DIM, EVEN_N, True, PRECISION, False,
                    )
            else:
                for start_n in range(blk_i * BLOCK, start_m + BLOCK_M, BLOCK_N):
                    acc, l_i, m_i = _fwd_tile(
                        acc, l_i, m_i, q, k_base, v_base, KD, VD, b, h, start_n, offs_m, skn, svn,
                        qk_scale, N, BLOCK_N, HEAD_DIM, EVEN_N, True, PRECISION, TMA,
                    )

    s_tok = tl.load(SCORE + b * N + offs_m, mask=offs_m < N, other=0.0)
    active = s_tok * tl.load(ROWMAX + plan_row) > tau
    l_safe = tl.where(l_i > 0.0, l_i, 1.0)
    o = acc / l_safe[:, None]
    o = tl.where(active[:, None], o, 0.0)
    lse = tl.where(active, m_i + tl.math.log2(l_safe), float("inf"))
    o_ptrs = O + b * sob + h * soh + offs_m[:, None] * son + offs_d[None, :]
    if EVEN_N:
        tl.store(o_ptrs, o.to(O.dtype.element_ty))
        tl.store(LSE + bh * N + offs_m, lse)
    else:
        tl.store(o_ptrs, o.to(O.dtype.element_ty), mask=offs_m[:, None] < N)
        tl.store(LSE + bh * N + offs_m, lse, mask=offs_m < N)


# ----------------------------------------------------------------------------------------------------
# 4–6. backward
# ----------------------------------------------------------------------------------------------------


@triton.jit
def _attn_bwd_preprocess(
    O, DO, DELTA, sob, soh, son, sdb, sdh, sdn, H, N,
    BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr,
):
    """Δ_i = Σ_d dO_id · O_id (float32)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m[:, None] < N
    o = tl.load(O + b * sob + h * soh + offs_m[:, None] * son + offs_d[None, :], mask=row_ok, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdn + offs_d[None, :], mask=row_ok, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), axis=1)
    tl.store(DELTA + pid_bh.to(tl.int64) * N + offs_m, delta, mask=offs_m < N)


@triton.jit
def _dkdv_tile(
    dk, dv, k, v, q_base, do_base, lse_base, delta_base, start_m, offs_n, offs_d,
    stride_qn, stride_don, qk_scale, N,
    BLOCK_M: tl.constexpr, EVEN_N: tl.constexpr, DIAGONAL: tl.constexpr, PRECISION: tl.constexpr,
):
    """dV += Pᵀ dO;  dK += (P ∘ (dP − Δ))ᵀ Q  (the scale is applied once at the end)."""
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q_ptrs = q_base + offs_m[:, None] * stride_qn + offs_d[None, :]
    do_ptrs = do_base + offs_m[:, None] * stride_don + offs_d[None, :]
    if EVEN_N:
        q = tl.load(q_ptrs)
        lse = tl.load(lse_base + offs_m)
    else:
        q = tl.load(q_ptrs, mask=offs_m[:, None] < N, other=0.0)
        lse = tl.load(lse_base + offs_m, mask=offs_m < N, other=float("inf"))
    # Pᵀ[n, m] = exp2(scale·log2e · k_n·q_m − lse_m); lse = +∞ for inactive or padded rows → 0.
    p_t = tl.math.exp2(tl.dot(k, tl.trans(q), input_precision=PRECISION) * qk_scale - lse[None, :])
    if DIAGONAL:
        p_t = tl.where(offs_m[None, :] >= offs_n[:, None], p_t, 0.0)
    if EVEN_N:
        do = tl.load(do_ptrs)
        delta = tl.load(delta_base + offs_m)
    else:
        do = tl.load(do_ptrs, mask=offs_m[:, None] < N, other=0.0)
        delta = tl.load(delta_base + offs_m, mask=offs_m < N, other=0.0)
    dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=PRECISION)
    dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
    ds_t = p_t * (dp_t - delta[None, :])
    dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=PRECISION)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, DK, DV, LSE, DELTA, SIGMA, COL_CNT, COL_IDX, ORDER,
    sm_scale, qk_scale, tau,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdb, sdh, sdn,
    sdkb, sdkh, sdkn, sdvb, sdvh, sdvn,
    H, N, NB,
    BLOCK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, PRECISION: tl.constexpr,
    DIAG_SPLIT: tl.constexpr, FULL_M: tl.constexpr, MASK_M: tl.constexpr, LPT: tl.constexpr,
):
    """Variants (constexpr): DIAG_SPLIT — the causal diagonal block as the query rows of this key
    tile's own span, masked in MASK_M sub-tiles (the Triton tutorial's BLK_SLICE_FACTOR), then the
    rows after it, unmasked in FULL_M tiles (the default masks every diagonal tile of BLOCK_M rows);
    LPT — heaviest key blocks first (ORDER from the column counts, see :func:`_program_tile`)."""
    b, h, bh, blk_j, start_n = _program_tile(ORDER, H, NB, BLOCK, BLOCK_N, LPT)
    plan_row = b * NB + blk_j
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    k_ptrs = K + b * skb + h * skh + offs_n[:, None] * skn + offs_d[None, :]
    v_ptrs = V + b * svb + h * svh + offs_n[:, None] * svn + offs_d[None, :]
    if EVEN_N:
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    else:
        k = tl.load(k_ptrs, mask=offs_n[:, None] < N, other=0.0)
        v = tl.load(v_ptrs, mask=offs_n[:, None] < N, other=0.0)
    q_base = Q + b * sqb + h * sqh
    do_base = DO + b * sdb + h * sdh
    lse_base = LSE + bh * N
    delta_base = DELTA + bh * N
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)

    TILES: tl.constexpr = BLOCK // BLOCK_M
    n_kept = tl.load(COL_CNT + plan_row)
    for it in range(0, n_kept * TILES):
        blk_i = tl.load(COL_IDX + plan_row * NB + it // TILES)
        start_m = blk_i * BLOCK + (it % TILES) * BLOCK_M
        dk, dv = _dkdv_tile(
            dk, dv, k, v, q_base, do_base, lse_base, delta_base, start_m, offs_n, offs_d, sqn, sdn,
            qk_scale, N, BLOCK_M, EVEN_N, False, PRECISION,
        )
    if CAUSAL:
        sig_j = tl.load(SIGMA + plan_row)
        if sig_j * sig_j > tau:
            if DIAG_SPLIT:
                for start_m in range(start_n, start_n + BLOCK_N, MASK_M):
                    dk, dv = _dkdv_tile(
                        dk, dv, k, v, q_base, do_base, lse_base, delta_base, start_m, offs_n, offs_d,
                        sqn, sdn, qk_scale, N, MASK_M, EVEN_N, True, PRECISION,
                    )
                for start_m in range(start_n + BLOCK_N, (blk_j + 1) * BLOCK, FULL_M):
                    dk, dv = _dkdv_tile(
                        dk, dv, k, v, q_base, do_base, lse_base, delta_base, start_m, offs_n, offs_d,
                        sqn, sdn, qk_scale, N, FULL_M, EVEN_N, False, PRECISION,
                    )
            else:
                # query tiles of the diagonal block that can see some key of this tile
                for start_m in range((start_n // BLOCK_M) * BLOCK_M, (blk_j + 1) * BLOCK, BLOCK_M):
                    dk, dv = _dkdv_tile(
                        dk, dv, k, v, q_base, do_base, lse_base, delta_base, start_m, offs_n, offs_d,
                        sqn, sdn, qk_scale, N, BLOCK_M, EVEN_N, True, PRECISION,
                    )

    dk = dk * sm_scale
    dk_ptrs = DK + b * sdkb + h * sdkh + offs_n[:, None] * sdkn + offs_d[None, :]
    dv_ptrs = DV + b * sdvb + h * sdvh + offs_n[:, None] * sdvn + offs_d[None, :]
    if EVEN_N:
        tl.store(dk_ptrs, dk.to(DK.dtype.element_ty))
        tl.store(dv_ptrs, dv.to(DV.dtype.element_ty))
    else:
        tl.store(dk_ptrs, dk.to(DK.dtype.element_ty), mask=offs_n[:, None] < N)
        tl.store(dv_ptrs, dv.to(DV.dtype.element_ty), mask=offs_n[:, None] < N)


@triton.jit
def _dq_tile(
    dq, q, do, lse, delta, k_base, v_base, start_n, offs_m, offs_d, stride_kn, stride_vn, qk_scale, N,
    BLOCK_N: tl.constexpr, EVEN_N: tl.constexpr, DIAGONAL: tl.constexpr, PRECISION: tl.constexpr,
):
    """dQ += (P ∘ (dP − Δ)) K  (the scale is applied once at the end)."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    k_ptrs = k_base + offs_n[:, None] * stride_kn + offs_d[None, :]
    v_ptrs = v_base + offs_n[:, None] * stride_vn + offs_d[None, :]
    if EVEN_N:
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    else:
        k = tl.load(k_ptrs, mask=offs_n[:, None] < N, other=0.0)
        v = tl.load(v_ptrs, mask=offs_n[:, None] < N, other=0.0)
    p = tl.math.exp2(tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale - lse[:, None])
    if DIAGONAL or not EVEN_N:
        valid = offs_n[None, :] < N
        if DIAGONAL:
            valid = valid & (offs_m[:, None] >= offs_n[None, :])
        p = tl.where(valid, p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
    ds = p * (dp - delta[:, None])
    return tl.dot(ds.to(k.dtype), k, dq, input_precision=PRECISION)


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, DQ, LSE, DELTA, SIGMA, ROW_CNT, ROW_IDX, ORDER,
    sm_scale, qk_scale, tau,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdb, sdh, sdn, sdqb, sdqh, sdqn,
    H, N, NB,
    BLOCK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    CAUSAL: tl.constexpr, EVEN_N: tl.constexpr, PRECISION: tl.constexpr,
    DIAG_SPLIT: tl.constexpr, FULL_N: tl.constexpr, MASK_N: tl.constexpr, LPT: tl.constexpr,
):
    """Variants (constexpr): DIAG_SPLIT — the causal diagonal block as keys before the query tile,
    unmasked in FULL_N tiles, then the query tile's own span masked in MASK_N sub-tiles (the Triton
    tutorial's BLK_SLICE_FACTOR; the default masks every diagonal tile of BLOCK_N keys); LPT —
    heaviest query blocks first (ORDER, see :func:`_program_tile`)."""
    b, h, bh, blk_i, start_m = _program_tile(ORDER, H, NB, BLOCK, BLOCK_M, LPT)
    plan_row = b * NB + blk_i
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    q_ptrs = Q + b * sqb + h * sqh + offs_m[:, None] * sqn + offs_d[None, :]
    do_ptrs = DO + b * sdb + h * sdh + offs_m[:, None] * sdn + offs_d[None, :]
    lse_ptrs = LSE + bh * N + offs_m
    delta_ptrs = DELTA + bh * N + offs_m
    if EVEN_N:
        q = tl.load(q_ptrs)
        do = tl.load(do_ptrs)
        lse = tl.load(lse_ptrs)
        delta = tl.load(delta_ptrs)
    else:
        q = tl.load(q_ptrs, mask=offs_m[:, None] < N, other=0.0)
        do = tl.load(do_ptrs, mask=offs_m[:, None] < N, other=0.0)
        lse = tl.load(lse_ptrs, mask=offs_m < N, other=float("inf"))
        delta = tl.load(delta_ptrs, mask=offs_m < N, other=0.0)
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    TILES: tl.constexpr = BLOCK // BLOCK_N
    n_kept = tl.load(ROW_CNT + plan_row)
    for it in range(0, n_kept * TILES):
        blk_j = tl.load(ROW_IDX + plan_row * NB + it // TILES)
        start_n = blk_j * BLOCK + (it % TILES) * BLOCK_N
        dq = _dq_tile(
            dq, q, do, lse, delta, k_base, v_base, start_n, offs_m, offs_d, skn, svn, qk_scale, N,
            BLOCK_N, EVEN_N, False, PRECISION,
        )
    if CAUSAL:
        sig_i = tl.load(SIGMA + plan_row)
        if sig_i * sig_i > tau:
            if DIAG_SPLIT:
                for start_n in range(blk_i * BLOCK, start_m, FULL_N):
                    dq = _dq_tile(
                        dq, q, do, lse, delta, k_base, v_base, start_n, offs_m, offs_d, skn, svn,
                        qk_scale, N, FULL_N, EVEN_N, False, PRECISION,
                    )
                for start_n in range(start_m, start_m + BLOCK_M, MASK_N):
                    dq = _dq_tile(
                        dq, q, do, lse, delta, k_base, v_base, start_n, offs_m, offs_d, skn, svn,
                        qk_scale, N, MASK_N, EVEN_N, True, PRECISION,
                    )
            else:
                for start_n in range(blk_i * BLOCK, start_m + BLOCK_M, BLOCK_N):
                    dq = _dq_tile(
                        dq, q, do, lse, delta, k_base, v_base, start_n, offs_m, offs_d, skn, svn,
                        qk_scale, N, BLOCK_N, EVEN_N, True, PRECISION,
                    )

    dq = dq * sm_scale
    dq_ptrs = DQ + b * sdqb + h * sdqh + offs_m[:, None] * sdqn + offs_d[None, :]
    if EVEN_N:
        tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty))
    else:
        tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=offs_m[:, None] < N)


# ----------------------------------------------------------------------------------------------------
# launchers
# ----------------------------------------------------------------------------------------------------


class Launch(NamedTuple):
    """One kernel's tile (rows m × columns n of the score tile), launch parameters and variants.

    The variant fields default to the measured-fastest behaviour (all off):

    ``diag`` (causal only) 0: the diagonal block in the kernel's own tiles, every one masked. k ≥ 1:
    split it — the part of the diagonal block that lies wholly below the diagonal in unmasked tiles of
    min(m, n), and the resident tile's own span in masked sub-tiles of (streamed edge) // k, clamped to
    [16, resident edge] (the Triton tutorial's BLK_SLICE_FACTOR = k). The streamed edge is m for dK/dV
    and n for the forward and dQ.
    ``lpt``: launch the rule blocks in decreasing work order (:func:`lpt_order`) on a 1-D grid.
    ``tma`` (forward only): Q and the kept off-diagonal K, V tiles by tensor-descriptor (TMA) loads.
    """

    m: int
    n: int
    warps: int
    stages: int
    diag: int = 0
    lpt: bool = False
    tma: bool = False


class Tiles(NamedTuple):
    """Tile shapes of the three attention kernels. Each tile edge divides the rule's ``block``.

    ``fwd``: query tile m resident, key tile n streamed. ``dkdv``: key tile n resident, query tile m
    streamed. ``dq``: query tile m resident, key tile n streamed.
    """

    fwd: Launch
    dkdv: Launch
    dq: Launch


# Keyed by head dim. D = 128: the fastest of the per-kernel sweep on the H200 (B2 H16 N8192, block 128,
# bf16, half the block pairs kept; bench/results/2026-11-22-scattering_attention.json, "sweep").
# D = 64: not swept; shapes checked for correctness on the H200 (same file, "extra_checks").
_GPU_TILES = {
    128: Tiles(Launch(128, 64, 4, 2), Launch(64, 64, 4, 4), Launch(128, 128, 8, 2)),
    64: Tiles(Launch(128, 64, 4, 3), Launch(64, 64, 4, 3), Launch(64, 64, 4, 3)),
}
# Causal, D = 128: the fastest combination of the variant sweep on the H200 (same shapes, causal, half the
# allowed block pairs kept; bench/results/2026-12-01-scattering_attention-variants.json, "causal-50%"):
# forward 0.579 ms and forward + backward 2.852 ms against 0.652 / 2.927 ms with the tiles above in the
# same process — heaviest rule blocks first (LPT) in all three kernels, TMA loads in the forward, and
# dK/dV on 64 × 128 tiles, 8 warps, with the diagonal block split (1.29 ms against 1.51 ms alone).
_GPU_TILES_CAUSAL = {
    128: Tiles(Launch(128, 64, 4, 2, lpt=True, tma=True), Launch(64, 128, 8, 3, diag=2, lpt=True),
               Launch(128, 128, 8, 2, lpt=True)),
}
_overrides: dict[tuple[int, int], Tiles] = {}


def _clamp(t: Launch, block: int) -> Launch:
    return t._replace(m=max(16, min(t.m, block)), n=max(16, min(t.n, block)))


def default_tiles(block: int, head_dim: int, causal: bool = False) -> Tiles:
    """Tiles for a rule block and head dim: an override if set, the tuned H200 table (its causal entry
    where one was measured), or small tiles under the interpreter; each edge clamped to [16, block]."""
    key = 128 if head_dim > 64 else 64
    if (block, head_dim) in _overrides:
        t = _overrides[(block, head_dim)]
    elif dispatch.interpreting():
        t = Tiles(Launch(64, 64, 4, 1), Launch(32, 64, 4, 1), Launch(64, 32, 4, 1))
    elif causal and key in _GPU_TILES_CAUSAL and block >= 128:
        t = _GPU_TILES_CAUSAL[key]
        if t.fwd.tma and not _has_tensor_descriptors():
            t = t._replace(fwd=t.fwd._replace(tma=False))
    else:
        t = _GPU_TILES[key]
    return Tiles(*(_clamp(x, block) for x in t))


# The last resort of every tile table: small tiles, one stage (what the interpreter runs; compiles for
# every head dim and block ≥ 32 on sm_80/sm_90 in the AOT checks).
_SAFE_TILES = Tiles(Launch(64, 64, 4, 1), Launch(32, 64, 4, 1), Launch(64, 32, 4, 1))


def tile_table(block: int, head_dim: int, causal: bool = False) -> dict[str, tuple[Launch, ...]]:
    """Per kernel ("fwd", "dkdv", "dq"), the tiles to try in order (#20.3): the default
    (:func:`default_tiles`), the same tile without TMA and with one pipeline stage fewer, the measured
    non-causal tile, the safe small tile — duplicates dropped, each clamped to [16, block]. The causal
    dK/dV default (64 × 128, 8 warps, 3 stages) crashed ptxas on an H200 with Triton 3.6; there it falls
    back to 64 × 128 with 2 stages, then to the 64 × 64 tile measured at 3.12 ms fwd+bwd."""
    first = default_tiles(block, head_dim, causal)
    if (block, head_dim) in _overrides:
        return {f: (getattr(first, f),) for f in Tiles._fields}  # an override is a decision, not a default
    plain = default_tiles(block, head_dim, False) if not dispatch.interpreting() else first
    table = {}
    for f in Tiles._fields:
        t = getattr(first, f)
        lighter = t._replace(tma=False, stages=max(1, t.stages - 1))
        cands = [t, lighter, getattr(plain, f), _clamp(getattr(_SAFE_TILES, f), block)]
        table[f] = tuple(dict.fromkeys(cands))
    return table


def _tile_key(q: Tensor, block: int, causal: bool) -> tuple:
    return (block, q.shape[-1], causal, str(q.dtype), q.device.type)


def _has_tensor_descriptors() -> bool:
    """Host tensor descriptors (TMA loads) exist from Triton 3.4 on."""
    try:
        from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def override_tiles(block: int, head_dim: int, tiles: Tiles) -> Iterator[None]:
    """``with override_tiles(128, 128, t): ...`` — launch every call of that shape with ``t``."""
    prev = _overrides.get((block, head_dim))
    _overrides[(block, head_dim)] = tiles
    try:
        yield
    finally:
        if prev is None:
            del _overrides[(block, head_dim)]
        else:
            _overrides[(block, head_dim)] = prev


def _check(q: Tensor, k: Tensor, v: Tensor, score: Tensor, block: int) -> None:
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share one shape [B, H, N, D]; got {q.shape}, {k.shape}, {v.shape}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise TypeError(f"q, k, v must share a dtype among fp16, bf16, fp32; got {q.dtype}, {k.dtype}, {v.dtype}")
    d = q.shape[-1]
    if d < 16 or d > 128 or d & (d - 1):
        raise ValueError(f"head dim must be a power of two in [16, 128], got {d}")
    if block < 16 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 16, got {block}")
    if score.shape != (q.shape[0], q.shape[2]):
        raise ValueError(f"score must be [B, N] = {(q.shape[0], q.shape[2])}, got {tuple(score.shape)}")


def _unit_last(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _precision(dtype: torch.dtype) -> str | None:
    # fp32 operands: exact IEEE products (the default would be tf32); 16-bit operands: the default.
    return "ieee" if dtype == torch.float32 else None


def _strides(*xs: Tensor) -> list[int]:
    return [st for x in xs for st in x.stride()[:3]]


def _diag_tiles(t: Launch, resident: int, streamed: int) -> dict:
    """Constexprs of the split diagonal: (DIAG_SPLIT, unmasked step, masked sub-tile).

    The unmasked part spans whole resident tiles, so min(m, n) divides it; the masked sub-tile must
    divide the resident edge (both powers of two, sub-tile ≤ resident) and feed tl.dot (≥ 16)."""
    mask = max(16, min(streamed // max(t.diag, 1), resident))
    return {"DIAG_SPLIT": t.diag > 0, "full": min(t.m, t.n), "mask": mask}


def _schedule(cnt: Tensor, plan: BlockPlan, tau: float, causal: bool, block: int, tile: int,
              heads: int, n: int, lpt: bool) -> tuple[tuple[int, ...], Tensor]:
    """Grid and program → tile map: (tiles, B·H) in natural order, or a 1-D LPT grid over the
    rule blocks sorted by ``cnt`` (the order tensor; the natural grid passes ``cnt`` as an unused
    placeholder pointer)."""
    if not lpt:
        return (triton.cdiv(n, tile), cnt.shape[0] * heads), cnt
    order = lpt_order(cnt, plan.sigma, tau, causal)
    return (order.numel() * heads * (block // tile),), order


def _descriptors(q: Tensor, k: Tensor, v: Tensor, t: Launch) -> tuple:
    """Host tensor descriptors of [B, H, N, D] with boxes [1, 1, m, D] (Q) and [1, 1, n, D] (K, V)."""
    from triton.tools.tensor_descriptor import TensorDescriptor

    d = q.shape[-1]

    def desc(x: Tensor, rows: int):
        return TensorDescriptor(x, list(x.shape), list(x.stride()), [1, 1, rows, d])

    return desc(q, t.m), desc(k, t.n), desc(v, t.n)


def scattering_attention_forward(
    q: Tensor, k: Tensor, v: Tensor, score: Tensor, tau: float, block: int, causal: bool, scale: float,
    tiles: Tiles | None = None, plan: BlockPlan | None = None,
) -> tuple[Tensor, Tensor]:
    """Launch the plan and the forward kernel → (o [B, H, N, D], lse [B, H, N] float32, base 2). With
    ``tiles`` None, the first tile of :func:`tile_table` that compiles and passes the finiteness check."""
    _check(q, k, v, score, block)
    q, k, v = _unit_last(q), _unit_last(k), _unit_last(v)
    plan = plan or block_plan(score, tau, block, causal)
    if tiles is not None:
        return _forward(q, k, v, score, tau, block, causal, scale, tiles.fwd, plan)
    # o is checked (lse is +∞ at inactive tokens by design)
    return tile_tables.run("scattering_attention.fwd", _tile_key(q, block, causal),
                           tile_table(block, q.shape[-1], causal)["fwd"],
                           lambda t: _forward(q, k, v, score, tau, block, causal, scale, t, plan),
                           _first_finite(q, k, v))


def _first_finite(*inputs: Tensor):
    check = tile_tables.finite_or_nonfinite_input(*inputs)
    return lambda result: check(result[0])


def _forward(q: Tensor, k: Tensor, v: Tensor, score: Tensor, tau: float, block: int, causal: bool, scale: float,
             t: Launch, plan: BlockPlan) -> tuple[Tensor, Tensor]:
    bsz, heads, n, d = q.shape
    s = score.detach().float().contiguous()
    o = torch.empty_like(q)
    lse = torch.empty(bsz, heads, n, dtype=torch.float32, device=q.device)
    grid, order = _schedule(plan.row_cnt, plan, tau, causal, block, t.m, heads, n, t.lpt)
    descs = _descriptors(q, k, v, t) if t.tma else (q, k, v)
    dg = _diag_tiles(t, resident=t.m, streamed=t.n)
    _attn_fwd[grid](
        q, k, v, o, lse, s, plan.sigma, plan.rowmax, plan.row_cnt, plan.row_idx, order, *descs,
        scale * LOG2E, float(tau), *_strides(q, k, v, o), heads, n, plan.sigma.shape[1],
        BLOCK=block, BLOCK_M=t.m, BLOCK_N=t.n, HEAD_DIM=d, CAUSAL=causal,
        EVEN_N=(n % block == 0), PRECISION=_precision(q.dtype),
        DIAG_SPLIT=dg["DIAG_SPLIT"], FULL_N=dg["full"], MASK_N=dg["mask"], LPT=t.lpt, TMA=t.tma,
        num_warps=t.warps, num_stages=t.stages,
    )
    return o, lse


def bwd_preprocess(o: Tensor, do: Tensor) -> Tensor:
    """Δ [B, H, N] float32 = rowsum(dO ∘ O)."""
    o, do = _unit_last(o), _unit_last(do)
    bsz, heads, n, d = o.shape
    delta = torch.empty(bsz, heads, n, dtype=torch.float32, device=o.device)
    _attn_bwd_preprocess[(triton.cdiv(n, 64), bsz * heads)](
        o, do, delta, *_strides(o, do), heads, n, BLOCK_M=64, HEAD_DIM=d,
    )
    return delta


def bwd_dkdv(
    do: Tensor, q: Tensor, k: Tensor, v: Tensor, lse: Tensor, delta: Tensor, plan: BlockPlan,
    tau: float, block: int, causal: bool, scale: float, t: Launch,
) -> tuple[Tensor, Tensor]:
    bsz, heads, n, d = q.shape
    dk, dv = torch.empty_like(k), torch.empty_like(v)
    grid, order = _schedule(plan.col_cnt, plan, tau, causal, block, t.n, heads, n, t.lpt)
    dg = _diag_tiles(t, resident=t.n, streamed=t.m)
    _attn_bwd_dkdv[grid](
        q, k, v, do, dk, dv, lse, delta, plan.sigma, plan.col_cnt, plan.col_idx, order,
        scale, scale * LOG2E, float(tau), *_strides(q, k, v, do, dk, dv), heads, n, plan.sigma.shape[1],
        BLOCK=block, BLOCK_M=t.m, BLOCK_N=t.n, HEAD_DIM=d, CAUSAL=causal, EVEN_N=(n % block == 0),
        PRECISION=_precision(q.dtype), DIAG_SPLIT=dg["DIAG_SPLIT"], FULL_M=dg["full"], MASK_M=dg["mask"],
        LPT=t.lpt, num_warps=t.warps, num_stages=t.stages,
    )
    return dk, dv


def bwd_dq(
    do: Tensor, q: Tensor, k: Tensor, v: Tensor, lse: Tensor, delta: Tensor, plan: BlockPlan,
    tau: float, block: int, causal: bool, scale: float, t: Launch,
) -> Tensor:
    bsz, heads, n, d = q.shape
    dq = torch.empty_like(q)
    grid, order = _schedule(plan.row_cnt, plan, tau, causal, block, t.m, heads, n, t.lpt)
    dg = _diag_tiles(t, resident=t.m, streamed=t.n)
    _attn_bwd_dq[grid](
        q, k, v, do, dq, lse, delta, plan.sigma, plan.row_cnt, plan.row_idx, order,
        scale, scale * LOG2E, float(tau), *_strides(q, k, v, do, dq), heads, n, plan.sigma.shape[1],
        BLOCK=block, BLOCK_M=t.m, BLOCK_N=t.n, HEAD_DIM=d, CAUSAL=causal, EVEN_N=(n % block == 0),
        PRECISION=_precision(q.dtype), DIAG_SPLIT=dg["DIAG_SPLIT"], FULL_N=dg["full"], MASK_N=dg["mask"],
        LPT=t.lpt, num_warps=t.warps, num_stages=t.stages,
    )
    return dq


def scattering_attention_backward(
    do: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, lse: Tensor, score: Tensor,
    tau: float, block: int, causal: bool, scale: float,
    tiles: Tiles | None = None, plan: BlockPlan | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """dQ, dK, dV by FlashAttention-2 over the kept blocks only. The score gets none (dS = 0)."""
    q, k, v, o, do = (_unit_last(x) for x in (q, k, v, o, do))
    plan = plan or block_plan(score, tau, block, causal)
    delta = bwd_preprocess(o, do)
    if tiles is not None:
        dk, dv = bwd_dkdv(do, q, k, v, lse, delta, plan, tau, block, causal, scale, tiles.dkdv)
        dq = bwd_dq(do, q, k, v, lse, delta, plan, tau, block, causal, scale, tiles.dq)
        return dq, dk, dv
    key, table = _tile_key(q, block, causal), tile_table(block, q.shape[-1], causal)
    check = tile_tables.finite_or_nonfinite_input(q, k, v, do)
    dk, dv = tile_tables.run("scattering_attention.dkdv", key, table["dkdv"],
                             lambda t: bwd_dkdv(do, q, k, v, lse, delta, plan, tau, block, causal, scale, t), check)
    dq = tile_tables.run("scattering_attention.dq", key, table["dq"],
                         lambda t: bwd_dq(do, q, k, v, lse, delta, plan, tau, block, causal, scale, t), check)
    return dq, dk, dv
