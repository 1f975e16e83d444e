r"""Chunked delta rule in Triton: the WY form, forward and backward, with φ = ELU + 1 and the normaliser.

Specification: :mod:`bkdsl.kernels.delta_rule.naive` (formulas there). Per (batch·head) and chunk of
C = 64 tokens with state S (d_v × d_k) and normaliser z at the chunk's start:

    A = tril(diag(β) K Kᵀ, −1),  T = (I + A)⁻¹,  W_k = T diag(β) K,  U_v = T diag(β) V
    U = U_v − W_k Sᵀ,   O = Q Sᵀ + (Q Kᵀ ⊙ M) U,   den = Q z + (Q Kᵀ ⊙ M) 1,   Y = O / den
    S ← S + Uᵀ K,       z ← z + Kᵀ 1

Forward, three kernels (the layout of Yang et al. 2024 / flash-linear-attention's chunk_delta_rule):

* :func:`_wy_fwd_kernel`, grid (chunks, B·H): T by forward substitution on the four 16 × 16 diagonal
  blocks and block back-substitution for the rest, T_ij = −T_ii Σ_{j≤m<i} A_im T_mj; writes T, W_k, U_v.
* :func:`_state_fwd_kernel`, grid (d_v blocks, B·H): the only sequential part — S in registers, one
  step per chunk; writes S (per chunk), U and z (per chunk).
* :func:`_out_fwd_kernel`, grid (chunks, d_v blocks, B·H): Y and den.

Backward, three kernels (the gradients are derived in docs/kernels_delta.md):

* :func:`_dv_local_bwd_kernel`, grid (chunks, d_v blocks, B·H): the parallel part of dU, (QKᵀ⊙M)ᵀ dO,
  and each chunk's Σ_t dden_t q_t (a reverse cumulative sum over chunks gives dz from later chunks).
* :func:`_state_bwd_kernel`, grid (d_v blocks, B·H), chunks in reverse: dS (gradient of the state at a
  chunk's end) in registers, dU += K dSᵀ, dS ← dS + dOᵀ Q − dUᵀ W_k — three matmuls per step on the
  sequential path, as in the forward scan.
* :func:`_grads_bwd_kernel`, grid (chunks, B·H): dQ, dK, dV, dβ of one chunk, through the WY form:
  dW_k = −dU S, dT = dW_k (βK)ᵀ + dU (βV)ᵀ, dA = −Tᵀ dT Tᵀ (strictly lower), and φ'(x) = 1 (x > 0) or eˣ.

Elementwise arithmetic is float32 (inputs bf16, fp16 or fp32, loaded and widened); ``dot`` picks tl.dot's
operands: "bf16" (default for bf16 inputs, fla's precision: operands rounded to bf16, float32 sums; T's
block inversion stays tf32), "tf32x3" (default for float32), "tf32" (fp16), "ieee"; the grads kernel runs
ieee whenever the operands are float32 (tf32x3 does not fit sm_90's shared memory there). Scratch that is
only a dot operand (T, W_k, U_v, U, S, dS) is bf16 with bf16 operands, else float32; dU, z, den are
float32. Scratch is padded to whole chunks, so only the inputs' loads and the outputs' stores are masked.
"""

from __future__ import annotations

import os
import warnings

import torch
import triton
import triton.language as tl

__all__ = ["CHUNK", "MAX_D", "DOTS", "CONFIGS", "INVERSES", "INVERSE", "chosen_configs", "scratch_dtype", "delta_rule_fwd_triton", "delta_rule_bwd_triton"]

CHUNK = 64          # tokens per chunk (four 16 × 16 blocks of T)
MAX_D = 128         # widest d_k / d_v: whole rows of d_k are one tile (the state scan needs them)
DOTS = ("bf16", "tf32", "tf32x3", "ieee")


@triton.jit
def _dot(a, b, DOT: tl.constexpr):
    """a @ b with float32 sums. DOT "tf32", "tf32x3", "ieee": float32 operands at that tl.dot input
    precision. "bf16": operands rounded to bfloat16 (as flash-linear-attention does for bf16 inputs), one
    bf16 MMA with float32 accumulation. "bf16_emulated": the same rounding, then an exact float32 dot
    — what the CPU interpreter runs in place of "bf16" (its bf16 tl.dot returns garbage)."""
    if DOT == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
    elif DOT == "bf16_emulated":
        return tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a, b, input_precision=DOT)


@triton.jit
def _dot_hi(a, b, DOT: tl.constexpr):
    """a @ b for the products of T's block inversion, which stay float32 (tf32; exact where DOT is
    "bf16_emulated" or "ieee"): T's rounding error would multiply into every W_k and U_v row."""
    if DOT == "bf16":
        return tl.dot(a, b, input_precision="tf32")
    elif DOT == "bf16_emulated":
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b, input_precision=DOT)


@triton.jit
def _phi(x):
    """φ(x) = ELU(x) + 1."""
    return tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))


@triton.jit
def _dphi(x):
    """φ'(x) = 1 for x > 0, eˣ otherwise."""
    return tl.where(x > 0, 1.0, tl.exp(tl.minimum(x, 0.0)))


