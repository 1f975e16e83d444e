r"""The resolvent's benchmark peers and experimental variants (not on the production path, #14).

* The previous sequential kernels: one lane per sequence, site-major [N, B] copies of a and b, the α and
  β sweeps interleaved and meeting in the middle (docs/kernels_k1.md, "History").
* The forward variants of the segmented sweeps: packed 8-B complex I/O (``io="packed"``) and power-of-two
  renormalisation (``renorm="pow2"``), :func:`resolvent_diag_triton_variant` and its backward; the
  production module keeps only the measured layouts (strided, tile) and 1/max renormalisation.
* What a user would write with PyTorch alone (#20.5): prefix scans of the Möbius maps (causal and
  two-sided; doubling or ``associative_scan``) and the dense inverse.

Specification: :mod:`bkdsl.kernels.resolvent.naive`; the production kernels are
:mod:`bkdsl.kernels.resolvent.segmented` and :mod:`.causal`, which do not import this module.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch._higher_order_ops.associative_scan import associative_scan  # prototype API: a bench peer only

from bkdsl.kernels.resolvent.naive import check_inputs
from bkdsl.kernels.resolvent.segmented import (BLOCK_B, BWD_SEG, BWD_SEGS, SEG, SEGS, TILE_SITES,
                                               _adjoint_segmented_sweep, _cmul, _column, _complex_dtype,
                                               _compose_step, _inside, _load_step, _load_tile, _mobius_compose,
                                               _mobius_product, _pair_tile, _program_rows, _projective_ratio, _put,
                                               _re_over, _reciprocal, _schur_step, _segment_low, _sigma, _z_tensor,
                                               segment_layout)

__all__ = ["resolvent_diag_triton_sequential", "resolvent_diag_backward_triton_sequential",
           "resolvent_diag_causal_triton_sequential", "resolvent_diag_causal_doubling",
           "resolvent_diag_causal_associative_scan", "resolvent_diag_scan_parts",
           "resolvent_diag_dense_inverse", "resolvent_diag_triton_variant",
           "resolvent_diag_backward_triton_variant", "variant_flags", "IO_VARIANTS", "RENORMS", "BLOCK_SEQ", "CHUNK"]

# Sequential kernels (the backward, and the previous forward kept as a peer): one warp per program, one
# sequence per lane: 4096 sequences give 128 programs, about one per SM of an H200 (132 SMs).
BLOCK_SEQ = 32
CHUNK = 8
NUM_WARPS = 1


@triton.jit
def _at(i, n_seq, seq64):
    """Offset of site i of each lane's sequence in a site-major [N, B] array: i·B + seq."""
    return i.to(tl.int64) * n_seq + seq64


@triton.jit
def _resolvent_fwd_kernel(a_ptr, b_ptr, z_ptr, out_ptr, n_seq, n,
                          BLOCK_SEQ: tl.constexpr, CHUNK: tl.constexpr):
    pid = tl.program_id(0)
    seq = pid * BLOCK_SEQ + tl.arange(0, BLOCK_SEQ)
    live = seq < n_seq
    seq64 = seq.to(tl.int64)
    plane = (seq64 * 0 + n) * n_seq  # offset of the imaginary plane
    zr = tl.load(z_ptr)
    zi = tl.load(z_ptr + 1)
    one = tl.full([BLOCK_SEQ], 1.0, zr.dtype)
    nil = tl.zeros([BLOCK_SEQ], zr.dtype)
    # Site indices are carried as per-lane vectors (uniform across lanes) so that masks built from
    # them are tensors in the compiled kernel and in the interpreter alike.
    lane0 = tl.zeros([BLOCK_SEQ], tl.int32)
    # α_{-1} and β_{N} are placeholders: the hopping beyond the ends loads as 0, so they never count.
    al_r, al_i = one, nil
    be_r, be_i = one, nil
    half = n // 2

    # First half: sites i = k < N/2 (α) and j = N−1−k ≥ N − N/2 (β); park α_i and β_j in out.
    for k0 in range(0, half, CHUNK):
        for c in tl.static_range(CHUNK):
            k = lane0 + (k0 + c)
            valid = k < half
            i = k
            j = n - 1 - k
            m = live & valid
            a_i = tl.load(a_ptr + _at(i, n_seq, seq64), mask=m, other=0.0)
            b_l = tl.load(b_ptr + _at((i - 1), n_seq, seq64), mask=m & (i > 0), other=0.0)
            a_j = tl.load(a_ptr + _at(j, n_seq, seq64), mask=m, other=0.0)
            b_r = tl.load(b_ptr + _at(j, n_seq, seq64), mask=m & (j < n - 1), other=0.0)
            nr, ni = _schur_step(a_i - zr, nil - zi, b_l * b_l, al_r, al_i)
            al_r = tl.where(valid, nr, al_r)
            al_i = tl.where(valid, ni, al_i)
            nr, ni = _schur_step(a_j - zr, nil - zi, b_r * b_r, be_r, be_i)
            be_r = tl.where(valid, nr, be_r)
            be_i = tl.where(valid, ni, be_i)
            tl.store(out_ptr + _at(i, n_seq, seq64), al_r, mask=m)
            tl.store(out_ptr + plane + _at(i, n_seq, seq64), al_i, mask=m)
            tl.store(out_ptr + _at(j, n_seq, seq64), be_r, mask=m)
            tl.store(out_ptr + plane + _at(j, n_seq, seq64), be_i, mask=m)

    # The second half reads what other lanes of the block may have written (replicated layouts).
    tl.debug_barrier()

    # Second half: i = k ≥ N/2 finds β_i parked, j = N−1−k < N/2 finds α_j parked (for odd N the
    # middle site has i = j and both values in registers).
    for k0 in range(half, n, CHUNK):
        for c in tl.static_range(CHUNK):
            k = lane0 + (k0 + c)
            valid = k < n
            i = k
            j = n - 1 - k
            same = i == j
            apart = i != j
            m = live & valid
            a_i = tl.load(a_ptr + _at(i, n_seq, seq64), mask=m, other=0.0)
            b_l = tl.load(b_ptr + _at((i - 1), n_seq, seq64), mask=m & (i > 0), other=0.0)
            a_j = tl.load(a_ptr + _at(j, n_seq, seq64), mask=m, other=0.0)
            b_r = tl.load(b_ptr + _at(j, n_seq, seq64), mask=m & (j < n - 1), other=0.0)
            nr, ni = _schur_step(a_i - zr, nil - zi, b_l * b_l, al_r, al_i)
            al_r = tl.where(valid, nr, al_r)
            al_i = tl.where(valid, ni, al_i)
            nr, ni = _schur_step(a_j - zr, nil - zi, b_r * b_r, be_r, be_i)
            be_r = tl.where(valid, nr, be_r)
            be_i = tl.where(valid, ni, be_i)
            # G_i = 1 / (α_i + β_i − d_i), d_i = a_i − z
            pb_r = tl.load(out_ptr + _at(i, n_seq, seq64), mask=m & apart, other=1.0)
            pb_i = tl.load(out_ptr + plane + _at(i, n_seq, seq64), mask=m & apart, other=0.0)
            pb_r = tl.where(same, be_r, pb_r)
            pb_i = tl.where(same, be_i, pb_i)
            g_r, g_i = _reciprocal(al_r + pb_r - (a_i - zr), al_i + pb_i + zi)
            # G_j = 1 / (α_j + β_j − d_j), α_j parked in the first half
            pa_r = tl.load(out_ptr + _at(j, n_seq, seq64), mask=m & apart, other=1.0)
            pa_i = tl.load(out_ptr + plane + _at(j, n_seq, seq64), mask=m & apart, other=0.0)
            h_r, h_i = _reciprocal(pa_r + be_r - (a_j - zr), pa_i + be_i + zi)
            tl.store(out_ptr + _at(i, n_seq, seq64), g_r, mask=m)
            tl.store(out_ptr + plane + _at(i, n_seq, seq64), g_i, mask=m)
            tl.store(out_ptr + _at(j, n_seq, seq64), h_r, mask=m & apart)
            tl.store(out_ptr + plane + _at(j, n_seq, seq64), h_i, mask=m & apart)


