r"""Fused Triton kernels for the resolvent diagonal G_ii = diag((H − zI)⁻¹) of tridiagonal H.

Specification: :mod:`bkdsl.kernels.resolvent.naive` (formulas, stability argument, adjoint sweeps). The
custom ops that call these launchers are registered in :mod:`bkdsl.kernels.resolvent.ops`; the causal
(one-sweep) kernels built from the same sweeps are in :mod:`bkdsl.kernels.resolvent.causal`.

Design (``docs/kernels_k1.md`` has the floors and the measurements):

* Segmented forward (default, :func:`resolvent_diag_triton`). A Schur step x ↦ d − b²/x is the Möbius
  map of M = [[d, −b²], [1, 0]] acting projectively on [x; 1]. Lanes are (sequence, segment) pairs; per
  window of SEGS × SEG sites each lane composes its segment's matrices (renormalised), an associative
  scan over the window's lanes gives every segment's incoming Schur complement, and each lane re-runs
  the sequential Schur step through its segment from that seed. α is parked in the output, the mirrored
  β sweep writes G = 1/(α + β − d) over it. a, b and G are addressed as [B, N] (no layout copies).
* Bounds: every stored α, β comes from a sequential Schur step; the scan only provides seeds, which
  are projected onto Im x ≤ −Im z where the exact value lies. Hence Im α, Im β ≤ −Im z and
  |G_ii| ≤ 1/Im z hold as in the reference (up to the rounding of one step), at any N.
* I/O layouts (launcher keyword ``io``, default = the measured kernel): ``io="tile"`` loads a, b, α once
  per window and sweep as per-lane tiles of sites in memory order (16-B accesses, chunks of TILE_SITES)
  and writes G as tiles; ``io="strided"`` accesses per step; ``maxnreg`` caps registers. The experimental
  variants (``io="packed"`` 8-B complex pairs, ``renorm="pow2"`` power-of-two renormalisation) are in
  :mod:`bkdsl.kernels.resolvent.variants`, which this module does not import (docs/kernels_k1.md,
  "Forward variants").
* Segmented backward (:func:`resolvent_diag_backward_triton`): the Möbius sweeps write α, β to scratch;
  the adjoint recurrences (linear given α, β) run the same compose / scan / re-sweep on affine maps.
* The previous sequential kernels (one lane per sequence, site-major copies, sweeps meeting in the
  middle) are the benchmark's peer, in :mod:`bkdsl.kernels.resolvent.variants` (not imported here).
* Compile time: the loops over a segment's sites are runtime loops (the compose unrolled by 2). Fully
  unrolled (``tl.static_range(SEG)``), Triton's coalescing pass — one def-use slice of the kernel per
  load/store — took 78 s (forward) and minutes (backward) to compile for sm_90; now 2–4 s.
* Complex numbers are (re, im) pairs of the input's real dtype; ``z`` travels as a 2-element tensor
  of that dtype so float64 inputs keep a float64 z.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from bkdsl.kernels.resolvent.naive import check_inputs

__all__ = ["resolvent_diag_triton", "resolvent_diag_backward_triton", "segment_layout", "layout_flags",
           "IO_LAYOUTS", "SEG", "SEGS", "BLOCK_B", "IO", "BWD_SEG", "BWD_SEGS"]

# Segmented forward: SEG sites per segment, SEGS segments (lanes) per window, BLOCK_B sequences per
# program, IO the access variant. 4096 × 2048 gives 4096 programs of 128 lanes, 8 sites each, two windows
# per sweep. Chosen by the H200 sweeps (bench/results/2026-12-01-resolvent_layouts*.json): with tile
# I/O (a window's a, b, α loaded once, G written as one tile) the forward takes 0.187 ms at (8, 128, 1)
# against 0.314 ms for the strided (4, 256, 1) kernel in the same process (0.28–0.29 ms in earlier
# runs; 0.65 ms at the first default (16, 128, 1)). The backward is fastest at (2, 128, 1), 0.53 ms.
SEG = 8
SEGS = 128
BLOCK_B = 1
IO = "tile"
BWD_SEG = 2
BWD_SEGS = 128
# I/O layouts of the segmented sweeps (launcher keyword io=): strided 4-B accesses per step / tile I/O per
# window. The packed-pair and power-of-two-renormalisation variants are in variants.py (#14: the
# production path does not import them); docs/kernels_k1.md, "Forward variants", has the measurements.
IO_LAYOUTS = ("strided", "tile")
# io="tile" moves a segment in chunks of TILE_SITES sites (one 16-B fp32 access per lane and array).
TILE_SITES = 4
# What a Möbius sweep writes (its FINISH constexpr): its Schur complements, the two-sided diagonal over the
# α parked by the previous sweep, or the causal (retarded) diagonal 1/α.
PARK, TWO_SIDED, RETARDED = 0, 1, 2



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
def _sigma(al_r, al_i, be_r, be_i, a, zr, zi, gr, gi):
    """σ = −conj(g)·G², G = 1/(α + β − d): the adjoint of s = α + β − d (u = conj(g))."""
    G_r, G_i = _reciprocal(al_r + be_r - (a - zr), al_i + be_i + zi)
    G2_r = G_r * G_r - G_i * G_i
    G2_i = 2.0 * G_r * G_i
    # −(gr − i·gi)(G2_r + i·G2_i)
    return -(gr * G2_r + gi * G2_i), -(gr * G2_i - gi * G2_r)


@triton.jit
def _re_over(x_r, x_i, p_r, p_i):
    """Re(x / p) for complex x, p."""
    return (x_r * p_r + x_i * p_i) / (p_r * p_r + p_i * p_i)


# --- the segmented forward (default) --------------------------------------------------------------
#
# Lanes are (sequence, segment) pairs. A program owns BLOCK_B sequences and walks them in windows of
# SEGS·SEG sites; within a window, lane s owns segment s (SEG consecutive sites). Each sweep (α left to
# right, β right to left through the sweep index k: site k, or site N−1−k when MIRROR) runs per window:
#
#   1. compose  — lane s multiplies its segment's transfer matrices M_k = [[d_k, −b²],[1, 0]] in order
#                 (P ← M_k P, renormalised), SEG dependent steps;
#   2. scan     — an inclusive associative scan over the lanes of the window (combine: later @ earlier,
#                 renormalised) gives Q_s = P_s ⋯ P_0; applied projectively to [c; 1], c the Schur
#                 complement carried in from the previous window, it gives x_s = the Schur complement at
#                 the last site of segment s;
#   3. re-sweep — lane s runs the ordinary Schur step x ← d − b²/x through segment s+1 (lane SEGS−1
#                 through segment 0, from c), SEG dependent steps, writing every site once.
#
# The re-sweep is the sequential recurrence of the specification, so every stored α, β comes from the
# step whose bound Im x ≤ −Im z the reference relies on; only the seeds x_s come from the scan, and they
# are projected onto Im x ≤ −Im z (the exact value lies there, so the projection never moves a seed away
# from it). Seeds are accurate anyway: the Möbius maps contract the lower half-plane, so a seed error
# decays through the re-sweep rather than grows.


@triton.jit
def _cmul(xr, xi, yr, yi):
    """(xr + i·xi)(yr + i·yi)."""
    return xr * yr - xi * yi, xr * yi + xi * yr


@triton.jit
def _renormalise(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i):
    """The 2×2 complex matrix divided by its largest |real or imaginary part| (projective: free)."""
    m = tl.maximum(tl.maximum(tl.maximum(tl.abs(p00r), tl.abs(p00i)), tl.maximum(tl.abs(p01r), tl.abs(p01i))),
                   tl.maximum(tl.maximum(tl.abs(p10r), tl.abs(p10i)), tl.maximum(tl.abs(p11r), tl.abs(p11i))))
    s = 1.0 / tl.maximum(m, 1e-30)  # m = 0 only for the zero matrix, which the maps never produce
    return p00r * s, p00i * s, p01r * s, p01i * s, p10r * s, p10i * s, p11r * s, p11i * s


@triton.jit
def _mobius_product(x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i,
                    y00r, y00i, y01r, y01i, y10r, y10i, y11r, y11i):
    """Y·X for 2×2 complex matrices, (Y·X)_jk = Y_j0 X_0k + Y_j1 X_1k (the complex products written out:
    under TRITON_INTERPRET every nested jit call costs milliseconds, and the scan calls this per lane)."""
    r00r = y00r * x00r - y00i * x00i + y01r * x10r - y01i * x10i
    r00i = y00r * x00i + y00i * x00r + y01r * x10i + y01i * x10r
    r01r = y00r * x01r - y00i * x01i + y01r * x11r - y01i * x11i
    r01i = y00r * x01i + y00i * x01r + y01r * x11i + y01i * x11r
    r10r = y10r * x00r - y10i * x00i + y11r * x10r - y11i * x10i
    r10i = y10r * x00i + y10i * x00r + y11r * x10i + y11i * x10r
    r11r = y10r * x01r - y10i * x01i + y11r * x11r - y11i * x11i
    r11i = y10r * x01i + y10i * x01r + y11r * x11i + y11i * x11r
    return r00r, r00i, r01r, r01i, r10r, r10i, r11r, r11i


@triton.jit
def _mobius_compose(x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i,
                    y00r, y00i, y01r, y01i, y10r, y10i, y11r, y11i):
    """Scan combine: Y·X (X the earlier maps, Y the later ones), renormalised by 1/max. Associative up
    to the scale factor, which the projective action ignores."""
    r00r, r00i, r01r, r01i, r10r, r10i, r11r, r11i = _mobius_product(
        x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i, y00r, y00i, y01r, y01i, y10r, y10i, y11r, y11i)
    return _renormalise(r00r, r00i, r01r, r01i, r10r, r10i, r11r, r11i)


@triton.jit
def _sweep_site(k, n, MIRROR: tl.constexpr):
    """Site of sweep step k and the bond to the previous step's site (valid for 1 ≤ k < N)."""
    if MIRROR:
        site = n - 1 - k
        bond = n - 1 - k
    else:
        site = k
        bond = k - 1
    return site, bond


