r"""The causal (retarded) resolvent diagonal G⁽ⁱ⁾_ii = 1/α_i in Triton: one left Möbius scan, O(N).

Specification: :func:`bkdsl.kernels.resolvent.naive.resolvent_diag_causal_reference` (G⁽ⁱ⁾_ii is the
diagonal of the resolvent of the leading block H[:i+1, :i+1], i.e. the left continued fraction
α_i = d_i − b_{i−1}²/α_{i−1} alone) and its Ā-sweep adjoint. The kernels reuse the two-sided kernel's
segmented sweeps (:mod:`bkdsl.kernels.resolvent.segmented`: compose each segment's Möbius maps, scan the
window's segments, re-sweep each segment from its seed with the sequential Schur step):

* forward: one sweep left to right that writes 1/α (``FINISH = RETARDED``) — half the two-sided kernel's
  work, same layout (SEG × SEGS per window, tile I/O);
* backward: the sweep recomputes α into scratch (8 B/site), then the Ā adjoint sweep (right to left,
  affine maps y ↦ q y + σ, q_i = b_i²/α_i², σ_i = −conj(g_i)/α_i²) writes ∂L/∂a_i = Re Ā_i and
  ∂L/∂b_i = Re(−2 b_i Ā_{i+1}/α_i).

The bound of the two-sided kernel carries over: every stored α comes from a sequential Schur step seeded
inside Im x ≤ −Im z, so Im α_i ≤ −Im z and |G⁽ⁱ⁾_ii| ≤ 1/Im z at any N. Output i reads a_{≤i}, b_{<i}
only (the sweep moves left to right; the scan composes maps of earlier segments only).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from bkdsl.kernels.resolvent.naive import check_inputs
from bkdsl.kernels.resolvent.segmented import (BLOCK_B, BWD_SEG, BWD_SEGS, IO, SEG, SEGS, _adjoint_segmented_sweep,
                                               _complex_dtype, _mobius_sweep, _program_rows, _z_tensor,
                                               layout_flags)

__all__ = ["resolvent_diag_causal_triton", "resolvent_diag_causal_backward_triton", "CAUSAL_SEG", "CAUSAL_SEGS",
           "CAUSAL_IO", "CAUSAL_BWD_SEG", "CAUSAL_BWD_SEGS"]

# Layouts: the two-sided kernel's measured ones (bench/results/2026-12-01-resolvent_layouts*.json), one
# sweep per pass instead of two; bench/resolvent.py times the causal kernel at them.
CAUSAL_SEG, CAUSAL_SEGS, CAUSAL_IO = SEG, SEGS, IO
CAUSAL_BWD_SEG, CAUSAL_BWD_SEGS = BWD_SEG, BWD_SEGS


@triton.jit
def _resolvent_causal_kernel(a_ptr, b_ptr, z_ptr, out_ptr, n_seq, n,
                             BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                             IO: tl.constexpr = 0,
                             EVEN: tl.constexpr = False, CH: tl.constexpr = 1):
    row64, row_live, zr, zi = _program_rows(z_ptr, n_seq, BLOCK_B)
    _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, False, 2, BLOCK_B, SEGS, SEG, IO,
                  EVEN, CH)  # FINISH = RETARDED: out = 1/α


@triton.jit
def _resolvent_causal_bwd_kernel(a_ptr, b_ptr, z_ptr, g_ptr, al_ptr, ga_ptr, gb_ptr, n_seq, n,
                                 BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                                 IO: tl.constexpr = 0,
                                 EVEN: tl.constexpr = False, CH: tl.constexpr = 1):
    row64, row_live, zr, zi = _program_rows(z_ptr, n_seq, BLOCK_B)
    _mobius_sweep(a_ptr, b_ptr, al_ptr, row64, row_live, n, zr, zi, False, False, BLOCK_B, SEGS, SEG, IO,
                  EVEN, CH)
    tl.debug_barrier()  # the adjoint sweep reads α written by other lanes
    _adjoint_segmented_sweep(a_ptr, b_ptr, g_ptr, al_ptr, al_ptr, ga_ptr, gb_ptr, row64, row_live, n, zr, zi,
                             True, BLOCK_B, SEGS, SEG, True)


def _warps(block_b: int, segs: int) -> int:
    return max(1, min(8, block_b * segs // 32))


def resolvent_diag_causal_triton(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                 seg: int = CAUSAL_SEG, segs: int = CAUSAL_SEGS, block_b: int = BLOCK_B,
                                 num_warps: int | None = None, out: torch.Tensor | None = None,
                                 io: str = CAUSAL_IO) -> torch.Tensor:
    """G⁽ⁱ⁾_ii by the one-sweep kernel (no autograd; see the custom op ``bkdsl::resolvent_diag_causal``).
    a [B, N], b [B, N−1] read in place; complex [B, N] written directly, into ``out`` if given."""
    check_inputs(a, b)
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    flags = layout_flags(n, seg, segs, io)
    if out is None:
        out = torch.empty(n_seq, n, dtype=_complex_dtype(a.dtype), device=a.device)
    _resolvent_causal_kernel[(triton.cdiv(n_seq, block_b),)](
        a, b, _z_tensor(a, z_re, z_im), torch.view_as_real(out), n_seq, n, BLOCK_B=block_b,
        num_warps=num_warps or _warps(block_b, flags["SEGS"]), **flags)
    return out


def resolvent_diag_causal_backward_triton(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                          grad: torch.Tensor, seg: int = CAUSAL_BWD_SEG,
                                          segs: int = CAUSAL_BWD_SEGS, block_b: int = BLOCK_B,
                                          num_warps: int | None = None,
                                          out: tuple[torch.Tensor, torch.Tensor] | None = None,
                                          io: str = "strided") -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) of the causal diagonal from ∂L/∂G (PyTorch's convention), into ``out`` if given;
    α is recomputed into scratch (8 B/site)."""
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    flags = layout_flags(n, seg, segs, io)
    g = torch.view_as_real(grad.to(_complex_dtype(a.dtype)).resolve_conj().contiguous())
    alpha = torch.empty(n_seq, n, 2, dtype=a.dtype, device=a.device)
    grad_a, grad_b = out if out is not None else (torch.empty_like(a), torch.empty_like(b))
    _resolvent_causal_bwd_kernel[(triton.cdiv(n_seq, block_b),)](
        a, b, _z_tensor(a, z_re, z_im), g, alpha, grad_a, grad_b, n_seq, n, BLOCK_B=block_b,
        num_warps=num_warps or _warps(block_b, flags["SEGS"]), **flags)
    return grad_a, grad_b
