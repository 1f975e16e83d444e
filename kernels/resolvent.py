r"""Fused Triton kernels for the resolvent diagonal G_ii = diag((H − zI)⁻¹) of tridiagonal H.

Specification: :mod:`bkdsl.nn.resolvent` (formulas, stability argument, adjoint sweeps). Registered as
``torch.ops.bkdsl.resolvent_diag(a, b, z_re, z_im) -> G`` with a fake (shape) implementation and an
autograd formula that calls ``torch.ops.bkdsl.resolvent_diag_backward``, so torch.compile and
torch.export trace through it as one opaque node.

Design (``docs/kernels_k1.md`` has the measurements):

* One program owns ``BLOCK_SEQ`` sequences (one lane each); the only parallelism is across sequences,
  the recurrences are sequential along N.
* The left sweep (α, site 0 → N−1) and the right sweep (β, site N−1 → 0) run interleaved in one loop,
  two independent dependency chains per lane. They meet in the middle: during the first half each
  sweep parks its Schur complements in the output buffer (α on the left half, β on the right half);
  during the second half each sweep finds the other's value there and writes G_ii in its place. One
  barrier separates the halves. Every element of G is written exactly once, from registers.
* The wrapper hands the kernel site-major copies ([N, B], ``x.t().contiguous()``) and gets G back as
  two site-major planes (re, im) that one permuted copy turns into complex [B, N]: a step of the 32
  lanes of a warp then reads and writes one contiguous 128-byte line per array instead of 32 lines
  (the first H200 run, row-major with stride-N lanes, took 1.5 ms at 4096 × 2048). The layout copies
  cost ≈ 3 passes over the data outside the kernel; ``docs/kernels_k1.md`` has the measurements.
* The loop body is unrolled ``CHUNK`` sites deep (``tl.static_range``).
* The backward recomputes α and β into scratch (one interleaved pass), then runs the two adjoint
  sweeps (Ā right to left, B̄ left to right) interleaved, meeting in the middle the same way on the
  output gradients.
* Complex numbers are (re, im) pairs of the input's real dtype; ``z`` travels as a 2-element tensor
  of that dtype so float64 inputs keep a float64 z.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from bkdsl.kernels import dispatch
from bkdsl.nn.resolvent import check_inputs, resolvent_backward_reference, resolvent_diag_reference

__all__ = ["resolvent_diag_triton", "resolvent_diag_backward_triton", "BLOCK_SEQ", "CHUNK"]

# One warp per program, one sequence per lane: 4096 sequences give 128 programs, about one per SM of
# an H200 (132 SMs). Measured alternatives are in docs/kernels_k1.md.
BLOCK_SEQ = 32
CHUNK = 8
NUM_WARPS = 1


@triton.jit
def _at(i, n_seq, seq64):
    """Offset of site i of each lane's sequence in a site-major [N, B] array: i·B + seq."""
    return i.to(tl.int64) * n_seq + seq64


@triton.jit
def _schur_step(dr, di, b2, pr, pi):
    """d − b² / p for complex d = dr + i·di, p = pr + i·pi and real b² (one continued-fraction step)."""
    scale = b2 / (pr * pr + pi * pi)
    return dr - pr * scale, di + pi * scale


@triton.jit
def _reciprocal(sr, si):
    """1 / s for complex s = sr + i·si; |s| ≥ Im z > 0 here, so no guard is needed."""
    inv = 1.0 / (sr * sr + si * si)
    return sr * inv, -si * inv


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
def _sigma(al_r, al_i, be_r, be_i, a, zr, zi, gr, gi):
    """σ = −conj(g)·G², G = 1/(α + β − d): the adjoint of s = α + β − d (u = conj(g))."""
    G_r, G_i = _reciprocal(al_r + be_r - (a - zr), al_i + be_i + zi)
    G2_r = G_r * G_r - G_i * G_i
    G2_i = 2.0 * G_r * G_i
    # −(gr − i·gi)(G2_r + i·G2_i)
    return -(gr * G2_r + gi * G2_i), -(gr * G2_i - gi * G2_r)


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
def _re_over(x_r, x_i, p_r, p_i):
    """Re(x / p) for complex x, p."""
    return (x_r * p_r + x_i * p_i) / (p_r * p_r + p_i * p_i)


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


def _z_tensor(a: torch.Tensor, z_re: float, z_im: float) -> torch.Tensor:
    return torch.tensor([z_re, z_im], dtype=a.dtype, device=a.device)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _site_major(x: torch.Tensor) -> torch.Tensor:
    """[B, N] → [N, B] contiguous: one step of all lanes then reads one contiguous line."""
    return x.t().contiguous()


def resolvent_diag_triton(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                          block_seq: int = BLOCK_SEQ, chunk: int = CHUNK, num_warps: int = NUM_WARPS
                          ) -> torch.Tensor:
    """G_ii by the fused forward kernel (no autograd; see the custom op)."""
    check_inputs(a, b)
    n_seq, n = a.shape
    planes = torch.empty(2, n, n_seq, dtype=a.dtype, device=a.device)  # (re, im) × site × sequence
    grid = (triton.cdiv(n_seq, block_seq),)
    _resolvent_fwd_kernel[grid](_site_major(a), _site_major(b), _z_tensor(a, z_re, z_im), planes, n_seq, n,
                                BLOCK_SEQ=block_seq, CHUNK=chunk, num_warps=num_warps)
    out = torch.empty(n_seq, n, dtype=_complex_dtype(a.dtype), device=a.device)
    torch.view_as_real(out).copy_(planes.permute(2, 1, 0))
    return out


def resolvent_diag_backward_triton(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                   grad: torch.Tensor, block_seq: int = BLOCK_SEQ, chunk: int = CHUNK,
                                   num_warps: int = NUM_WARPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) from ∂L/∂G by the fused adjoint kernel."""
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


# --- torch.library registration -------------------------------------------------------------------

@torch.library.custom_op("bkdsl::resolvent_diag", mutates_args=())
def resolvent_diag_op(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float) -> torch.Tensor:
    """diag((H − zI)⁻¹); Triton where the dispatcher says so, the reference elsewhere."""
    if dispatch.use_triton(a, b):
        return resolvent_diag_triton(a, b, z_re, z_im)
    return resolvent_diag_reference(a, b, complex(z_re, z_im))


@resolvent_diag_op.register_fake
def _(a, b, z_re, z_im):
    return a.new_empty(a.shape, dtype=_complex_dtype(a.dtype))


@torch.library.custom_op("bkdsl::resolvent_diag_backward", mutates_args=())
def resolvent_diag_backward_op(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                               grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) by the adjoint sweeps."""
    if dispatch.use_triton(a, b):
        return resolvent_diag_backward_triton(a, b, z_re, z_im, grad)
    return resolvent_backward_reference(a, b, complex(z_re, z_im), grad.to(_complex_dtype(a.dtype)))


@resolvent_diag_backward_op.register_fake
def _(a, b, z_re, z_im, grad):
    return torch.empty_like(a), torch.empty_like(b)


def _setup_context(ctx, inputs, output):
    a, b, z_re, z_im = inputs
    ctx.save_for_backward(a, b)
    ctx.z = (z_re, z_im)


def _backward(ctx, grad):
    a, b = ctx.saved_tensors
    grad_a, grad_b = torch.ops.bkdsl.resolvent_diag_backward(a, b, ctx.z[0], ctx.z[1], grad)
    return grad_a, grad_b, None, None


torch.library.register_autograd("bkdsl::resolvent_diag", _backward, setup_context=_setup_context)