@triton.jit
def _adjoint_step(s_r, s_i, b2, p_r, p_i, acc_r, acc_i):
    """σ + acc · b² / p² (complex p, real b²): one step of the adjoint recurrence."""
    p2_r = p_r * p_r - p_i * p_i
    p2_i = 2.0 * p_r * p_i
    scale = b2 / (p2_r * p2_r + p2_i * p2_i)
    # b²/p² = b² conj(p²) / |p²|²
    q_r = p2_r * scale
    q_i = -p2_i * scale
    return s_r + acc_r * q_r - acc_i * q_i, s_i + acc_r * q_i + acc_i * q_r


@triton.jit
def _resolvent_bwd_kernel(a_ptr, b_ptr, z_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, n_seq, n,
                          BLOCK_SEQ: tl.constexpr, CHUNK: tl.constexpr):
    pid = tl.program_id(0)
    seq = pid * BLOCK_SEQ + tl.arange(0, BLOCK_SEQ)
    live = seq < n_seq
    seq64 = seq.to(tl.int64)
    plane = (seq64 * 0 + n) * n_seq  # offset of the imaginary plane
    zr = tl.load(z_ptr)
    zi = tl.load(z_ptr + 1)
    one = tl.full([BLOCK_SEQ], 1.0, zr.dtype)
    nil = tl.zeros([BLOCK_SEQ], zr.dtype)
    # Site indices are carried as per-lane vectors (uniform across lanes) so that masks built from
    # them are tensors in the compiled kernel and in the interpreter alike.
    lane0 = tl.zeros([BLOCK_SEQ], tl.int32)

    # Pass 1: α and β everywhere, into scratch (the interleaved forward sweeps, no meeting).
    al_r, al_i = one, nil
    be_r, be_i = one, nil
    for k0 in range(0, n, CHUNK):
        for c in tl.static_range(CHUNK):
            k = lane0 + (k0 + c)
            valid = k < n
            i = k
            j = n - 1 - k
            m = live & valid
            a_i = tl.load(a_ptr + _at(i, n_seq, seq64), mask=m, other=0.0)
            b_l = tl.load(b_ptr + _at((i - 1), n_seq, seq64), mask=m & (i > 0), other=0.0)
            a_j = tl.load(a_ptr + _at(j, n_seq, seq64), mask=m, other=0.0)
            b_r = tl.load(b_ptr + _at(j, n_seq, seq64), mask=m & (j < n - 1), other=0.0)
            al_r, al_i = _schur_step(a_i - zr, nil - zi, b_l * b_l, al_r, al_i)
            be_r, be_i = _schur_step(a_j - zr, nil - zi, b_r * b_r, be_r, be_i)
            tl.store(al_ptr + _at(i, n_seq, seq64), al_r, mask=m)
            tl.store(al_ptr + plane + _at(i, n_seq, seq64), al_i, mask=m)
            tl.store(be_ptr + _at(j, n_seq, seq64), be_r, mask=m)
            tl.store(be_ptr + plane + _at(j, n_seq, seq64), be_i, mask=m)
    tl.debug_barrier()

    # Pass 2: Ā from the right (site i = N−1−k) and B̄ from the left (site j = k), meeting in the
    # middle on grad_a / grad_b: the first half writes each sweep's share, the second adds the other's.
    A_r, A_i = nil, nil  # Ā_{i+1}
    B_r, B_i = nil, nil  # B̄_{j−1}
    half = n // 2
    for k0 in range(0, half, CHUNK):
        for c in tl.static_range(CHUNK):
            A_r, A_i, B_r, B_i = _adjoint_pair(lane0 + (k0 + c), half, True, a_ptr, b_ptr, g_ptr, al_ptr,
                                               be_ptr, ga_ptr, gb_ptr, seq64, n_seq, plane, live, n, zr, zi,
                                               A_r, A_i, B_r, B_i)
    tl.debug_barrier()
    for k0 in range(half, n, CHUNK):
        for c in tl.static_range(CHUNK):
            A_r, A_i, B_r, B_i = _adjoint_pair(lane0 + (k0 + c), n, False, a_ptr, b_ptr, g_ptr, al_ptr,
                                               be_ptr, ga_ptr, gb_ptr, seq64, n_seq, plane, live, n, zr, zi,
                                               A_r, A_i, B_r, B_i)