@triton.jit
def _load_step(a_ptr, b_ptr, row64, row_live, k, n, zr, MIRROR: tl.constexpr):
    """(Re d_k, b²) at sweep step k for each lane; outside the chain valid is False."""
    site, bond = _sweep_site(k, n, MIRROR)
    valid = row_live & (k < n)
    a = tl.load(a_ptr + row64 * n + site, mask=valid, other=0.0)
    hop = tl.load(b_ptr + row64 * (n - 1) + bond, mask=valid & (k >= 1), other=0.0)
    return a - zr, hop * hop, site, valid


@triton.jit
def _compose_step(dr, b2, valid, zi, p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i):
    """P ← M P, M = [[d, −b²], [1, 0]], d = dr − i·Im z; past the chain's end (not valid) M = 1."""
    q00r, q00i = _cmul(dr, -zi, p00r, p00i)
    q01r, q01i = _cmul(dr, -zi, p01r, p01i)
    q00r -= b2 * p10r
    q00i -= b2 * p10i
    q01r -= b2 * p11r
    q01i -= b2 * p11i
    p10r = tl.where(valid, p00r, p10r)
    p10i = tl.where(valid, p00i, p10i)
    p11r = tl.where(valid, p01r, p11r)
    p11i = tl.where(valid, p01i, p11i)
    p00r = tl.where(valid, q00r, p00r)
    p00i = tl.where(valid, q00i, p00i)
    p01r = tl.where(valid, q01r, p01r)
    p01i = tl.where(valid, q01i, p01i)
    return p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i


