r"""Scattering-aware attention, the reference: the exact rule, in plain PyTorch (the specification of
the Triton kernel beside it, :mod:`.kernel`). Rule and notation: :mod:`bkdsl.nn.scattering_attention`.

In short, with σ_I = max_{i∈I} S_i over blocks of ``block`` tokens: query block I attends key block J
⇔ σ_I·σ_J > τ (J ≤ I when causal); token i ∈ I is active ⇔ S_i·m_I > τ with m_I = max σ_J over the
allowed J; o_i = softmax(scale·q_i K_keptᵀ) V_kept if active, 0 otherwise; S gets no gradient. O(N²)
in memory. Imports nothing of bkdsl.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["block_scores", "block_keep_mask", "active_tokens", "BlockSparsityStats", "block_sparsity_stats",
           "scattering_attention_reference"]


def _n_blocks(n: int, block: int) -> int:
    return -(-n // block)


def block_scores(score: Tensor, block: int) -> Tensor:
    """σ_I = max_{i∈I} S_i, shape [B, ⌈N/b⌉] float32 (the padded tail counts as S = 0)."""
    b, n = score.shape
    nb = _n_blocks(n, block)
    s = F.pad(score.float(), (0, nb * block - n))
    return s.view(b, nb, block).amax(-1)


def _tau32(tau: float, device: torch.device) -> Tensor:
    # One float32 τ for every comparison, so that the kernel (which receives τ as fp32) and this
    # reference round identically.
    return torch.tensor(float(tau), dtype=torch.float32, device=device)


def block_keep_mask(score: Tensor, tau: float, block: int, causal: bool) -> tuple[Tensor, Tensor]:
    """The block rule: ``keep[B, nI, nJ]`` (σ_I·σ_J > τ, J ≤ I when causal) and ``m[B, nI]``.

    m_I = max σ_J over the key blocks that causality allows (all of them when not causal).
    """
    sigma = block_scores(score, block)
    nb = sigma.shape[1]
    allowed = torch.ones(nb, nb, dtype=torch.bool, device=score.device)
    if causal:
        allowed = allowed.tril()
    keep = (sigma[:, :, None] * sigma[:, None, :] > _tau32(tau, score.device)) & allowed
    # σ ≥ 0, so 0 is neutral for the max over the allowed blocks.
    m = torch.where(allowed, sigma[:, None, :], sigma.new_zeros(())).amax(-1)
    return keep, m


def active_tokens(score: Tensor, tau: float, block: int, causal: bool) -> Tensor:
    """Boolean [B, N]: token i of block I is active ⇔ S_i·m_I > τ."""
    n = score.shape[1]
    _, m = block_keep_mask(score, tau, block, causal)
    m_tok = m.repeat_interleave(block, dim=1)[:, :n]
    return score.float() * m_tok > _tau32(tau, score.device)


class BlockSparsityStats(NamedTuple):
    """What the rule skipped, per sequence.

    ``kept_blocks[B, nI]``: key blocks each query block attends; ``skipped_fraction[B]``: skipped
    (I, J) pairs over all pairs causality allows (nI² or nI(nI+1)/2); ``active_fraction[B]``: active
    query tokens over N.
    """

    kept_blocks: Tensor
    skipped_fraction: Tensor
    active_fraction: Tensor


def block_sparsity_stats(score: Tensor, tau: float, block: int, causal: bool) -> BlockSparsityStats:
    """Block-level statistics of the rule (O(B·(N/b)²) booleans; never token pairs)."""
    keep, _ = block_keep_mask(score, tau, block, causal)
    nb = keep.shape[1]
    total = nb * (nb + 1) // 2 if causal else nb * nb
    kept = keep.sum(-1, dtype=torch.int32)
    skipped = 1.0 - kept.sum(-1).float() / total
    active = active_tokens(score, tau, block, causal).float().mean(-1)
    return BlockSparsityStats(kept, skipped, active)


def scattering_attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    score: Tensor,
    tau: float,
    block: int,
    causal: bool,
    scale: float | None = None,
) -> Tensor:
    """The specification (module docstring), in float32 or wider, O(N²) memory. Differentiable in q, k, v.

    Builds the block mask [B, nI, nJ] from σ and expands it to tokens — allowed here only.
    """
    bsz, heads, n, d = q.shape
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    keep, _ = block_keep_mask(score, tau, block, causal)
    active = active_tokens(score, tau, block, causal)  # [B, N]
    tok = keep.repeat_interleave(block, dim=1).repeat_interleave(block, dim=2)[:, :n, :n]
    if causal:
        tok = tok & torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    # Rows of inactive tokens see every key: their output is discarded below, and a finite softmax
    # keeps NaN out of the backward pass (where() passes a zero gradient to the branch it drops).
    tok = tok | ~active[:, :, None]
    ct = torch.promote_types(q.dtype, torch.float32)  # at least float32 arithmetic
    logits = torch.einsum("bhid,bhjd->bhij", q.to(ct), k.to(ct)) * scale
    logits = logits.masked_fill(~tok[:, None], float("-inf"))
    p = torch.softmax(logits, dim=-1)
    o = torch.einsum("bhij,bhjd->bhid", p, v.to(ct))
    o = torch.where(active[:, None, :, None], o, o.new_zeros(()))
    return o.to(q.dtype)