@triton.jit
def _adjoint_pair(k, stop, FIRST: tl.constexpr, a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr,
                  seq64, n_seq, plane, live, n, zr, zi, A_r, A_i, B_r, B_i):
    """Step k of both adjoint sweeps: Ā at site i = N−1−k, B̄ at site j = k (no-op for k ≥ stop).

    In the first half (FIRST) each sweep stores its share of ∂L/∂a and ∂L/∂b; in the second it adds
    the share the other sweep stored there earlier (at the middle site of an odd N, i = j and both
    shares are in registers).
    """
    valid = k < stop
    i = n - 1 - k
    j = k
    same = i == j
    apart = i != j
    m = live & valid
    # --- Ā at site i
    al_r = tl.load(al_ptr + _at(i, n_seq, seq64), mask=m, other=1.0)
    al_i = tl.load(al_ptr + plane + _at(i, n_seq, seq64), mask=m, other=0.0)
    be_r = tl.load(be_ptr + _at(i, n_seq, seq64), mask=m, other=1.0)
    be_i = tl.load(be_ptr + plane + _at(i, n_seq, seq64), mask=m, other=0.0)
    a_i = tl.load(a_ptr + _at(i, n_seq, seq64), mask=m, other=0.0)
    g_r = tl.load(g_ptr + _at(i, n_seq, seq64), mask=m, other=0.0)
    g_i = tl.load(g_ptr + plane + _at(i, n_seq, seq64), mask=m, other=0.0)
    b_i = tl.load(b_ptr + _at(i, n_seq, seq64), mask=m & (i < n - 1), other=0.0)
    s_r, s_i = _sigma(al_r, al_i, be_r, be_i, a_i, zr, zi, g_r, g_i)
    # ∂L/∂b_i share Re(−2 b_i Ā_{i+1} / α_i), Ā_{i+1} being the running value before this step
    gb_A = -2.0 * b_i * _re_over(A_r, A_i, al_r, al_i)
    nr, ni = _adjoint_step(s_r, s_i, b_i * b_i, al_r, al_i, A_r, A_i)
    A_r = tl.where(valid, nr, A_r)
    A_i = tl.where(valid, ni, A_i)
    ga_A = A_r - s_r
    # --- B̄ at site j
    al_r = tl.load(al_ptr + _at(j, n_seq, seq64), mask=m, other=1.0)
    al_i = tl.load(al_ptr + plane + _at(j, n_seq, seq64), mask=m, other=0.0)
    be_r = tl.load(be_ptr + _at(j, n_seq, seq64), mask=m, other=1.0)
    be_i = tl.load(be_ptr + plane + _at(j, n_seq, seq64), mask=m, other=0.0)
    a_j = tl.load(a_ptr + _at(j, n_seq, seq64), mask=m, other=0.0)
    g_r = tl.load(g_ptr + _at(j, n_seq, seq64), mask=m, other=0.0)
    g_i = tl.load(g_ptr + plane + _at(j, n_seq, seq64), mask=m, other=0.0)
    b_jl = tl.load(b_ptr + _at((j - 1), n_seq, seq64), mask=m & (j > 0), other=0.0)
    b_j = tl.load(b_ptr + _at(j, n_seq, seq64), mask=m & (j < n - 1), other=0.0)
    bn_r = tl.load(be_ptr + _at(j + 1, n_seq, seq64), mask=m & (j < n - 1), other=1.0)
    bn_i = tl.load(be_ptr + plane + _at(j + 1, n_seq, seq64), mask=m & (j < n - 1), other=0.0)
    s_r, s_i = _sigma(al_r, al_i, be_r, be_i, a_j, zr, zi, g_r, g_i)
    nr, ni = _adjoint_step(s_r, s_i, b_jl * b_jl, be_r, be_i, B_r, B_i)
    B_r = tl.where(valid, nr, B_r)
    B_i = tl.where(valid, ni, B_i)
    ga_B = B_r
    # ∂L/∂b_j share Re(−2 b_j B̄_j / β_{j+1})
    gb_B = -2.0 * b_j * _re_over(B_r, B_i, bn_r, bn_i)
    # --- meet in the middle
    if FIRST:
        ga_i = ga_A
        gb_i = gb_A
        ga_j = ga_B
        gb_j = gb_B
    else:
        later = m & apart
        ga_i = ga_A + tl.where(same, ga_B, tl.load(ga_ptr + _at(i, n_seq, seq64), mask=later, other=0.0))
        gb_i = gb_A + tl.where(same, gb_B, tl.load(gb_ptr + _at(i, n_seq, seq64), mask=later & (i < n - 1),
                                                  other=0.0))
        ga_j = ga_B + tl.load(ga_ptr + _at(j, n_seq, seq64), mask=later, other=0.0)
        gb_j = gb_B + tl.load(gb_ptr + _at(j, n_seq, seq64), mask=later & (j < n - 1), other=0.0)
    tl.store(ga_ptr + _at(i, n_seq, seq64), ga_i, mask=m)
    tl.store(gb_ptr + _at(i, n_seq, seq64), gb_i, mask=m & (i < n - 1))
    tl.store(ga_ptr + _at(j, n_seq, seq64), ga_j, mask=m & apart)
    tl.store(gb_ptr + _at(j, n_seq, seq64), gb_j, mask=m & apart & (j < n - 1))
    return A_r, A_i, B_r, B_i


def _site_major(x: torch.Tensor) -> torch.Tensor:
    """[B, N] → [N, B] contiguous: one step of all lanes then reads one contiguous line."""
    return x.t().contiguous()


def resolvent_diag_triton_sequential(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                     block_seq: int = BLOCK_SEQ, chunk: int = CHUNK,
                                     num_warps: int = NUM_WARPS) -> torch.Tensor:
    """G_ii by the previous kernel (one lane per sequence, site-major copies); kept as the bench's peer."""
    check_inputs(a, b)
    n_seq, n = a.shape
    planes = torch.empty(2, n, n_seq, dtype=a.dtype, device=a.device)  # (re, im) × site × sequence
    grid = (triton.cdiv(n_seq, block_seq),)
    _resolvent_fwd_kernel[grid](_site_major(a), _site_major(b), _z_tensor(a, z_re, z_im), planes, n_seq, n,
                                BLOCK_SEQ=block_seq, CHUNK=chunk, num_warps=num_warps)
    out = torch.empty(n_seq, n, dtype=_complex_dtype(a.dtype), device=a.device)
    torch.view_as_real(out).copy_(planes.permute(2, 1, 0))
    return out