@triton.jit
def _window_seeds(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, c_r, c_i, zi, seg, zero,
                  SEGS: tl.constexpr):
    """Phase 2: the scan over the window's segment maps P_s gives Q_s = P_s ⋯ P_0; x_s = Q_s·[c; 1]
    (projectively) is the Schur complement at the end of segment s, projected onto Im x ≤ −Im z where the
    exact value lies. Lane SEGS − 1, which re-sweeps segment 0, gets the carry c itself."""
    q00r, q00i, q01r, q01i, q10r, q10i, q11r, q11i = tl.associative_scan(
        _renormalise(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i), 1, _mobius_compose)
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
def _load_pair(at, valid):
    """(re, im) at the complex slots at (float pointers to re; im follows): two 4-B loads."""
    re = tl.load(at, mask=valid, other=1.0)
    im = tl.load(at + 1, mask=valid, other=0.0)
    return re, im


@triton.jit
def _store_pair(at, re, im, valid):
    """Store (re, im) to the complex slots at: two 4-B stores."""
    tl.store(at, re, mask=valid)
    tl.store(at + 1, im, mask=valid)


@triton.jit
def _segmented_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR: tl.constexpr,
                     FINISH: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr):
    """One Schur sweep over all windows: α (left to right) or, if MIRROR, β (right to left). FINISH says
    what the sweep writes to out (complex, re/im interleaved): PARK (0) its Schur complements; TWO_SIDED
    (1) G = 1/(α + β − d) over the α that out holds already; RETARDED (2) the causal diagonal 1/α. Every
    access is per step and lane (stride SEG between lanes)."""
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
                p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i)
        # 2. scan over the window's segments, then act on [c; 1]
        x_r, x_i = _window_seeds(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, c_r, c_i, zi, seg, zero,
                                 SEGS)
        # 3. re-sweep segment target(s) with the Schur step from the seed (a runtime loop, as above)
        for t in range(SEG):
            dr, b2, site, valid = _load_step(a_ptr, b_ptr, row64, row_live, w0 + target * SEG + t, n, zr,
                                             MIRROR)
            nr, ni = _schur_step(dr, zero - zi, b2, x_r, x_i)
            x_r = tl.where(valid, nr, x_r)
            x_i = tl.where(valid, ni, x_i)
            at = out_ptr + 2 * (row64 * n + site)
            if FINISH == 1:
                al_r, al_i = _load_pair(at, valid)
                g_r, g_i = _reciprocal(al_r + x_r - dr, al_i + x_i + zi)
                _store_pair(at, g_r, g_i, valid)
            elif FINISH == 2:
                g_r, g_i = _reciprocal(x_r, x_i)
                _store_pair(at, g_r, g_i, valid)
            else:
                _store_pair(at, x_r, x_i, valid)
        c_r = tl.sum(tl.where(seg == carry_lane, x_r, 0.0), axis=1, keep_dims=True)
        c_i = tl.sum(tl.where(seg == carry_lane, x_i, 0.0), axis=1, keep_dims=True)