@triton.jit
def _load_in(ptr, base, rows, n, cols, d, PHI: tl.constexpr):
    """Rows of a [.., n, d] input (float32), zero outside; φ applied when PHI."""
    mask = (rows[:, None] < n) & (cols[None, :] < d)
    x = tl.load(ptr + base + rows[:, None].to(tl.int64) * d + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if PHI:
        x = tl.where(mask, _phi(x), 0.0)
    return x


@triton.jit
def _load_vec(ptr, base, rows, n, other):
    return tl.load(ptr + base + rows, mask=rows < n, other=other).to(tl.float32)


@triton.jit
def _scratch(ptr, base, rows, cols, width):
    """Offsets of a [rows, cols] tile of a row-major float32 scratch array of the given width."""
    return ptr + base + rows[:, None].to(tl.int64) * width + cols[None, :]


@triton.jit
def _inv_unit_lower(A, BS: tl.constexpr):
    """(I + A)⁻¹ for a strictly lower BS × BS block, by forward substitution: T_r = e_r − Σ_j A_rj T_j."""
    i = tl.arange(0, BS)
    T = tl.zeros([BS, BS], dtype=tl.float32)
    for r in range(BS):  # a runtime loop: unrolled, 64 steps per chunk made the compile slow
        a = tl.sum(tl.where(i[:, None] == r, A, 0.0), 0)
        a = tl.where(i < r, a, 0.0)
        row = tl.where(i == r, 1.0, 0.0) - tl.sum(a[:, None] * T, 0)
        T = tl.where(i[:, None] == r, row[None, :], T)
    return T


@triton.jit
def _inv_unit_lower4(A0, A1, A2, A3):
    """(I + A_m)⁻¹ of four strictly lower 16 × 16 blocks at once: the forward substitution of
    :func:`_inv_unit_lower` on the blocks stacked as one [16, 16, 2, 2] tensor (tl.join), so the 16 dependent
    row steps run once for all four instead of 4 × 16 times — the same sums in the same order per block."""
    A = tl.join(tl.join(A0, A1), tl.join(A2, A3))        # [16, 16, 2, 2]: [..., j, m] = A_{2j + m}
    i = tl.arange(0, 16)
    i4 = i[:, None, None, None]
    T = tl.zeros([16, 16, 2, 2], dtype=tl.float32)
    for r in range(16):  # a runtime loop (see _inv_unit_lower)
        a = tl.sum(tl.where(i4 == r, A, 0.0), 0)          # row r of each block: [16, 2, 2]
        a = tl.where(i[:, None, None] < r, a, 0.0)
        row = tl.where(i[:, None, None] == r, 1.0, 0.0) - tl.sum(a[:, None, :, :] * T, 0)
        T = tl.where(i4 == r, row[None, :, :, :], T)
    T01, T23 = tl.split(T)
    T0, T1 = tl.split(T01)
    T2, T3 = tl.split(T23)
    return T0, T1, T2, T3


@triton.jit
def _block_a(Ki, Kj, bi, STRICT: tl.constexpr, DOT: tl.constexpr):
    """A_ij = diag(β_i) K_i K_jᵀ (strictly lower part when STRICT, the diagonal block)."""
    a = _dot(Ki, tl.trans(Kj), DOT) * bi[:, None]
    if STRICT:
        i = tl.arange(0, 16)
        a = tl.where(i[:, None] > i[None, :], a, 0.0)
    return a


@triton.jit
def _wy_fwd_kernel(k_ptr, v_ptr, b_ptr, t_ptr, wk_ptr, uv_ptr, n, dk, dv, n_pad,
                   PHI: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, DOT: tl.constexpr,
                   INV4: tl.constexpr = True):
    c, bh = tl.program_id(0), tl.program_id(1)
    bh64 = bh.to(tl.int64)
    s = tl.arange(0, 16)
    ck, cv = tl.arange(0, BK), tl.arange(0, BV)
    r0 = c * 64 + s
    K0 = _load_in(k_ptr, bh64 * n * dk, r0, n, ck, dk, PHI)
    K1 = _load_in(k_ptr, bh64 * n * dk, r0 + 16, n, ck, dk, PHI)
    K2 = _load_in(k_ptr, bh64 * n * dk, r0 + 32, n, ck, dk, PHI)
    K3 = _load_in(k_ptr, bh64 * n * dk, r0 + 48, n, ck, dk, PHI)
    b0 = _load_vec(b_ptr, bh64 * n, r0, n, 0.0)
    b1 = _load_vec(b_ptr, bh64 * n, r0 + 16, n, 0.0)
    b2 = _load_vec(b_ptr, bh64 * n, r0 + 32, n, 0.0)
    b3 = _load_vec(b_ptr, bh64 * n, r0 + 48, n, 0.0)
    if INV4:  # the four diagonal blocks' substitutions side by side: 16 dependent steps, not 64
        T00, T11, T22, T33 = _inv_unit_lower4(_block_a(K0, K0, b0, True, DOT), _block_a(K1, K1, b1, True, DOT),
                                              _block_a(K2, K2, b2, True, DOT), _block_a(K3, K3, b3, True, DOT))
    else:
        T00 = _inv_unit_lower(_block_a(K0, K0, b0, True, DOT), 16)
        T11 = _inv_unit_lower(_block_a(K1, K1, b1, True, DOT), 16)
        T22 = _inv_unit_lower(_block_a(K2, K2, b2, True, DOT), 16)
        T33 = _inv_unit_lower(_block_a(K3, K3, b3, True, DOT), 16)
    A10 = _block_a(K1, K0, b1, False, DOT)
    A20 = _block_a(K2, K0, b2, False, DOT)
    A21 = _block_a(K2, K1, b2, False, DOT)
    A30 = _block_a(K3, K0, b3, False, DOT)
    A31 = _block_a(K3, K1, b3, False, DOT)
    A32 = _block_a(K3, K2, b3, False, DOT)
    # T_ij = −T_ii Σ_{j ≤ m < i} A_im T_mj
    T10 = -_dot_hi(T11, _dot_hi(A10, T00, DOT), DOT)
    T21 = -_dot_hi(T22, _dot_hi(A21, T11, DOT), DOT)
    T32 = -_dot_hi(T33, _dot_hi(A32, T22, DOT), DOT)
    T20 = -_dot_hi(T22, _dot_hi(A20, T00, DOT) + _dot_hi(A21, T10, DOT), DOT)
    T31 = -_dot_hi(T33, _dot_hi(A31, T11, DOT) + _dot_hi(A32, T21, DOT), DOT)
    T30 = -_dot_hi(T33, _dot_hi(A30, T00, DOT) + _dot_hi(A31, T10, DOT)
                   + _dot_hi(A32, T20, DOT), DOT)
    zero = tl.zeros([16, 16], dtype=tl.float32)
    tb = bh64 * n_pad * 64
    ra = c * 64 + s
    tl.store(_scratch(t_ptr, tb, ra, s, 64), T00)
    tl.store(_scratch(t_ptr, tb, ra, s + 16, 64), zero)
    tl.store(_scratch(t_ptr, tb, ra, s + 32, 64), zero)
    tl.store(_scratch(t_ptr, tb, ra, s + 48, 64), zero)
    tl.store(_scratch(t_ptr, tb, ra + 16, s, 64), T10)
    tl.store(_scratch(t_ptr, tb, ra + 16, s + 16, 64), T11)
    tl.store(_scratch(t_ptr, tb, ra + 16, s + 32, 64), zero)
    tl.store(_scratch(t_ptr, tb, ra + 16, s + 48, 64), zero)
    tl.store(_scratch(t_ptr, tb, ra + 32, s, 64), T20)
    tl.store(_scratch(t_ptr, tb, ra + 32, s + 16, 64), T21)
    tl.store(_scratch(t_ptr, tb, ra + 32, s + 32, 64), T22)
    tl.store(_scratch(t_ptr, tb, ra + 32, s + 48, 64), zero)
    tl.store(_scratch(t_ptr, tb, ra + 48, s, 64), T30)
    tl.store(_scratch(t_ptr, tb, ra + 48, s + 16, 64), T31)
    tl.store(_scratch(t_ptr, tb, ra + 48, s + 32, 64), T32)
    tl.store(_scratch(t_ptr, tb, ra + 48, s + 48, 64), T33)
    # W_k = T diag(β) K, row blocks W_i = Σ_{j ≤ i} T_ij (βK)_j
    K0 = K0 * b0[:, None]
    K1 = K1 * b1[:, None]
    K2 = K2 * b2[:, None]
    K3 = K3 * b3[:, None]
    wb = bh64 * n_pad * dk
    tl.store(_scratch(wk_ptr, wb, ra, ck, dk), _dot(T00, K0, DOT), mask=ck[None, :] < dk)
    tl.store(_scratch(wk_ptr, wb, ra + 16, ck, dk),
             _dot(T10, K0, DOT) + _dot(T11, K1, DOT), mask=ck[None, :] < dk)
    tl.store(_scratch(wk_ptr, wb, ra + 32, ck, dk),
             _dot(T20, K0, DOT) + _dot(T21, K1, DOT)
             + _dot(T22, K2, DOT), mask=ck[None, :] < dk)
    tl.store(_scratch(wk_ptr, wb, ra + 48, ck, dk),
             _dot(T30, K0, DOT) + _dot(T31, K1, DOT)
             + _dot(T32, K2, DOT) + _dot(T33, K3, DOT), mask=ck[None, :] < dk)
    # U_v = T diag(β) V
    V0 = _load_in(v_ptr, bh64 * n * dv, r0, n, cv, dv, False) * b0[:, None]
    V1 = _load_in(v_ptr, bh64 * n * dv, r0 + 16, n, cv, dv, False) * b1[:, None]
    V2 = _load_in(v_ptr, bh64 * n * dv, r0 + 32, n, cv, dv, False) * b2[:, None]
    V3 = _load_in(v_ptr, bh64 * n * dv, r0 + 48, n, cv, dv, False) * b3[:, None]
    ub = bh64 * n_pad * dv
    tl.store(_scratch(uv_ptr, ub, ra, cv, dv), _dot(T00, V0, DOT), mask=cv[None, :] < dv)
    tl.store(_scratch(uv_ptr, ub, ra + 16, cv, dv),
             _dot(T10, V0, DOT) + _dot(T11, V1, DOT), mask=cv[None, :] < dv)
    tl.store(_scratch(uv_ptr, ub, ra + 32, cv, dv),
             _dot(T20, V0, DOT) + _dot(T21, V1, DOT)
             + _dot(T22, V2, DOT), mask=cv[None, :] < dv)
    tl.store(_scratch(uv_ptr, ub, ra + 48, cv, dv),
             _dot(T30, V0, DOT) + _dot(T31, V1, DOT)
             + _dot(T32, V2, DOT) + _dot(T33, V3, DOT), mask=cv[None, :] < dv)


@triton.jit
def _state_fwd_kernel(k_ptr, wk_ptr, uv_ptr, u_ptr, h_ptr, z_ptr, n, dk, dv, n_pad, n_chunks,
                      PHI: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, DOT: tl.constexpr):
    iv, bh = tl.program_id(0), tl.program_id(1)
    bh64 = bh.to(tl.int64)
    t = tl.arange(0, 64)
    ck = tl.arange(0, BK)
    cv = iv * BV + tl.arange(0, BV)
    mk, mv = ck < dk, cv < dv
    S = tl.zeros([BV, BK], dtype=tl.float32)
    z = tl.zeros([BK], dtype=tl.float32)
    for c in range(n_chunks):
        rows = c * 64 + t
        hb = (bh64 * n_chunks + c) * dv * dk
        tl.store(_scratch(h_ptr, hb, cv, ck, dk), S, mask=mv[:, None] & mk[None, :])
        if iv == 0:
            tl.store(z_ptr + (bh64 * n_chunks + c) * dk + ck, z, mask=mk)
        Wk = tl.load(_scratch(wk_ptr, bh64 * n_pad * dk, rows, ck, dk), mask=mk[None, :], other=0.0).to(tl.float32)
        Uv = tl.load(_scratch(uv_ptr, bh64 * n_pad * dv, rows, cv, dv), mask=mv[None, :], other=0.0).to(tl.float32)
        U = Uv - _dot(Wk, tl.trans(S), DOT)
        tl.store(_scratch(u_ptr, bh64 * n_pad * dv, rows, cv, dv), U, mask=mv[None, :])
        K = _load_in(k_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
        S += _dot(tl.trans(U), K, DOT)
        z += tl.sum(K, 0)


@triton.jit
def _out_fwd_kernel(q_ptr, k_ptr, u_ptr, h_ptr, z_ptr, y_ptr, den_ptr, n, dk, dv, n_pad, n_chunks,
                    PHI: tl.constexpr, NORM: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                    DOT: tl.constexpr):
    c, iv, bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    bh64 = bh.to(tl.int64)
    t = tl.arange(0, 64)
    rows = c * 64 + t
    ck = tl.arange(0, BK)
    cv = iv * BV + tl.arange(0, BV)
    mk, mv = ck < dk, cv < dv
    Q = _load_in(q_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
    K = _load_in(k_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
    S = tl.load(_scratch(h_ptr, (bh64 * n_chunks + c) * dv * dk, cv, ck, dk), mask=mv[:, None] & mk[None, :],
                other=0.0).to(tl.float32)
    U = tl.load(_scratch(u_ptr, bh64 * n_pad * dv, rows, cv, dv), mask=mv[None, :], other=0.0).to(tl.float32)
    QK = _dot(Q, tl.trans(K), DOT)
    QK = tl.where(t[:, None] >= t[None, :], QK, 0.0)
    O = _dot(Q, tl.trans(S), DOT) + _dot(QK, U, DOT)
    if NORM:
        z = tl.load(z_ptr + (bh64 * n_chunks + c) * dk + ck, mask=mk, other=0.0)
        den = tl.sum(Q * z[None, :], 1) + tl.sum(QK, 1)
        O = O / tl.where(rows < n, den, 1.0)[:, None]
        if iv == 0:
            tl.store(den_ptr + bh64 * n_pad + rows, den)
    ym = (rows[:, None] < n) & mv[None, :]
    tl.store(y_ptr + bh64 * n * dv + rows[:, None].to(tl.int64) * dv + cv[None, :],
             O.to(y_ptr.dtype.element_ty), mask=ym)


@triton.jit
def _dv_local_bwd_kernel(q_ptr, k_ptr, dy_ptr, den_ptr, dden_ptr, du_ptr, gz_ptr, n, dk, dv, n_pad, n_chunks,
                         PHI: tl.constexpr, NORM: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                         DOT: tl.constexpr):
    """The parallel part of dU: (QKᵀ ⊙ M)ᵀ dO per chunk, and the chunk's Σ_t dden_t q_t (normaliser)."""
    c, iv, bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    bh64 = bh.to(tl.int64)
    t = tl.arange(0, 64)
    rows = c * 64 + t
    ck = tl.arange(0, BK)
    cv = iv * BV + tl.arange(0, BV)
    Q = _load_in(q_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
    K = _load_in(k_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
    dO = _load_in(dy_ptr, bh64 * n * dv, rows, n, cv, dv, False)
    if NORM:
        den = tl.load(den_ptr + bh64 * n_pad + rows, mask=rows < n, other=1.0)
        dO = dO / den[:, None]
        if iv == 0:
            dden = _load_vec(dden_ptr, bh64 * n, rows, n, 0.0)
            tl.store(gz_ptr + (bh64 * n_chunks + c) * dk + ck, tl.sum(dden[:, None] * Q, 0), mask=ck < dk)
    QK = _dot(Q, tl.trans(K), DOT)
    QK = tl.where(t[:, None] >= t[None, :], QK, 0.0)
    tl.store(_scratch(du_ptr, bh64 * n_pad * dv, rows, cv, dv), _dot(tl.trans(QK), dO, DOT),
             mask=cv[None, :] < dv)


@triton.jit
def _state_bwd_kernel(q_ptr, k_ptr, wk_ptr, dy_ptr, den_ptr, du_ptr, dh_ptr, n, dk, dv, n_pad, n_chunks,
                      PHI: tl.constexpr, NORM: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                      DOT: tl.constexpr):
    """The sequential part, chunks in reverse: dU = dU_local + K dSᵀ, dS ← dS + dOᵀ Q − dUᵀ W_k."""
    iv, bh = tl.program_id(0), tl.program_id(1)
    bh64 = bh.to(tl.int64)
    t = tl.arange(0, 64)
    ck = tl.arange(0, BK)
    cv = iv * BV + tl.arange(0, BV)
    mk, mv = ck < dk, cv < dv
    dS = tl.zeros([BV, BK], dtype=tl.float32)
    for i in range(n_chunks):
        c = n_chunks - 1 - i
        rows = c * 64 + t
        tl.store(_scratch(dh_ptr, (bh64 * n_chunks + c) * dv * dk, cv, ck, dk), dS, mask=mv[:, None] & mk[None, :])
        Q = _load_in(q_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
        K = _load_in(k_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
        Wk = tl.load(_scratch(wk_ptr, bh64 * n_pad * dk, rows, ck, dk), mask=mk[None, :], other=0.0).to(tl.float32)
        dO = _load_in(dy_ptr, bh64 * n * dv, rows, n, cv, dv, False)
        if NORM:
            den = tl.load(den_ptr + bh64 * n_pad + rows, mask=rows < n, other=1.0)
            dO = dO / den[:, None]
        du_at = _scratch(du_ptr, bh64 * n_pad * dv, rows, cv, dv)
        dU = tl.load(du_at, mask=mv[None, :], other=0.0) + _dot(K, tl.trans(dS), DOT)
        tl.store(du_at, dU, mask=mv[None, :])
        dS += _dot(tl.trans(dO), Q, DOT) - _dot(tl.trans(dU), Wk, DOT)


@triton.jit
def _grads_bwd_kernel(q_ptr, k_ptr, v_ptr, b_ptr, t_ptr, u_ptr, h_ptr, z_ptr, dy_ptr, den_ptr, dden_ptr,
                      du_ptr, dh_ptr, dz_ptr, dq_ptr, dk_ptr, dv_ptr, db_ptr, n, dk, dv, n_pad, n_chunks,
                      PHI: tl.constexpr, NORM: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                      DOT: tl.constexpr):
    """One chunk's dQ, dK, dV, dβ; the d_v columns in blocks of BV (dQ, dK, dW_k, dM, dT accumulate)."""
    c, bh = tl.program_id(0), tl.program_id(1)
    bh64 = bh.to(tl.int64)
    t = tl.arange(0, 64)
    rows = c * 64 + t
    ck = tl.arange(0, BK)
    mk = ck < dk
    Q = _load_in(q_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
    K = _load_in(k_ptr, bh64 * n * dk, rows, n, ck, dk, PHI)
    b = _load_vec(b_ptr, bh64 * n, rows, n, 0.0)
    T = tl.load(_scratch(t_ptr, bh64 * n_pad * 64, rows, t, 64)).to(tl.float32)
    Tt = tl.trans(T)
    hb = (bh64 * n_chunks + c) * dv * dk
    if NORM:
        den = tl.load(den_ptr + bh64 * n_pad + rows, mask=rows < n, other=1.0)
        dden = _load_vec(dden_ptr, bh64 * n, rows, n, 0.0)
    dQ = tl.zeros([64, BK], dtype=tl.float32)
    dK = tl.zeros([64, BK], dtype=tl.float32)
    dWk = tl.zeros([64, BK], dtype=tl.float32)
    dM = tl.zeros([64, 64], dtype=tl.float32)
    dT = tl.zeros([64, 64], dtype=tl.float32)
    db = tl.zeros([64], dtype=tl.float32)
    for v0 in range(0, dv, BV):
        cv = v0 + tl.arange(0, BV)
        mv = cv < dv
        dO = _load_in(dy_ptr, bh64 * n * dv, rows, n, cv, dv, False)
        if NORM:
            dO = dO / den[:, None]
        S = tl.load(_scratch(h_ptr, hb, cv, ck, dk), mask=mv[:, None] & mk[None, :], other=0.0).to(tl.float32)
        dS = tl.load(_scratch(dh_ptr, hb, cv, ck, dk), mask=mv[:, None] & mk[None, :], other=0.0).to(tl.float32)
        U = tl.load(_scratch(u_ptr, bh64 * n_pad * dv, rows, cv, dv), mask=mv[None, :], other=0.0).to(tl.float32)
        dU = tl.load(_scratch(du_ptr, bh64 * n_pad * dv, rows, cv, dv), mask=mv[None, :], other=0.0).to(tl.float32)
        V = _load_in(v_ptr, bh64 * n * dv, rows, n, cv, dv, False)
        # O = Q Sᵀ + (QKᵀ ⊙ M) U  and  S' = S + Uᵀ K
        dM += _dot(dO, tl.trans(U), DOT)
        dQ += _dot(dO, S, DOT)
        dK += _dot(U, dS, DOT)
        # WY form: U = U_v − W_k Sᵀ, U_v = T diag(β) V
        dWk -= _dot(dU, S, DOT)
        bV = V * b[:, None]
        dT += _dot(dU, tl.trans(bV), DOT)
        dbV = _dot(Tt, dU, DOT)
        tl.store(dv_ptr + bh64 * n * dv + rows[:, None].to(tl.int64) * dv + cv[None, :],
                 (dbV * b[:, None]).to(dv_ptr.dtype.element_ty), mask=(rows[:, None] < n) & mv[None, :])
        db += tl.sum(V * dbV, 1)
    if NORM:
        dM += dden[:, None]
    dM = tl.where(t[:, None] >= t[None, :], dM, 0.0)
    dQ += _dot(dM, K, DOT)
    dK += _dot(tl.trans(dM), Q, DOT)
    if NORM:
        z = tl.load(z_ptr + (bh64 * n_chunks + c) * dk + ck, mask=mk, other=0.0)
        dzf = tl.load(dz_ptr + (bh64 * n_chunks + c) * dk + ck, mask=mk, other=0.0)
        dQ += dden[:, None] * z[None, :]
        dK += dzf[None, :]
    # W_k = T diag(β) K: dT += dW_k (βK)ᵀ, d(βK) = Tᵀ dW_k
    dT += _dot(dWk, tl.trans(K * b[:, None]), DOT)
    dbK = _dot(Tt, dWk, DOT)
    dK += dbK * b[:, None]
    db += tl.sum(K * dbK, 1)
    # T = (I + A)⁻¹: dA = −Tᵀ dT Tᵀ on the strictly lower part; A = tril(diag(β) K Kᵀ, −1)
    dA = -_dot(_dot(Tt, dT, DOT), Tt, DOT)
    dA = tl.where(t[:, None] > t[None, :], dA, 0.0)
    db += tl.sum(dA * _dot(K, tl.trans(K), DOT), 1)
    G = dA * b[:, None]
    dK += _dot(G, K, DOT) + _dot(tl.trans(G), K, DOT)
    if PHI:
        dQ = dQ * _dphi(_load_in(q_ptr, bh64 * n * dk, rows, n, ck, dk, False))
        dK = dK * _dphi(_load_in(k_ptr, bh64 * n * dk, rows, n, ck, dk, False))
    rk = (rows[:, None] < n) & mk[None, :]
    tl.store(dq_ptr + bh64 * n * dk + rows[:, None].to(tl.int64) * dk + ck[None, :],
             dQ.to(dq_ptr.dtype.element_ty), mask=rk)
    tl.store(dk_ptr + bh64 * n * dk + rows[:, None].to(tl.int64) * dk + ck[None, :],
             dK.to(dk_ptr.dtype.element_ty), mask=rk)
    tl.store(db_ptr + bh64 * n + rows, db.to(db_ptr.dtype.element_ty), mask=rows < n)


# --- launchers ------------------------------------------------------------------------------------

# Launch configurations (num_warps, num_stages) per kernel, tried in order: the first that compiles is
# kept for that kernel and specialisation, and a fall-back is reported once (a default that does not
# compile on some GPU/Triton must not crash). The sequential scans pipeline their per-chunk loads
# (num_stages 2); the full-width per-chunk kernels hold 64 × d_k float32 tiles (8 warps). "<name>_f32"
# replaces "<name>" when the operands are float32 (tf32/tf32x3/ieee), whose shared memory is larger.
# Shared memory on sm_90 at d = 128 with φ and the normaliser, counted by smem.py (Triton 3.9), in
# docs/kernels_delta.md: with bf16 operands every first entry ≤ 86 KB.
# The WY kernel's inversion of the diagonal blocks (see delta_rule_fwd_triton): the run-2 H200 profile had
# _wy_fwd_kernel at 349 µs of the 605 µs bf16 forward (B4 H8 N4096 D128), its 4 × 16 dependent row steps
# (each two cross-warp reductions) the latency; "batched" runs the 16 steps once for the four blocks.
# Not yet measured on the H200: bench/issue20.py times both forms in one process.
INVERSES = ("batched", "rowwise")
INVERSE = "batched"
CONFIGS: dict[str, tuple[tuple[int, int], ...]] = {
    "wy": ((8, 1), (4, 1), (8, 2)),
    "state": ((4, 2), (4, 1), (8, 1), (2, 1)),
    "out": ((4, 2), (8, 2), (4, 1), (8, 1)),
    "dv_local": ((4, 2), (8, 2), (4, 1), (8, 1)),
    "state_bwd": ((4, 2), (4, 1), (8, 1)),
    "state_bwd_f32": ((4, 1), (8, 1)),      # (4, 2): 213 KB with tf32x3 operands
    "grads": ((8, 1), (4, 1), (8, 2)),       # bf16 operands: 86, 66, 131 KB
    "grads_f32": ((4, 1), (8, 1)),           # ieee dots (see _grads_dot): 98 KB each
}


def _table(name: str, meta: dict) -> tuple[tuple[int, int], ...]:
    """The configurations to try for kernel ``name``: its float32-operand table where it has one."""
    if not str(meta.get("DOT", "bf16")).startswith("bf16") and f"{name}_f32" in CONFIGS:
        return CONFIGS[f"{name}_f32"]
    return CONFIGS[name]
_chosen: dict[tuple, tuple[int, int]] = {}
_batched_inverse_failed: set[tuple] = set()  # WY specialisations whose batched inverse did not compile


def chosen_configs() -> dict[str, tuple[int, int]]:
    """The configuration each kernel ran with (the bench records it): {"kernel/specialisation": (warps, stages)}."""
    return {"/".join(map(str, key)): cfg for key, cfg in _chosen.items()}


def _launch(name: str, kernel, grid, args, meta: dict, config: tuple[int, int] | None = None) -> None:
    """Launch with a forced ``config``, the one chosen before for this specialisation, or the first of
    ``CONFIGS[name]`` that compiles."""
    if config is not None:
        kernel[grid](*args, **meta, num_warps=config[0], num_stages=config[1])
        return
    key = (name, args[0].dtype, *sorted((k, v) for k, v in meta.items()))
    if key in _chosen:
        w, st = _chosen[key]
        kernel[grid](*args, **meta, num_warps=w, num_stages=st)
        return
    failures = []
    for w, st in _table(name, meta):
        try:
            kernel[grid](*args, **meta, num_warps=w, num_stages=st)
        except Exception as e:  # compile failures (out of shared memory/registers, ptxas) come before the launch
            failures.append(f"({w} warps, {st} stages): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            continue
        _chosen[key] = (w, st)
        if failures:
            warnings.warn(f"delta_rule kernel {name!r}: fell back to ({w} warps, {st} stages) after "
                          + "; ".join(failures), RuntimeWarning, stacklevel=3)
        return
    raise RuntimeError(f"delta_rule kernel {name!r}: no configuration compiled: " + "; ".join(failures))


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor) -> None:
    if q.dim() != 4 or k.shape != q.shape or v.dim() != 4 or v.shape[:3] != q.shape[:3] \
            or beta.shape != q.shape[:3]:
        raise ValueError(f"delta_rule: q, k [B, H, N, d_k], v [B, H, N, d_v], beta [B, H, N]; got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}, {tuple(beta.shape)}")
    if q.dtype not in (torch.float32, torch.bfloat16, torch.float16) or len({q.dtype, k.dtype, v.dtype}) != 1:
        raise ValueError(f"delta_rule: q, k, v must share a dtype among float32/bfloat16/float16, got "
                         f"{q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] > MAX_D or v.shape[-1] > MAX_D:
        raise ValueError(f"delta_rule: d_k and d_v up to {MAX_D} (one 64 × d float32 tile per program), got "
                         f"{q.shape[-1]}, {v.shape[-1]}")


def _block(d: int) -> int:
    return max(16, triton.next_power_of_2(d))


def _default_dot(dtype: torch.dtype) -> str:
    """bf16 operands for bf16 inputs (fla's precision), tf32x3 (≈ float32) for float32, tf32 for fp16."""
    return {torch.float32: "tf32x3", torch.bfloat16: "bf16"}.get(dtype, "tf32")


def _kernel_dot(dot: str | None, dtype: torch.dtype) -> str:
    """The DOT constexpr the kernels get: ``dot`` (or the dtype's default), checked; "bf16" runs as
    "bf16_emulated" under TRITON_INTERPRET (the interpreter's bf16 tl.dot is wrong, its emulation is not)."""
    dot = dot or _default_dot(dtype)
    if dot not in DOTS:
        raise ValueError(f"dot must be one of {DOTS}, got {dot!r}")
    if dot == "bf16" and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return "bf16_emulated"
    return dot


def scratch_dtype(dot: str | None, dtype: torch.dtype | None = None) -> torch.dtype:
    """dtype of the scratch that is only ever a tl.dot operand (T, W_k, U_v, U, S, dS): bfloat16 with
    bf16 operands (rounding it on store loses nothing the MMA would keep; half the bytes, as fla stores
    w, u, h), float32 otherwise. U_v, which enters U = U_v − W_k Sᵀ, is rounded like fla's u. dU, z and
    den stay float32. ``dot`` None: the default for input ``dtype``."""
    dot = dot or _default_dot(dtype)
    return torch.bfloat16 if dot.startswith("bf16") else torch.float32


def _grads_dot(dot: str) -> str:
    """tl.dot precision of the grads kernel: ``dot`` with bf16 operands; "ieee" (float32 FMA, exact
    products) for every float32-operand mode — with tf32x3 each operand is split into two tf32 tiles and
    the kernel needs 262 KB of shared memory on sm_90 even at 4 warps (tf32: 229 KB), ieee 98 KB."""
    return dot if dot.startswith("bf16") else "ieee"


def _grads_block_v(dot: str, block_v: int, BVf: int) -> int:
    """d_v columns per step of the grads kernel's loop: with float32 (tf32) operands its tiles need
    ≥ 254 KB of shared memory at 64 columns on sm_90 (> 227 KB), so 32 there; bf16 operands fit at 64."""
    return min(BVf, block_v if dot.startswith("bf16") else min(block_v, 32))


def delta_rule_fwd_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                          feature_map: bool = True, normalize: bool = True, dot: str | None = None,
                          block_v: int = 32, configs: dict[str, tuple[int, int]] | None = None,
                          block_v_out: int = 64, inverse: str = INVERSE) -> tuple[torch.Tensor, ...]:
    """Forward. Returns (y, den, T, W_k, U, S, z): y in v's dtype, the rest scratch that the backward
    reads: den [BH, N_pad], T [BH, N_pad, 64], W_k [BH, N_pad, d_k], U [BH, N_pad, d_v], S [BH, NC, d_v, d_k],
    z [BH, NC, d_k] (T, W_k, U, S in :func:`scratch_dtype`, den and z float32). ``dot``: tl.dot's operands
    (default bf16 for bf16 inputs, tf32x3 for float32, tf32 for fp16); ``block_v``: d_v columns per program of the sequential state scan (32: 128 programs at
    B·H = 32, d_v = 128, where 64 left half of the H200's 132 SMs idle); ``block_v_out``: of the output
    kernel (64: Q Kᵀ is recomputed once per d_v block); ``configs``:
    {kernel: (num_warps, num_stages)} forced instead of the :data:`CONFIGS` fall-back (the bench's sweep);
    ``inverse``: how the WY kernel inverts the four diagonal 16 × 16 blocks of (I + A) — "batched" (one
    forward substitution over the four stacked blocks, 16 dependent steps) or "rowwise" (one block after
    the other, 64 steps; the earlier kernel, kept for the bench's comparison)."""
    _check(q, k, v, beta)
    if inverse not in INVERSES:
        raise ValueError(f"inverse must be one of {INVERSES}, got {inverse!r}")
    dot = _kernel_dot(dot, q.dtype)
    q, k, v, beta = (x.contiguous() for x in (q, k, v, beta))
    B, H, N, dk = q.shape
    dv = v.shape[-1]
    bh = B * H
    nc = triton.cdiv(N, CHUNK)
    n_pad = nc * CHUNK
    BK, BVf = _block(dk), _block(dv)
    BV, BVo = min(BVf, block_v), min(BVf, block_v_out)
    f32 = dict(dtype=torch.float32, device=q.device)
    sc = dict(dtype=scratch_dtype(dot), device=q.device)
    T = torch.empty(bh, n_pad, CHUNK, **sc)
    Wk = torch.empty(bh, n_pad, dk, **sc)
    Uv = torch.empty(bh, n_pad, dv, **sc)
    U = torch.empty(bh, n_pad, dv, **sc)
    S = torch.empty(bh, nc, dv, dk, **sc)
    z = torch.empty(bh, nc, dk, **f32)
    den = torch.ones(bh, n_pad, **f32)
    y = torch.empty(B, H, N, dv, dtype=v.dtype, device=v.device)
    if N == 0 or bh == 0:
        return y, den, T, Wk, U, S, z
    cfg = configs or {}
    wy_meta = dict(PHI=feature_map, BK=BK, BV=BVf, DOT=dot)
    wy_args = (k, v, beta, T, Wk, Uv, N, dk, dv, n_pad)
    wy_key = (k.dtype, *sorted(wy_meta.items()))
    if inverse == "batched" and wy_key not in _batched_inverse_failed:
        try:
            _launch("wy", _wy_fwd_kernel, (nc, bh), wy_args, dict(wy_meta, INV4=True), cfg.get("wy"))
        except RuntimeError as e:  # no configuration compiled: the row-wise form, said once per specialisation
            _batched_inverse_failed.add(wy_key)
            warnings.warn(f"delta_rule: the batched block inverse did not compile ({str(e)[:300]}); "
                          "using the row-wise one", RuntimeWarning, stacklevel=2)
            inverse = "rowwise"
    else:
        inverse = "rowwise"
    if inverse == "rowwise":
        _launch("wy", _wy_fwd_kernel, (nc, bh), wy_args, dict(wy_meta, INV4=False), cfg.get("wy"))
    _launch("state", _state_fwd_kernel, (triton.cdiv(dv, BV), bh), (k, Wk, Uv, U, S, z, N, dk, dv, n_pad, nc),
            dict(PHI=feature_map, BK=BK, BV=BV, DOT=dot), cfg.get("state"))
    _launch("out", _out_fwd_kernel, (nc, triton.cdiv(dv, BVo), bh), (q, k, U, S, z, y, den, N, dk, dv, n_pad, nc),
            dict(PHI=feature_map, NORM=normalize, BK=BK, BV=BVo, DOT=dot), cfg.get("out"))
    return y, den, T, Wk, U, S, z


def delta_rule_bwd_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                          y: torch.Tensor, den: torch.Tensor, T: torch.Tensor, Wk: torch.Tensor, U: torch.Tensor,
                          S: torch.Tensor, z: torch.Tensor, dy: torch.Tensor, feature_map: bool = True,
                          normalize: bool = True, dot: str | None = None, block_v: int = 32,
                          configs: dict[str, tuple[int, int]] | None = None, block_v_out: int = 64,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward from the forward's scratch: (dq, dk, dv, dβ) in the inputs' dtypes. ``block_v``: d_v
    columns per program of the reverse state scan; ``block_v_out``: of the parallel kernels (dv_local,
    and the grads kernel's loop step, capped at 32 with float32 operands)."""
    dot = _kernel_dot(dot, q.dtype)
    q, k, v, beta, dy = (x.contiguous() for x in (q, k, v, beta, dy))
    B, H, N, dk = q.shape
    dv = v.shape[-1]
    bh = B * H
    nc = triton.cdiv(N, CHUNK)
    n_pad = nc * CHUNK
    BK, BVf = _block(dk), _block(dv)
    BV, BVo = min(BVf, block_v), min(BVf, block_v_out)
    dq, dkk, dvv, db = (torch.empty_like(x) for x in (q, k, v, beta))
    if N == 0 or bh == 0:
        return dq, dkk, dvv, db
    f32 = dict(dtype=torch.float32, device=q.device)
    if normalize:
        # dden_t = −Σ_v dy_tv y_tv / den_t (y = o / den)
        dden = (-(dy.float() * y.float()).sum(-1) / den.view(B, H, n_pad)[:, :, :N]).contiguous()
    else:
        dden = den  # never read by the kernels (NORM off): no fill launch
    dU = torch.empty(bh, n_pad, dv, **f32)
    dS = torch.empty(bh, nc, dv, dk, dtype=scratch_dtype(dot), device=q.device)
    gz = torch.empty(bh, nc, dk, **f32) if normalize else den  # written/read only with NORM
    cfg = configs or {}
    _launch("dv_local", _dv_local_bwd_kernel, (nc, triton.cdiv(dv, BVo), bh),
            (q, k, dy, den, dden, dU, gz, N, dk, dv, n_pad, nc),
            dict(PHI=feature_map, NORM=normalize, BK=BK, BV=BVo, DOT=dot), cfg.get("dv_local"))
    if normalize:  # Σ over chunks > c of Σ_t dden_t q_t (without the normaliser dz is never read: no launches)
        later = gz.flip(1).cumsum(1).flip(1)
        dz = torch.cat([later[:, 1:], torch.zeros_like(later[:, :1])], dim=1).contiguous()
    else:
        dz = gz
    _launch("state_bwd", _state_bwd_kernel, (triton.cdiv(dv, BV), bh),
            (q, k, Wk, dy, den, dU, dS, N, dk, dv, n_pad, nc),
            dict(PHI=feature_map, NORM=normalize, BK=BK, BV=BV, DOT=dot), cfg.get("state_bwd"))
    _launch("grads", _grads_bwd_kernel, (nc, bh),
            (q, k, v, beta, T, U, S, z, dy, den, dden, dU, dS, dz, dq, dkk, dvv, db, N, dk, dv, n_pad, nc),
            dict(PHI=feature_map, NORM=normalize, BK=BK, BV=_grads_block_v(dot, block_v_out, BVf),
                 DOT=_grads_dot(dot)),
            cfg.get("grads"))
    return dq, dkk, dvv, db