def resolvent_diag_backward_triton_sequential(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                              grad: torch.Tensor, block_seq: int = BLOCK_SEQ,
                                              chunk: int = CHUNK, num_warps: int = NUM_WARPS
                                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) by the previous sequential adjoint kernel; kept as the bench's peer."""
    n_seq, n = a.shape
    cdt = _complex_dtype(a.dtype)
    g = torch.view_as_real(grad.to(cdt).resolve_conj()).permute(2, 1, 0).contiguous()  # [2, N, B]
    alpha = torch.empty(2, n, n_seq, dtype=a.dtype, device=a.device)
    beta = torch.empty_like(alpha)
    grad_a = torch.empty(n, n_seq, dtype=a.dtype, device=a.device)
    grad_b = torch.empty(max(n - 1, 0), n_seq, dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(n_seq, block_seq),)
    _resolvent_bwd_kernel[grid](_site_major(a), _site_major(b), _z_tensor(a, z_re, z_im), g, alpha, beta,
                                grad_a, grad_b, n_seq, n, BLOCK_SEQ=block_seq, CHUNK=chunk,
                                num_warps=num_warps)
    return grad_a.t().contiguous(), grad_b.t().contiguous()


# --- the causal diagonal's peers --------------------------------------------------------------------


@triton.jit
def _causal_sequential_kernel(a_ptr, b_ptr, z_ptr, out_ptr, n_seq, n, BLOCK_SEQ: tl.constexpr):
    """One lane per sequence, the Schur step site after site, writing 1/α (a, b, G as [B, N])."""
    seq = tl.program_id(0) * BLOCK_SEQ + tl.arange(0, BLOCK_SEQ)
    live = seq < n_seq
    row = seq.to(tl.int64)
    zr = tl.load(z_ptr)
    zi = tl.load(z_ptr + 1)
    nil = tl.zeros([BLOCK_SEQ], zr.dtype)
    lane0 = tl.zeros([BLOCK_SEQ], tl.int32)
    x_r, x_i = nil + 1.0, nil
    for i in range(0, n):
        k = lane0 + i
        a = tl.load(a_ptr + row * n + k, mask=live, other=0.0)
        hop = tl.load(b_ptr + row * (n - 1) + k - 1, mask=live & (k > 0), other=0.0)
        x_r, x_i = _schur_step(a - zr, nil - zi, hop * hop, x_r, x_i)
        g_r, g_i = _reciprocal(x_r, x_i)
        tl.store(out_ptr + 2 * (row * n + k), g_r, mask=live)
        tl.store(out_ptr + 2 * (row * n + k) + 1, g_i, mask=live)


def resolvent_diag_causal_triton_sequential(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                            block_seq: int = BLOCK_SEQ, num_warps: int = NUM_WARPS) -> torch.Tensor:
    """G⁽ⁱ⁾_ii by the plain sequential kernel (one lane per sequence, N dependent steps): the peer the
    segmented causal kernel must beat."""
    check_inputs(a, b)
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    out = torch.empty(n_seq, n, dtype=_complex_dtype(a.dtype), device=a.device)
    _causal_sequential_kernel[(triton.cdiv(n_seq, block_seq),)](a, b, _z_tensor(a, z_re, z_im),
                                                              torch.view_as_real(out), n_seq, n,
                                                              BLOCK_SEQ=block_seq, num_warps=num_warps)
    return out


def _mobius_maps(a: torch.Tensor, b: torch.Tensor, z: complex) -> tuple[torch.Tensor, ...]:
    """The transfer matrices M_i = [[d_i, −b_{i−1}²], [1, 0]] (b_{−1} = 0) as 8 real [B, N] tensors
    (re, im of m00, m01, m10, m11): complex-free, so Triton code generation (torch.compile) accepts them."""
    zero = torch.zeros_like(a)
    b2 = torch.cat([zero[:, :1], b * b], 1)
    return (a - z.real, zero - z.imag, -b2, zero, zero + 1.0, zero, zero, zero)