# --- tile I/O (io="tile") ---------------------------------------------------------------------------
#
# Per window and sweep every array is touched once as a [BLOCK_B, SEGS, SEG] tile whose column j is in
# memory order (each lane's SEG sites contiguous: 16-B loads at SEG 4 for a; b's rows, N − 1 long, are
# not 16-B aligned, so Triton picks narrower accesses or converts the layout through shared memory):
# a, b for the compose; a, b of the target segments and, finishing, α for the re-sweep; the re-sweep's
# results leave as one [BLOCK_B, SEGS, SEG, 2] tile. No load waits for a store inside a window (the
# strided form re-loads after every store, as the compiler cannot prove out does not alias a, b). The
# segment loops are unrolled (tl.static_range): with one load or store per array and window the
# coalescing pass no longer sees a slice per step. SEG is a power of two (the column splits).


@triton.jit
def _segment_low(first, n, MIRROR: tl.constexpr, SEG: tl.constexpr):
    """Lowest site of the segment whose first sweep step is first: first, or N − first − SEG when MIRROR
    (sweep step k is site N−1−k there), so that column j of a tile is site low + j in both sweeps. With
    N a multiple of 16 (the runtime specialises it) the compiler sees low as a multiple of SEG."""
    if MIRROR:
        low = n - first - SEG
    else:
        low = first
    return low


@triton.jit
def _inside(live3, low, off, n, EVEN: tl.constexpr):
    """Which sites low + off of a tile lie in the chain. With EVEN (N a multiple of SEG) a segment is all
    in or all out, so the mask is per segment and does not split the vector accesses."""
    if EVEN:
        inside = live3 & (low >= 0) & (low < n)
    else:
        inside = live3 & (low + off >= 0) & (low + off < n)
    return inside


@triton.jit
def _load_tile(a_ptr, b_ptr, row3, live3, low, n, zr, MIRROR: tl.constexpr, SEG: tl.constexpr,
               EVEN: tl.constexpr):
    """(Re d, b²) of the sites low + j, j < SEG, as [BLOCK_B, SEGS, SEG] tiles: b is the bond to the previous
    sweep step (site − 1, or site itself when MIRROR), 0 at the chain's start (b_{−1} = b_{N−1} = 0)."""
    j = tl.arange(0, SEG)[None, None, :]
    site = low + j
    a = tl.load(a_ptr + row3 * n + site, mask=_inside(live3, low, j, n, EVEN), other=0.0)
    if MIRROR:
        bond = site
    else:
        bond = site - 1
    hop = tl.load(b_ptr + row3 * (n - 1) + bond, mask=live3 & (bond >= 0) & (bond < n - 1), other=0.0)
    return a - zr, hop * hop


