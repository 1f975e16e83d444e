r"""The previous sequential resolvent kernels, kept as the benchmark's peer (not on the production path).

One lane per sequence, site-major [N, B] copies of a and b, the α and β sweeps interleaved and meeting in
the middle (docs/kernels_k1.md, "History"). Specification: :mod:`bkdsl.kernels.resolvent.naive`; the
production kernels are :mod:`bkdsl.kernels.resolvent.segmented`, which does not import this module.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch._higher_order_ops.associative_scan import associative_scan  # prototype API: a bench peer only

from bkdsl.kernels.resolvent.naive import check_inputs
from bkdsl.kernels.resolvent.segmented import (_complex_dtype, _re_over, _reciprocal, _schur_step, _sigma,
                                               _z_tensor)

__all__ = ["resolvent_diag_triton_sequential", "resolvent_diag_backward_triton_sequential",
           "resolvent_diag_causal_triton_sequential", "resolvent_diag_causal_doubling",
           "resolvent_diag_causal_associative_scan", "resolvent_diag_scan_parts",
           "resolvent_diag_dense_inverse", "BLOCK_SEQ", "CHUNK"]

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