def _mobius_combine(x: tuple[torch.Tensor, ...], y: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Y·X (X the earlier maps) divided by its largest |entry| (projective, so free): pointwise ops only."""
    x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i = x
    y00r, y00i, y01r, y01i, y10r, y10i, y11r, y11i = y
    r = (y00r * x00r - y00i * x00i + y01r * x10r - y01i * x10i,
         y00r * x00i + y00i * x00r + y01r * x10i + y01i * x10r,
         y00r * x01r - y00i * x01i + y01r * x11r - y01i * x11i,
         y00r * x01i + y00i * x01r + y01r * x11i + y01i * x11r,
         y10r * x00r - y10i * x00i + y11r * x10r - y11i * x10i,
         y10r * x00i + y10i * x00r + y11r * x10i + y11i * x10r,
         y10r * x01r - y10i * x01i + y11r * x11r - y11i * x11i,
         y10r * x01i + y10i * x01r + y11r * x11i + y11i * x11r)
    m = r[0].abs()
    for t in r[1:]:
        m = torch.maximum(m, t.abs())
    s = 1.0 / m
    return tuple(t * s for t in r)


def _retarded_from_prefix(p: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """G⁽ⁱ⁾_ii = 1/α_i with [α_i; 1] ∝ P_i [1; 0], i.e. G = P_10 / P_00."""
    num = torch.complex(p[4], p[5])
    den = torch.complex(p[0], p[1])
    return num / den


def resolvent_diag_causal_doubling(a: torch.Tensor, b: torch.Tensor, z: complex) -> torch.Tensor:
    """G⁽ⁱ⁾_ii by a Hillis–Steele prefix product of the Möbius maps in plain PyTorch (⌈log₂ N⌉ doubling
    steps, O(N log N) work, differentiable by autograd): what a user writes for a parallel scan, and what
    torch.compile fuses. Precision: the prefix products are renormalised but not re-swept, so float32
    errors grow with the condition of the product (the bench records them)."""
    p = _mobius_maps(a, b, z)
    n, shift = a.shape[1], 1
    while shift < n:
        earlier = tuple(torch.cat([torch.ones_like(t[:, :shift]) if k in (0, 6) else torch.zeros_like(t[:, :shift]),
                                   t[:, :-shift]], 1) for k, t in enumerate(p))  # identity before the chain
        p = _mobius_combine(earlier, p)
        shift *= 2
    return _retarded_from_prefix(p)


def resolvent_diag_causal_associative_scan(a: torch.Tensor, b: torch.Tensor, z: complex,
                                           combine_mode: str = "pointwise") -> torch.Tensor:
    """G⁽ⁱ⁾_ii by ``torch._higher_order_ops.associative_scan`` over the Möbius maps (forward only: the
    prototype has no autograd; ``combine_mode="pointwise"`` needs CUDA and torch.compile)."""
    return _retarded_from_prefix(associative_scan(_mobius_combine, _mobius_maps(a, b, z), 1,
                                                  combine_mode=combine_mode))


# --- the two-sided diagonal's peers (issue #20.5): what a user would write with PyTorch alone -------------


def _alpha_parts(p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """α_i = P_00 / P_10 (re, im) from the prefix products ([α_i; 1] ∝ P_i [1; 0]), in real arithmetic."""
    den = p[4] * p[4] + p[5] * p[5]
    return (p[0] * p[4] + p[1] * p[5]) / den, (p[1] * p[4] - p[0] * p[5]) / den


def _doubling_prefix(p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Hillis–Steele prefix product of the maps along dim 1 (⌈log₂ N⌉ steps, differentiable)."""
    n, shift = p[0].shape[1], 1
    while shift < n:
        earlier = tuple(torch.cat([torch.ones_like(t[:, :shift]) if k in (0, 6) else torch.zeros_like(t[:, :shift]),
                                   t[:, :-shift]], 1) for k, t in enumerate(p))
        p = _mobius_combine(earlier, p)
        shift *= 2
    return p


def resolvent_diag_scan_parts(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                              scan: str = "doubling") -> tuple[torch.Tensor, torch.Tensor]:
    r"""(Re G_ii, Im G_ii) of the two-sided diagonal by two prefix scans of the Möbius maps, real tensors
    only (so torch.compile's code generation accepts it; ``torch.complex`` of the pair is the answer).

    α_i = d_i − b²_{i−1}/α_{i−1} is the prefix product of M_i = [[d_i, −b²_{i−1}], [1, 0]] (d = a − z);
    β_i = d_i − b²_i/β_{i+1} the same on the reversed chain; G_ii = 1/(α_i + β_i − d_i).
    ``scan="doubling"``: Hillis–Steele in plain ops (forward and backward by autograd);
    ``scan="associative"``: ``torch._higher_order_ops.associative_scan`` (pointwise combine on CUDA, under
    torch.compile; the generic combine elsewhere). Precision: renormalised float32 prefix products, not
    re-swept — the bench records the error against float64.
    """
    def prefix(a_, b_):
        maps = _mobius_maps(a_, b_, complex(z_re, z_im))
        if scan == "associative":
            return associative_scan(_mobius_combine, maps, 1, combine_mode="pointwise" if a_.is_cuda else "generic")
        if scan != "doubling":
            raise ValueError(f"scan must be 'doubling' or 'associative', got {scan!r}")
        return _doubling_prefix(maps)

    al_r, al_i = _alpha_parts(prefix(a, b))
    be_r, be_i = _alpha_parts(prefix(a.flip(1), b.flip(1)))
    s_r = al_r + be_r.flip(1) - (a - z_re)
    s_i = al_i + be_i.flip(1) + z_im
    den = s_r * s_r + s_i * s_i
    return s_r / den, -s_i / den


def resolvent_diag_dense_inverse(a: torch.Tensor, b: torch.Tensor, z: complex) -> torch.Tensor:
    """G_ii from the dense inverse of H − zI (``torch.linalg.inv``, LU in the input's complex dtype):
    PyTorch has no banded or tridiagonal solver, and the diagonal of the inverse needs N right-hand sides,
    so the linear-algebra route is O(N³) per chain (O(N²) memory) — the bench runs it on a few chains."""
    cdt = _complex_dtype(a.dtype)
    h = (torch.diag_embed(a.to(cdt) - z) + torch.diag_embed(b.to(cdt), 1) + torch.diag_embed(b.to(cdt), -1))
    return torch.linalg.inv(h).diagonal(dim1=-2, dim2=-1)


# --- the forward variants of the segmented sweeps (#14: out of the production module) --------------------
#
# The measured production kernels (segmented.py) renormalise by 1/max and move data strided or as tiles.
# These are the general sweeps the layout benchmark (bench/resolvent_layouts.py) sweeps, with the two
# switches the production path dropped: ``io="packed"`` (each complex value one 8-B pair) and
# ``renorm="pow2"`` (renormalise by powers of two made from the exponent bits); ``io`` "strided" and "tile"
# and ``renorm="max"`` give the production arithmetic. The shared steps (compose, Schur step, tile
# loads, adjoint sweeps) are imported from segmented.py, so a variant differs from production only where it
# says so.

# strided 4-B accesses per step / packed 8-B complex pairs / tile I/O per window
IO_VARIANTS = ("strided", "packed", "tile")
RENORMS = ("max", "pow2")


@triton.jit
def _scale_of(m, POW2: tl.constexpr):
    """The factor that brings a matrix's largest |real or imaginary part| m to about 1: 1/m, or with
    POW2 the power of two 2^(−⌊log₂ m⌋) made from m's exponent bits (scaled max in [1, 2); integer ops
    and an exact multiply instead of MUFU.RCP + a rounding FMUL). The exponent field is clamped to the
    normal range; m is never 0 (the maps are never the zero matrix) and never near the overflow bound."""
    if POW2:
        if m.dtype == tl.float64:
            e = (m.to(tl.int64, bitcast=True) >> 52) & 0x7FF
            s = (tl.minimum(tl.maximum(2046 - e, 1), 2046) << 52).to(tl.float64, bitcast=True)
        else:
            e = (m.to(tl.int32, bitcast=True) >> 23) & 0xFF
            s = (tl.minimum(tl.maximum(254 - e, 1), 254) << 23).to(tl.float32, bitcast=True)
    else:
        s = 1.0 / tl.maximum(m, 1e-30)  # m = 0 only for the zero matrix, which the maps never produce
    return s


@triton.jit
def _renormalise(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, POW2: tl.constexpr):
    """The 2×2 complex matrix divided by its largest |real or imaginary part| (projective: free); with
    POW2 by the power of two just below it (see :func:`_scale_of`)."""
    m = tl.maximum(tl.maximum(tl.maximum(tl.abs(p00r), tl.abs(p00i)), tl.maximum(tl.abs(p01r), tl.abs(p01i))),
                   tl.maximum(tl.maximum(tl.abs(p10r), tl.abs(p10i)), tl.maximum(tl.abs(p11r), tl.abs(p11i))))
    s = _scale_of(m, POW2)
    return p00r * s, p00i * s, p01r * s, p01i * s, p10r * s, p10i * s, p11r * s, p11i * s


@triton.jit
def _mobius_compose_pow2(x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i,
                         y00r, y00i, y01r, y01i, y10r, y10i, y11r, y11i):
    """Scan combine as :func:`_mobius_compose`, renormalised by a power of two (exact)."""
    r00r, r00i, r01r, r01i, r10r, r10i, r11r, r11i = _mobius_product(
        x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i, y00r, y00i, y01r, y01i, y10r, y10i, y11r, y11i)
    return _renormalise(r00r, r00i, r01r, r01i, r10r, r10i, r11r, r11i, True)


@triton.jit
def _window_seeds(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, c_r, c_i, zi, seg, zero,
                  SEGS: tl.constexpr, POW2: tl.constexpr):
    """Phase 2: the scan over the window's segment maps P_s gives Q_s = P_s ⋯ P_0; x_s = Q_s·[c; 1]
    (projectively) is the Schur complement at the end of segment s, projected onto Im x ≤ −Im z where the
    exact value lies. Lane SEGS − 1, which re-sweeps segment 0, gets the carry c itself."""
    if POW2:
        q00r, q00i, q01r, q01i, q10r, q10i, q11r, q11i = tl.associative_scan(
            _renormalise(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, True), 1, _mobius_compose_pow2)
    else:
        q00r, q00i, q01r, q01i, q10r, q10i, q11r, q11i = tl.associative_scan(
            _renormalise(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, False), 1, _mobius_compose)
    u_r, u_i = _cmul(q00r, q00i, c_r, c_i)
    u_r += q01r
    u_i += q01i
    v_r, v_i = _cmul(q10r, q10i, c_r, c_i)
    v_r += q11r
    v_i += q11i
    x_r, x_i = _projective_ratio(u_r, u_i, v_r, v_i)
    x_i = tl.minimum(x_i, -zi)
    x_r = tl.where(seg == SEGS - 1, c_r + zero, x_r)
    x_i = tl.where(seg == SEGS - 1, c_i + zero, x_i)
    return x_r, x_i


@triton.jit
def _load_pair(at, valid, PACKED: tl.constexpr):
    """(re, im) at the complex slots at (float pointers to re; im follows): two 4-B loads, or with PACKED
    one 8-B load of the [..., 2] pair tile, split after the load."""
    if PACKED:
        pair = tl.load(at[:, :, None] + tl.arange(0, 2)[None, None, :], mask=valid[:, :, None], other=1.0)
        re, im = tl.split(pair)
    else:
        re = tl.load(at, mask=valid, other=1.0)
        im = tl.load(at + 1, mask=valid, other=0.0)
    return re, im


@triton.jit
def _store_pair(at, re, im, valid, PACKED: tl.constexpr):
    """Store (re, im) to the complex slots at: two 4-B stores, or with PACKED one 8-B store of
    tl.join(re, im)."""
    if PACKED:
        tl.store(at[:, :, None] + tl.arange(0, 2)[None, None, :], tl.join(re, im), mask=valid[:, :, None])
    else:
        tl.store(at, re, mask=valid)
        tl.store(at + 1, im, mask=valid)


@triton.jit
def _segmented_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR: tl.constexpr,
                     FINISH: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                     PACKED: tl.constexpr = False, POW2: tl.constexpr = False):
    """One Schur sweep over all windows: α (left to right) or, if MIRROR, β (right to left). FINISH says
    what the sweep writes to out (complex, re/im interleaved): PARK (0) its Schur complements; TWO_SIDED
    (1) G = 1/(α + β − d) over the α that out holds already; RETARDED (2) the causal diagonal 1/α. Every access is per step and lane
    (stride SEG between lanes); PACKED moves each complex value as one 8-B pair, POW2 renormalises by
    powers of two."""
    seg = tl.arange(0, SEGS)[None, :]                 # [1, SEGS]
    target = (seg + 1) % SEGS                         # the segment a lane re-sweeps
    carry_lane = (2 * SEGS - 2) % SEGS                # the lane that re-sweeps the last segment
    zero = tl.zeros([BLOCK_B, SEGS], zr.dtype)
    one = zero + 1.0
    # carry c = the Schur complement before the window; before the chain it multiplies b_{−1} = 0
    c_r = tl.zeros([BLOCK_B, 1], zr.dtype) + 1.0
    c_i = tl.zeros([BLOCK_B, 1], zr.dtype)
    for w0 in range(0, n, SEGS * SEG):
        # 1. compose each segment's maps: P ← M_k P, M_k = [[d_k, −b²_k], [1, 0]]
        p00r, p00i, p01r, p01i = one, zero, zero, zero
        p10r, p10i, p11r, p11i = zero, zero, one, zero
        # A runtime loop, two steps per trip (renormalised after each pair): a fully unrolled segment
        # made Triton's coalescing pass (one def-use slice of the whole kernel per load/store) take
        # minutes to compile. For odd SEG the second step of the last trip is masked off (identity);
        # the extra renormalisation it brings is exact (max |entry| is 1 already).
        for t in range(0, SEG, 2):
            for u in tl.static_range(2):
                dr, b2, site, valid = _load_step(a_ptr, b_ptr, row64, row_live, w0 + seg * SEG + t + u, n, zr,
                                                 MIRROR)
                if SEG % 2 == 1:
                    valid = valid & (t + u < SEG)
                p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i = _compose_step(
                    dr, b2, valid, zi, p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i)
            p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i = _renormalise(
                p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, POW2)
        # 2. scan over the window's segments, then act on [c; 1]
        x_r, x_i = _window_seeds(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, c_r, c_i, zi, seg, zero,
                                 SEGS, POW2)
        # 3. re-sweep segment target(s) with the Schur step from the seed (a runtime loop, as above)
        for t in range(SEG):
            dr, b2, site, valid = _load_step(a_ptr, b_ptr, row64, row_live, w0 + target * SEG + t, n, zr,
                                             MIRROR)
            nr, ni = _schur_step(dr, zero - zi, b2, x_r, x_i)
            x_r = tl.where(valid, nr, x_r)
            x_i = tl.where(valid, ni, x_i)
            at = out_ptr + 2 * (row64 * n + site)
            if FINISH == 1:
                al_r, al_i = _load_pair(at, valid, PACKED)
                g_r, g_i = _reciprocal(al_r + x_r - dr, al_i + x_i + zi)
                _store_pair(at, g_r, g_i, valid, PACKED)
            elif FINISH == 2:
                g_r, g_i = _reciprocal(x_r, x_i)
                _store_pair(at, g_r, g_i, valid, PACKED)
            else:
                _store_pair(at, x_r, x_i, valid, PACKED)
        c_r = tl.sum(tl.where(seg == carry_lane, x_r, 0.0), axis=1, keep_dims=True)
        c_i = tl.sum(tl.where(seg == carry_lane, x_i, 0.0), axis=1, keep_dims=True)


