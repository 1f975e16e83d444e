"""Scattering-aware attention pruning (reference README, 000 §1): attention gated by the Green function.

The BK-Core computes the resolvent diagonal G_ii = [(H − zI)⁻¹]_ii; |G_ii|² is a local density of
states. A token whose scattering amplitude is small takes the identity path (its hidden state passes
through the residual layer unchanged), and a pair of token blocks whose amplitudes are both small skips
attention altogether — a physics-gated mixture-of-depths with no learned router.

The exact rule (the specification of ``torch.ops.bkdsl.scattering_attention``)
-----------------------------------------------------------------------------
Inputs: q, k, v ∈ ℝ^{B×H×N×D}; scattering score S ∈ ℝ_{≥0}^{B×N}; block size b; threshold τ > 0.
Tokens are tiled in blocks of ``b`` (the last block is padded with S = 0 and with keys that no query
sees when b ∤ N).

* block score            σ_I = max_{i∈I} S_i
* kept block pair        (I, J) kept  ⇔  σ_I·σ_J > τ   (and J ≤ I when causal)
* largest reachable key  m_I = max { σ_J : J ≤ I if causal, any J otherwise }
* active query token     i ∈ I active  ⇔  S_i·m_I > τ
* output                 o_i = softmax(scale · q_i K_Iᵀ) V_I   for active i, where K_I, V_I are the keys
                         and values of all kept blocks J of I (within the diagonal block only keys
                         j ≤ i when causal); o_i = 0 for inactive i (the identity path).

An active token always has a non-empty key set: S_i ≤ σ_I, so σ_I·σ_J* ≥ S_i·m_I > τ for the block J*
that attains m_I (and if J* = I under causality, key i itself is there). The same holds in float32,
since rounding is monotone and both sides are one float32 product.

The score gets no gradient: the rule is piecewise constant in S (dS = 0 almost everywhere), and the
kernel returns none. ``scale`` defaults to 1/√D.

The reference (plain PyTorch, O(N²) in memory — it *is* the specification) and the dispatcher live
beside the Triton kernel in ``kernels/scattering_attention/`` (``naive.py``); they are re-exported here,
beside the layer (:class:`ScatteringAttention`) and the score (:func:`scattering_score`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bkdsl.kernels.scattering_attention import (BlockSparsityStats, active_tokens, block_keep_mask, block_scores,
                                                block_sparsity_stats, scattering_attention_core,
                                                scattering_attention_reference)

__all__ = [
    "active_tokens",
    "block_scores",
    "block_keep_mask",
    "BlockSparsityStats",
    "block_sparsity_stats",
    "scattering_attention_reference",
    "scattering_attention_core",
    "scattering_score",
    "block_leading_score",
    "ScatteringAttention",
]


def scattering_score(g: Tensor, causal: bool = False, eps: float = 1e-12) -> Tensor:
    """The scattering score from the complex Green diagonal g [B, N], detached.

    Two-sided (``causal=False``, for bidirectional models): S_i = |G_ii| / mean_j |G_jj|, the mean over
    the whole sequence. Causal: S_i = |G_ii| / ((1/(i+1)) Σ_{j≤i} |G_jj|), the running mean, so that
    S_i depends on G_{≤i} only (the sequence mean reads every later token: a leak in a language model).

    Detached: the gate is piecewise constant in S, so no gradient flows through it. ``eps`` guards a
    sequence whose Green diagonal vanishes identically (then S = 0: every token takes the identity path).
    """
    a = g.detach().abs().float()
    if causal:
        count = torch.arange(1, a.shape[-1] + 1, device=a.device, dtype=a.dtype)
        return a / (a.cumsum(-1) / count).clamp_min(eps)
    return a / a.mean(-1, keepdim=True).clamp_min(eps)


def block_leading_score(score: Tensor, block: int) -> Tensor:
    """S̃_i = S_{first(I)} for every token i of block I: each block's score read at its first token.

    Why, for causal models: the block rule reads σ_I = max_{i∈I} S_i, which for token i includes the
    scores of the later tokens of its own block, so a byte j could change whether an earlier query i
    of the same block attends (or takes the identity path). The first token of a block precedes every
    query of the block, so with S̃ every decision that reaches o_i depends on S_{≤i} only:
    σ̃_I = S_{first(I)}, keep(I, J) ⇔ S_{first(I)}·S_{first(J)} > τ (J ≤ I), active ⇔ σ̃_I·m̃_I > τ.
    The price: the gate is per block, not per token.
    """
    n = score.shape[-1]
    first = torch.arange(0, n, block, device=score.device)
    return score[..., first].repeat_interleave(block, dim=-1)[..., :n].contiguous()


class ScatteringAttention(nn.Module):
    """Multi-head attention pruned by the scattering score of the BK-Core Green function.

    ``forward(h, g)``: h [B, N, d_model] (Euclidean hidden state), g complex [B, N] (G_ii) →
    out [B, N, d_model] = W_o · o, with o from :func:`scattering_attention_core` on
    q = W_q h, k = W_k h, v = W_v h and S = :func:`scattering_score` (g). W_o has no bias, so out = 0 for
    inactive tokens and the residual ``h + out`` leaves them unchanged.

    ``causal=True`` (language models): keys j ≤ i only, S normalised by its running mean, and the block
    rule fed :func:`block_leading_score` (S) — every decision reaching o_i then depends on h_{≤i}, provided
    g does (the causal resolvent). ``causal=False``: the two-sided rule on S, for encoders.

    ``skipped_fraction`` (buffer) is a running mean (momentum 0.1, as BatchNorm) of the fraction of
    block pairs skipped, for reporting; ``last_stats`` holds the last :class:`BlockSparsityStats`.
    """

    def __init__(
        self,
        d_model: int,
        heads: int,
        tau: float,
        block: int = 128,
        causal: bool = False,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.d_model, self.heads, self.tau, self.block, self.causal = d_model, heads, float(tau), block, causal
        self.head_dim = d_model // heads
        self.momentum = momentum
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model, bias=False)
        self.register_buffer("skipped_fraction", torch.zeros(()))
        self.register_buffer("active_fraction", torch.ones(()))
        self.last_stats: BlockSparsityStats | None = None

    def forward(self, h: Tensor, g: Tensor) -> Tensor:
        bsz, n, _ = h.shape
        heads, dh = self.heads, self.head_dim

        def split(x: Tensor) -> Tensor:  # [B, N, d] → [B, H, N, Dh] (a strided view, no copy)
            return x.view(bsz, n, heads, dh).transpose(1, 2)

        q, k, v = split(self.w_q(h)), split(self.w_k(h)), split(self.w_v(h))
        s = scattering_score(g, causal=self.causal)
        if self.causal:
            s = block_leading_score(s, self.block)
        o, stats = scattering_attention_core(q, k, v, s, self.tau, self.block, self.causal, return_stats=True)
        with torch.no_grad():
            mom = self.momentum
            self.skipped_fraction.mul_(1 - mom).add_(mom * stats.skipped_fraction.mean())
            self.active_fraction.mul_(1 - mom).add_(mom * stats.active_fraction.mean())
        self.last_stats = stats
        return self.w_o(o.transpose(1, 2).reshape(bsz, n, self.d_model))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, heads={self.heads}, tau={self.tau}, block={self.block}, causal={self.causal}"
