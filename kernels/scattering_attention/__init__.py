r"""Scattering-gated block-sparse attention (reference README, 000 §1).

Layout (flash-linear-attention's ``fla/ops/<op>/``): :mod:`.naive` — the reference (the rule in plain
PyTorch); :mod:`.kernel` — the Triton kernels, launchers and tile tables; :mod:`.ops` — the custom op
``torch.ops.bkdsl.scattering_attention`` (fake and autograd registrations). :func:`scattering_attention_core`
makes the one dispatch decision per call; the Triton modules are imported only on that path.
:func:`active_tile` says which tile each kernel runs after any fallback (:mod:`bkdsl.kernels.tiles`).
"""

from __future__ import annotations

import importlib
import logging
import math
from types import ModuleType

import torch
from torch import Tensor

from bkdsl.kernels import dispatch, tiles
from bkdsl.kernels.scattering_attention.naive import (BlockSparsityStats, active_tokens, block_keep_mask,
                                                      block_scores, block_sparsity_stats,
                                                      scattering_attention_reference)

_log = logging.getLogger("bkdsl.nn.scattering_attention")

__all__ = ["scattering_attention_core", "scattering_attention_reference", "block_scores", "block_keep_mask",
           "active_tokens", "BlockSparsityStats", "block_sparsity_stats", "active_tile", "load_ops"]


def load_ops() -> ModuleType:
    """Register ``torch.ops.bkdsl.scattering_attention`` (imports Triton); returns the ops module."""
    return importlib.import_module("bkdsl.kernels.scattering_attention.ops")


def active_tile() -> dict:
    """The tile each attention kernel runs in this process, per shape class: ``{"scattering_attention.fwd
    (block, head_dim, causal, dtype, device)": Launch}`` — kernels launched with default tiles so far."""
    return tiles.active("scattering_attention")


def _kernel_supports(q: Tensor, k: Tensor, v: Tensor, block: int) -> bool:
    """Shapes the Triton kernel takes: one [B, H, N, D] shape and dtype (fp16, bf16, fp32) for q, k, v,
    D and the block powers of two with 16 ≤ D ≤ 128, block ≥ 16. Others run the reference (logged)."""
    d = q.shape[-1]
    ok = (
        q.dim() == 4
        and q.shape == k.shape == v.shape
        and q.dtype == k.dtype == v.dtype
        and q.dtype in (torch.float16, torch.bfloat16, torch.float32)
        and 16 <= d <= 128
        and not d & (d - 1)
        and block >= 16
        and not block & (block - 1)
    )
    if not ok:
        _log.warning(
            "scattering attention: q %s %s, block %d is outside the Triton kernel's shapes; using the "
            "O(N²) reference", tuple(q.shape), q.dtype, block,
        )
    return ok


def scattering_attention_core(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    score: Tensor,
    tau: float,
    block: int,
    causal: bool,
    scale: float | None = None,
    *,
    return_stats: bool = False,
) -> Tensor | tuple[Tensor, BlockSparsityStats]:
    """Scattering-gated block-sparse attention (rule in the module docstring) → o [B, H, N, D].

    Runs ``torch.ops.bkdsl.scattering_attention`` (Triton) where :func:`bkdsl.kernels.dispatch.use_triton`
    says so (CUDA, or ``BKDSL_KERNELS=triton``) and the kernel takes the shapes (see
    :func:`_kernel_supports`), else :func:`scattering_attention_reference`.
    With ``return_stats`` also returns :class:`BlockSparsityStats`. S receives no gradient.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if dispatch.use_triton(q, k, v, score) and _kernel_supports(q, k, v, block):
        o = load_ops().scattering_attention_triton(q, k, v, score, tau, block, causal, scale)
    else:
        o = scattering_attention_reference(q, k, v, score, tau, block, causal, scale)
    if return_stats:
        with torch.no_grad():
            return o, block_sparsity_stats(score.detach(), tau, block, causal)
    return o