@triton.jit
def _segmented_sweep_tile(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR: tl.constexpr,
                          FINISH: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                          POW2: tl.constexpr, EVEN: tl.constexpr, CH: tl.constexpr):
    """:func:`_segmented_sweep` with tile I/O (see above); the arithmetic is the same step for step.
    A segment moves in chunks of CH = min(SEG, TILE_SITES) sites, each one [BLOCK_B, SEGS, CH] tile (a
    16-B access per lane and array) that a thread holds whole, so the column splits are free; wider
    tiles spread a lane's sites over threads and cost layout conversions through shared memory. The
    re-sweep loads chunk c+1 before it stores chunk c."""
    NCH: tl.constexpr = SEG // CH
    seg = tl.arange(0, SEGS)[None, :]
    target = (seg + 1) % SEGS
    carry_lane = (2 * SEGS - 2) % SEGS
    zero = tl.zeros([BLOCK_B, SEGS], zr.dtype)
    one = zero + 1.0
    row3 = row64[:, :, None]
    live3 = row_live[:, :, None]
    c_r = tl.zeros([BLOCK_B, 1], zr.dtype) + 1.0
    c_i = tl.zeros([BLOCK_B, 1], zr.dtype)
    for w0 in range(0, n, SEGS * SEG):
        # 1. compose from the window's a, b chunks
        first = w0 + seg[:, :, None] * SEG
        p00r, p00i, p01r, p01i = one, zero, zero, zero
        p10r, p10i, p11r, p11i = zero, zero, one, zero
        for c in tl.static_range(NCH):
            d_t, b2_t = _load_tile(a_ptr, b_ptr, row3, live3, _segment_low(first + c * CH, n, MIRROR, CH), n, zr,
                                   MIRROR, CH, EVEN)
            for u in tl.static_range(CH):
                p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i = _compose_step(
                    _column(d_t, u, MIRROR, CH), _column(b2_t, u, MIRROR, CH),
                    row_live & (w0 + seg * SEG + (c * CH + u) < n), zi, p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i)
                if u % 2 == 1:
                    p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i = _renormalise(
                        p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, POW2)
        # 2. seeds
        x_r, x_i = _window_seeds(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, c_r, c_i, zi, seg, zero,
                                 SEGS, POW2)
        # 3. re-sweep the target segments chunk by chunk; each chunk's results leave as one complex tile
        first = w0 + target[:, :, None] * SEG
        low = _segment_low(first, n, MIRROR, CH)
        d_t, b2_t = _load_tile(a_ptr, b_ptr, row3, live3, low, n, zr, MIRROR, CH, EVEN)
        at, inside = _pair_tile(out_ptr, row3, live3, low, n, CH, EVEN)
        if FINISH == 1:
            al_t = tl.load(at, mask=inside, other=1.0)
        for c in tl.static_range(NCH):
            if c + 1 < NCH:  # prefetch chunk c+1: no load of it waits for chunk c's store
                low_n = _segment_low(first + (c + 1) * CH, n, MIRROR, CH)
                d_n, b2_n = _load_tile(a_ptr, b_ptr, row3, live3, low_n, n, zr, MIRROR, CH, EVEN)
                at_n, inside_n = _pair_tile(out_ptr, row3, live3, low_n, n, CH, EVEN)
                if FINISH == 1:
                    al_n = tl.load(at_n, mask=inside_n, other=1.0)
            if FINISH == 1:
                al_r_t, al_i_t = tl.split(tl.reshape(al_t, [BLOCK_B, SEGS, CH, 2]))
            res_r = tl.zeros([BLOCK_B, SEGS, CH], zr.dtype)
            res_i = tl.zeros([BLOCK_B, SEGS, CH], zr.dtype)
            for u in tl.static_range(CH):
                dr = _column(d_t, u, MIRROR, CH)
                nr, ni = _schur_step(dr, zero - zi, _column(b2_t, u, MIRROR, CH), x_r, x_i)
                valid = row_live & (w0 + target * SEG + (c * CH + u) < n)
                x_r = tl.where(valid, nr, x_r)
                x_i = tl.where(valid, ni, x_i)
                if FINISH == 1:
                    y_r, y_i = _reciprocal(_column(al_r_t, u, MIRROR, CH) + x_r - dr,
                                           _column(al_i_t, u, MIRROR, CH) + x_i + zi)
                elif FINISH == 2:
                    y_r, y_i = _reciprocal(x_r, x_i)
                else:
                    y_r, y_i = x_r, x_i
                res_r = _put(res_r, y_r, u, MIRROR, CH)
                res_i = _put(res_i, y_i, u, MIRROR, CH)
            tl.store(at, tl.reshape(tl.join(res_r, res_i), [BLOCK_B, SEGS, 2 * CH]), mask=inside)
            if c + 1 < NCH:
                d_t, b2_t, at, inside = d_n, b2_n, at_n, inside_n
                if FINISH == 1:
                    al_t = al_n
        c_r = tl.sum(tl.where(seg == carry_lane, x_r, 0.0), axis=1, keep_dims=True)
        c_i = tl.sum(tl.where(seg == carry_lane, x_i, 0.0), axis=1, keep_dims=True)