@triton.jit
def _halve(x, ODD: tl.constexpr):
    """The even (or odd) columns of a [.., .., W] tile: reshape to [.., .., W/2, 2] and split."""
    even, odd = tl.split(tl.reshape(x, [x.shape[0], x.shape[1], x.shape[2] // 2, 2]))
    if ODD:
        even = odd
    return even


@triton.jit
def _column(tile, t: tl.constexpr, MIRROR: tl.constexpr, SEG: tl.constexpr):
    """Step t's column of a segment tile (column SEG−1−t when MIRROR) as [BLOCK_B, SEGS]: one halving
    per bit of the column index, lowest first (register renaming when the SEG sites sit in one thread;
    SEG a power of two ≤ 32)."""
    col = t
    if MIRROR:
        col = SEG - 1 - t
    x = tile
    if SEG >= 2:
        x = _halve(x, col & 1)
    if SEG >= 4:
        x = _halve(x, (col >> 1) & 1)
    if SEG >= 8:
        x = _halve(x, (col >> 2) & 1)
    if SEG >= 16:
        x = _halve(x, (col >> 3) & 1)
    if SEG >= 32:
        x = _halve(x, (col >> 4) & 1)
    return tl.reshape(x, [x.shape[0], x.shape[1]])


@triton.jit
def _put(tile, x, t: tl.constexpr, MIRROR: tl.constexpr, SEG: tl.constexpr):
    """tile with step t's column (SEG−1−t when MIRROR) replaced by x [BLOCK_B, SEGS] (a select against a
    constant column index, which folds away where the SEG sites sit in one thread)."""
    col = t
    if MIRROR:
        col = SEG - 1 - t
    return tl.where(tl.arange(0, SEG)[None, None, :] == col, x[:, :, None], tile)


@triton.jit
def _pair_tile(out_ptr, row3, live3, low, n, CH: tl.constexpr, EVEN: tl.constexpr):
    """Pointers and mask of the complex slots of sites low + j, j < CH, as one [BLOCK_B, SEGS, 2·CH] tile
    (re, im interleaved: 32 B per lane for CH = 4, two 16-B accesses)."""
    flat = tl.arange(0, 2 * CH)[None, None, :]
    return out_ptr + 2 * (row3 * n + low) + flat, _inside(live3, low, flat // 2, n, EVEN)


@triton.jit
def _segmented_sweep_tile(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR: tl.constexpr,
                          FINISH: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                          EVEN: tl.constexpr, CH: tl.constexpr):
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
                        p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i)
        # 2. seeds
        x_r, x_i = _window_seeds(p00r, p00i, p01r, p01i, p10r, p10i, p11r, p11i, c_r, c_i, zi, seg, zero,
                                 SEGS)
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
def _projective_ratio(u_r, u_i, v_r, v_i):
    """u / v for the point [u; v] of the projective line, scaled first so |v|² cannot underflow."""
    m = tl.maximum(tl.maximum(tl.abs(u_r), tl.abs(u_i)), tl.maximum(tl.abs(v_r), tl.abs(v_i)))
    s = 1.0 / tl.maximum(m, 1e-30)
    u_r, u_i, v_r, v_i = u_r * s, u_i * s, v_r * s, v_i * s
    inv = 1.0 / (v_r * v_r + v_i * v_i)
    return (u_r * v_r + u_i * v_i) * inv, (u_i * v_r - u_r * v_i) * inv


@triton.jit
def _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR: tl.constexpr,
                  FINISH: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                  IO: tl.constexpr, EVEN: tl.constexpr, CH: tl.constexpr):
    """The sweep with the I/O layout IO: 0 strided (per step, 4-B accesses), 1 tile (see
    _segmented_sweep_tile; EVEN: N is a multiple of its chunk of CH sites)."""
    if IO == 1:
        _segmented_sweep_tile(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR, FINISH, BLOCK_B, SEGS,
                              SEG, EVEN, CH)
    else:
        _segmented_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, MIRROR, FINISH, BLOCK_B, SEGS, SEG)


@triton.jit
def _program_rows(z_ptr, n_seq, BLOCK_B: tl.constexpr):
    """This program's sequences as [BLOCK_B, 1] int64 row indices, which of them exist, and (Re z, Im z)."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)[:, None]
    return rows.to(tl.int64), rows < n_seq, tl.load(z_ptr), tl.load(z_ptr + 1)


@triton.jit
def _resolvent_segmented_kernel(a_ptr, b_ptr, z_ptr, out_ptr, n_seq, n,
                                BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                                IO: tl.constexpr = 0,
                                EVEN: tl.constexpr = False, CH: tl.constexpr = 1):
    row64, row_live, zr, zi = _program_rows(z_ptr, n_seq, BLOCK_B)
    _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, False, False, BLOCK_B, SEGS, SEG, IO,
                  EVEN, CH)
    # β's re-sweep reads α parked by other lanes of this program
    tl.debug_barrier()
    _mobius_sweep(a_ptr, b_ptr, out_ptr, row64, row_live, n, zr, zi, True, True, BLOCK_B, SEGS, SEG, IO,
                  EVEN, CH)


# --- the segmented backward ------------------------------------------------------------------------
#
# Given α and β (recomputed by the two Möbius sweeps into scratch), the adjoints are linear
# recurrences, written for sweep step k as y_k = σ_k + q_k y_{k−1}:
#
#   B̄ (left to right, site k):       q_k = b²_{k−1} / β_k²
#   Ā (right to left, site N−1−k):   q_k = b²_i / α_i²,  i = N−1−k
#
# The same three phases run on affine maps y ↦ R y + S: compose (R ← qR, S ← qS + σ), scan (combine
# (R₂, S₂)∘(R₁, S₁) = (R₂R₁, R₂S₁ + S₂)), re-sweep with the sequential step from the seeds. Affine maps
# cannot be renormalised; R over a stretch j…k is the product of b_i²/α_i², which is (G_jk/G_kk)²
# for the Ā sweep (likewise for B̄), bounded by (|α_k + β_k − d_k| / Im z)² — no exponential growth.


@triton.jit
def _adjoint_terms(a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, row64, row_live, k, n, zr, zi, MIRROR: tl.constexpr,
                   CAUSAL: tl.constexpr = False):
    """σ and q = b²/p² at sweep step k, p = α at the site for Ā (MIRROR), β for B̄; also p, the site
    and the bond's hopping. CAUSAL: G = 1/α (no β; be_ptr is not read), so σ = −conj(g)/α²."""
    site, bond = _sweep_site(k, n, MIRROR)
    valid = row_live & (k < n)
    at = 2 * (row64 * n + site)
    al_r = tl.load(al_ptr + at, mask=valid, other=1.0)
    al_i = tl.load(al_ptr + at + 1, mask=valid, other=0.0)
    a = tl.load(a_ptr + row64 * n + site, mask=valid, other=0.0)
    if CAUSAL:
        be_r = a - zr  # β = d makes α + β − d = α
        be_i = al_i * 0.0 - zi
    else:
        be_r = tl.load(be_ptr + at, mask=valid, other=1.0)
        be_i = tl.load(be_ptr + at + 1, mask=valid, other=0.0)
    g_r = tl.load(g_ptr + at, mask=valid, other=0.0)
    g_i = tl.load(g_ptr + at + 1, mask=valid, other=0.0)
    hop = tl.load(b_ptr + row64 * (n - 1) + bond, mask=valid & (k >= 1), other=0.0)
    s_r, s_i = _sigma(al_r, al_i, be_r, be_i, a, zr, zi, g_r, g_i)
    if MIRROR:
        p_r, p_i = al_r, al_i
    else:
        p_r, p_i = be_r, be_i
    q_r, q_i = _hop_ratio(hop * hop, p_r, p_i)
    return s_r, s_i, q_r, q_i, p_r, p_i, hop, site, valid


@triton.jit
def _hop_ratio(b2, p_r, p_i):
    """q = b²/p² for real b² and complex p: ∂(d − b²/p)/∂p, the adjoint's step factor."""
    p2_r = p_r * p_r - p_i * p_i
    p2_i = 2.0 * p_r * p_i
    scale = b2 / (p2_r * p2_r + p2_i * p2_i)
    return p2_r * scale, -p2_i * scale


@triton.jit
def _affine_compose(xr_r, xr_i, xs_r, xs_i, yr_r, yr_i, ys_r, ys_i):
    """Scan combine: (R_y, S_y)∘(R_x, S_x) = (R_y R_x, R_y S_x + S_y), x the earlier map (products
    written out, as in :func:`_mobius_compose`)."""
    return (yr_r * xr_r - yr_i * xr_i, yr_r * xr_i + yr_i * xr_r,
            yr_r * xs_r - yr_i * xs_i + ys_r, yr_r * xs_i + yr_i * xs_r + ys_i)


@triton.jit
def _adjoint_segmented_sweep(a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, row64, row_live, n, zr, zi,
                             MIRROR: tl.constexpr, BLOCK_B: tl.constexpr, SEGS: tl.constexpr,
                             SEG: tl.constexpr, CAUSAL: tl.constexpr = False):
    """B̄ (left to right; writes Re(B̄_i − σ_i) to ∂L/∂a and Re(−2 b_i B̄_i/β_{i+1}) to ∂L/∂b) or, if
    MIRROR, Ā (right to left; adds Re Ā_i and Re(−2 b_i Ā_{i+1}/α_i)). CAUSAL (with MIRROR): the
    retarded diagonal's adjoint, σ from G = 1/α, and Ā's shares are the whole gradient (stored, not
    added)."""
    seg = tl.arange(0, SEGS)[None, :]
    target = (seg + 1) % SEGS
    carry_lane = (2 * SEGS - 2) % SEGS
    zero = tl.zeros([BLOCK_B, SEGS], zr.dtype)
    one = zero + 1.0
    c_r = tl.zeros([BLOCK_B, 1], zr.dtype)  # the adjoint before the chain (multiplied by q_0 = 0)
    c_i = tl.zeros([BLOCK_B, 1], zr.dtype)
    for w0 in range(0, n, SEGS * SEG):
        # 1. compose each segment's affine maps
        rr, ri, sr, si = one, zero, zero, zero
        for t in range(SEG):  # runtime loops: see _segmented_sweep
            s_r, s_i, q_r, q_i, p_r, p_i, hop, site, valid = _adjoint_terms(
                a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, row64, row_live, w0 + seg * SEG + t, n, zr, zi, MIRROR,
                CAUSAL)
            nr_, ni_ = _cmul(q_r, q_i, rr, ri)
            ns_r, ns_i = _cmul(q_r, q_i, sr, si)
            rr = tl.where(valid, nr_, rr)
            ri = tl.where(valid, ni_, ri)
            sr = tl.where(valid, ns_r + s_r, sr)
            si = tl.where(valid, ns_i + s_i, si)
        # 2. scan, then act on the carry
        rr, ri, sr, si = tl.associative_scan((rr, ri, sr, si), 1, _affine_compose)
        y_r, y_i = _cmul(rr, ri, c_r, c_i)
        y_r = tl.where(seg == SEGS - 1, c_r + zero, y_r + sr)
        y_i = tl.where(seg == SEGS - 1, c_i + zero, y_i + si)
        # 3. re-sweep segment target(s) sequentially, writing the gradients
        for t in range(SEG):  # runtime loops: see _segmented_sweep
            s_r, s_i, q_r, q_i, p_r, p_i, hop, site, valid = _adjoint_terms(
                a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, row64, row_live, w0 + target * SEG + t, n, zr, zi, MIRROR,
                CAUSAL)
            prev_r, prev_i = y_r, y_i
            n_r, n_i = _cmul(q_r, q_i, y_r, y_i)
            y_r = tl.where(valid, n_r + s_r, y_r)
            y_i = tl.where(valid, n_i + s_i, y_i)
            at_a = ga_ptr + row64 * n + site
            at_b = gb_ptr + row64 * (n - 1) + site
            if MIRROR:
                # Ā_i: ∂L/∂a_i += Re Ā_i; ∂L/∂b_i += Re(−2 b_i Ā_{i+1}/α_i) (bond i exists when k ≥ 1)
                has_bond = valid & (site < n - 1)
                share = -2.0 * hop * _re_over(prev_r, prev_i, p_r, p_i)
                if CAUSAL:
                    tl.store(at_a, y_r, mask=valid)
                    tl.store(at_b, share, mask=has_bond)
                else:
                    tl.store(at_a, tl.load(at_a, mask=valid, other=0.0) + y_r, mask=valid)
                    tl.store(at_b, tl.load(at_b, mask=has_bond, other=0.0) + share, mask=has_bond)
            else:
                # B̄_i: ∂L/∂a_i = Re(B̄_i − σ_i); ∂L/∂b_i = Re(−2 b_i B̄_i/β_{i+1})
                has_bond = valid & (site < n - 1)
                tl.store(at_a, y_r - s_r, mask=valid)
                b_i = tl.load(b_ptr + row64 * (n - 1) + site, mask=has_bond, other=0.0)
                nb_at = 2 * (row64 * n + site + 1)
                nb_r = tl.load(be_ptr + nb_at, mask=has_bond, other=1.0)
                nb_i = tl.load(be_ptr + nb_at + 1, mask=has_bond, other=0.0)
                tl.store(at_b, -2.0 * b_i * _re_over(y_r, y_i, nb_r, nb_i), mask=has_bond)
        c_r = tl.sum(tl.where(seg == carry_lane, y_r, 0.0), axis=1, keep_dims=True)
        c_i = tl.sum(tl.where(seg == carry_lane, y_i, 0.0), axis=1, keep_dims=True)


@triton.jit
def _resolvent_segmented_bwd_kernel(a_ptr, b_ptr, z_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, n_seq, n,
                                    BLOCK_B: tl.constexpr, SEGS: tl.constexpr, SEG: tl.constexpr,
                                    IO: tl.constexpr = 0,
                                    EVEN: tl.constexpr = False, CH: tl.constexpr = 1):
    row64, row_live, zr, zi = _program_rows(z_ptr, n_seq, BLOCK_B)
    # α, β into scratch with the forward's I/O variant; the adjoint sweeps keep strided I/O
    _mobius_sweep(a_ptr, b_ptr, al_ptr, row64, row_live, n, zr, zi, False, False, BLOCK_B, SEGS, SEG, IO,
                  EVEN, CH)
    _mobius_sweep(a_ptr, b_ptr, be_ptr, row64, row_live, n, zr, zi, True, False, BLOCK_B, SEGS, SEG, IO,
                  EVEN, CH)
    tl.debug_barrier()  # the adjoint sweeps read α, β written by other lanes
    _adjoint_segmented_sweep(a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, row64, row_live, n, zr, zi,
                             False, BLOCK_B, SEGS, SEG)
    tl.debug_barrier()  # Ā adds to the shares B̄'s lanes wrote
    _adjoint_segmented_sweep(a_ptr, b_ptr, g_ptr, al_ptr, be_ptr, ga_ptr, gb_ptr, row64, row_live, n, zr, zi,
                             True, BLOCK_B, SEGS, SEG)


def _z_tensor(a: torch.Tensor, z_re: float, z_im: float) -> torch.Tensor:
    return torch.tensor([z_re, z_im], dtype=a.dtype, device=a.device)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def segment_layout(n: int, seg: int = SEG, segs: int = SEGS) -> tuple[int, int]:
    """(SEG, SEGS) for a chain of N sites: shorter segments, and fewer per window, when N is shorter
    than a window (SEGS stays a power of two, as tl.arange needs)."""
    seg = max(1, min(seg, n))
    return seg, max(1, min(segs, triton.next_power_of_2(triton.cdiv(n, seg))))


def layout_flags(n: int, seg: int, segs: int, io: str) -> dict:
    """The kernels' layout constexprs for a chain of N sites: SEG, SEGS (segment_layout); IO, the I/O
    layout's code (strided 0, tile 1; tile rounds SEG up to a power of two ≤ 32, the padded sites being
    masked like a padded window); for tile only CH = min(SEG, TILE_SITES), the sites per access, and
    EVEN = N is a multiple of CH (per-chunk masks). The packed-I/O and power-of-two variants are
    :mod:`bkdsl.kernels.resolvent.variants`."""
    if io not in IO_LAYOUTS:
        raise ValueError(f"io must be one of {IO_LAYOUTS}, got {io!r} (the packed variant is "
                         "bkdsl.kernels.resolvent.variants.resolvent_diag_triton_variant)")
    seg, segs = segment_layout(n, seg, segs)
    flags = dict(SEG=seg, SEGS=segs, IO=IO_LAYOUTS.index(io))
    if io == "tile":
        seg = triton.next_power_of_2(seg)
        if seg > 32:
            raise ValueError(f"io='tile' needs SEG ≤ 32, got {seg}")
        ch = min(seg, TILE_SITES)
        flags.update(SEG=seg, CH=ch, EVEN=n % ch == 0)
    return flags


def resolvent_diag_triton(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float, seg: int = SEG,
                          segs: int = SEGS, block_b: int = BLOCK_B, num_warps: int | None = None,
                          out: torch.Tensor | None = None, io: str = IO,
                          maxnreg: int | None = None) -> torch.Tensor:
    """G_ii by the segmented forward kernel (no autograd; see the custom op). Reads a [B, N] and
    b [B, N−1] in place and writes complex [B, N] directly (no layout copies), into ``out`` if given
    (contiguous, complex, [B, N]; the tests pass a poisoned one). ``io`` picks the I/O layout
    (:func:`layout_flags`; the default is the measured-fastest kernel); ``maxnreg`` caps the
    registers per thread (Triton's CUDA option; the tile variant compiles to ≈ 120 at 4 × 256, which
    allows 16 resident warps per SM, 80 allow 24)."""
    check_inputs(a, b)
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    flags = layout_flags(n, seg, segs, io)
    if num_warps is None:
        num_warps = max(1, min(8, block_b * flags["SEGS"] // 32))
    if out is None:
        out = torch.empty(n_seq, n, dtype=_complex_dtype(a.dtype), device=a.device)
    grid = (triton.cdiv(n_seq, block_b),)
    _resolvent_segmented_kernel[grid](a, b, _z_tensor(a, z_re, z_im), torch.view_as_real(out), n_seq, n,
                                      BLOCK_B=block_b, num_warps=num_warps, **flags,
                                      **({"maxnreg": maxnreg} if maxnreg else {}))
    return out


def resolvent_diag_backward_triton(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                   grad: torch.Tensor, seg: int = BWD_SEG, segs: int = BWD_SEGS,
                                   block_b: int = BLOCK_B,
                                   num_warps: int | None = None,
                                   out: tuple[torch.Tensor, torch.Tensor] | None = None,
                                   io: str = "strided") -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) from ∂L/∂G by the segmented adjoint kernel ([B, N] in place, no layout copies);
    into ``out`` = (like a, like b) if given. α and β are recomputed into scratch (2 × 8 B/site) by the
    forward's sweeps, with its ``io`` layout; the adjoint sweeps are the same for all."""
    a, b = a.contiguous(), b.contiguous()
    n_seq, n = a.shape
    flags = layout_flags(n, seg, segs, io)
    if num_warps is None:
        num_warps = max(1, min(8, block_b * flags["SEGS"] // 32))
    g = torch.view_as_real(grad.to(_complex_dtype(a.dtype)).resolve_conj().contiguous())
    alpha = torch.empty(n_seq, n, 2, dtype=a.dtype, device=a.device)
    beta = torch.empty_like(alpha)
    grad_a, grad_b = out if out is not None else (torch.empty_like(a), torch.empty_like(b))
    grid = (triton.cdiv(n_seq, block_b),)
    _resolvent_segmented_bwd_kernel[grid](a, b, _z_tensor(a, z_re, z_im), g, alpha, beta, grad_a, grad_b,
                                          n_seq, n, BLOCK_B=block_b, num_warps=num_warps, **flags)
    return grad_a, grad_b