@triton.jit
def _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR: tl.constexpr,
                  FINISH: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                  IO: tl.constexpr, POW2: tl.constexpr, EVEN: tl.constexpr, CH: tl.constexpr):
    """The sweep with the I/O variant IO: 0 strided (per step, 4-B accesses), 1 packed (8-B complex
    pairs), 2 tile (see _segmented_sweep_tile; EVEN: N is a multiple of its chunk of CH sites)."""
    if IO == 2:
        _segmented_sweep_tile(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR, FINISH, BLOCK_B, SEGS,
                              SEG, POW2, EVEN, CH)
    else:
        _segmented_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR, FINISH, BLOCK_B, SEGS, SEG,
                         IO == 1, POW2)


@triton.jit
def _resolvent_segmented_variant_kernel(a_ptr, b_ptr, z_ptr, out_ptr, n_seq, n,
                                BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                                IO: tl.constexpr = 0, POW2: tl.constexpr = False,
                                EVEN: tl.constexpr = False, CH: tl.constexpr = 1):
    row64, row_live, zr, zi = _program_rows(z_ptr, n_seq, BLOCK_B)
    _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, False, False, BLOCK_B, SEGS, SEG, IO, POW2,
                  EVEN, CH)
    # β's re-sweep reads α parked by other lanes of this program
    tl.debug_barrier()
    _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, True, True, BLOCK_B, SEGS, SEG, IO, POW2,
                  EVEN, CH)


@triton.jit
def _resolvent_segmented_variant_bwd_kernel(a_ptr, b_ptr, z_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, n_seq, n,
                                    BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                                    IO: tl.constexpr = 0, POW2: tl.constexpr = False,
                                    EVEN: tl.constexpr = False, CH: tl.constexpr = 1):
    row64, row_live, zr, zi = _program_rows(z_ptr, n_seq, BLOCK_B)
    # α, β into scratch with the forward's I/O variant; the adjoint sweeps keep strided I/O
    _mobius_sweep(a_ptr, b_ptr, al_ptr, row64, row_live, n, zr, zi, False, False, BLOCK_B, SEGS, SEG, IO, POW2,
                  EVEN, CH)
    _mobius_sweep(a_ptr, b_ptr, be_ptr, row64, row_live, n, zr, zi, True, False, BLOCK_B, SEGS, SEG, IO, POW2,
                  EVEN, CH)
    tl.debug_barrier()  # the adjoint sweeps read α, β written by other lanes
    _adjoint_segmented_sweep(a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, row64, row_live, n, zr, zi,
                             False, BLOCK_B, SEGS, SEG)
    tl.debug_barrier()  # Ā adds to the shares B̄'s lanes wrote
    _adjoint_segmented_sweep(a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, row64, row_live, n, zr, zi,
                             True, BLOCK_B, SEGS, SEG)


def variant_flags(n: int, seg: int, segs: int, io: str, renorm: str) -> dict:
    """The kernels' layout and variant constexprs for a chain of N sites: SEG, SEGS (segment_layout); IO,
    the I/O variant's code (strided 0, packed 1, tile 2; tile rounds SEG up to a power of two ≤ 32, the
    padded sites being masked like a padded window); POW2 for renorm == "pow2" (renormalise by powers of
    two instead of 1/max); for tile only CH = min(SEG, TILE_SITES), the sites per access, and EVEN = N is
    a multiple of CH (per-chunk masks)."""
    if io not in IO_VARIANTS:
        raise ValueError(f"io must be one of {IO_VARIANTS}, got {io!r}")
    if renorm not in RENORMS:
        raise ValueError(f"renorm must be one of {RENORMS}, got {renorm!r}")
    seg, segs = segment_layout(n, seg, segs)
    flags = dict(SEG=seg, SEGS=segs, IO=IO_VARIANTS.index(io), POW2=renorm == "pow2")
    if io == "tile":
        seg = triton.next_power_of_2(seg)
        if seg > 32:
            raise ValueError(f"io='tile' needs SEG ≤ 32, got {seg}")
        ch = min(seg, TILE_SITES)
        flags.update(SEG=seg, CH=ch, EVEN=n % ch == 0)
    return flags


def resolvent_diag_triton_variant(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float, seg: int = SEG,
                          segs: int = SEGS, block_b: int = BLOCK_B, num_warps: int | None = None,
                          out: torch.Tensor | None = None, io: str = "strided",
                          renorm: str = "max", maxnreg: int | None = None) -> torch.Tensor:
    """G_ii by the segmented forward kernel (no autograd; see the custom op). Reads a [B, N] and
    b [B, N−1] in place and writes complex [B, N] directly (no layout copies), into ``out`` if given
    (contiguous, complex, [B, N]; the tests pass a poisoned one). ``io`` and ``renorm`` pick a variant
    (see :func:`variant_flags`; the defaults are the measured-fastest kernel); ``maxnreg`` caps the
    registers per thread (Triton's CUDA option; the tile variant compiles to ≈ 120 at 4 × 256, which
    allows 16 resident warps per SM, 80 allow 24)."""
    check_inputs(a, b)
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    flags = variant_flags(n, seg, segs, io, renorm)
    if num_warps is None:
        num_warps = max(1, min(8, block_b * flags["SEGS"] // 32))
    if out is None:
        out = torch.empty(n_seq, n, dtype=_complex_dtype(a.dtype), device=a.device)
    grid = (triton.cdiv(n_seq, block_b),)
    _resolvent_segmented_variant_kernel[grid](a, b, _z_tensor(a, z_re, z_im), torch.view_as_real(out), n_seq, n,
                                      BLOCK_B=block_b, num_warps=num_warps, **flags,
                                      **({"maxnreg": maxnreg} if maxnreg else {}))
    return out


def resolvent_diag_backward_triton_variant(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                   grad: torch.Tensor, seg: int = BWD_SEG, segs: int = BWD_SEGS,
                                   block_b: int = BLOCK_B,
                                   num_warps: int | None = None,
                                   out: tuple[torch.Tensor, torch.Tensor] | None = None,
                                   io: str = "strided", renorm: str = "max"
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) from ∂L/∂G by the segmented adjoint kernel ([B, N] in place, no layout copies);
    into ``out`` = (like a, like b) if given. α and β are recomputed into scratch (2 × 8 B/site) by the
    forward's sweeps, with its ``io`` / ``renorm`` variant; the adjoint sweeps are the same for all."""
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    flags = variant_flags(n, seg, segs, io, renorm)
    if num_warps is None:
        num_warps = max(1, min(8, block_b * flags["SEGS"] // 32))
    g = torch.view_as_real(grad.to(_complex_dtype(a.dtype)).resolve_conj().contiguous())
    alpha = torch.empty(n_seq, n, 2, dtype=a.dtype, device=a.device)
    beta = torch.empty_like(alpha)
    grad_a, grad_b = out if out is not None else (torch.empty_like(a), torch.empty_like(b))
    grid = (triton.cdiv(n_seq, block_b),)
    _resolvent_segmented_variant_bwd_kernel[grid](a, b, _z_tensor(a, z_re, z_im), g, alpha, beta, grad_a, grad_b,
                                          n_seq, n, BLOCK_B=block_b, num_warps=num_warps, **flags)
    return grad_a, grad_b
