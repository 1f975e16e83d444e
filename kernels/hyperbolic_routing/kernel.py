r"""Fused hyperbolic routing: Poincaré distances tokens → centroids, gate exp(−d), top-k; and its backward.

Specification: :func:`bkdsl.kernels.hyperbolic_routing.naive.hyperbolic_route_reference` (forward) and
:func:`bkdsl.kernels.hyperbolic_routing.naive.route_backward` (backward, closed form). The launchers here
are registered in :mod:`bkdsl.kernels.hyperbolic_routing.ops` as ``torch.ops.bkdsl.hyperbolic_route(x, mu,
k, c) -> (gate, index, distance)``, each [T, k], nearest first, with a fake implementation and an autograd
formula whose backward is the Triton kernel pair below. Design and floors: ``docs/kernels_routing.md``.

Notation: s = ‖x − μ‖², α = 1 − c‖x‖², β = 1 − c‖μ‖², t = c s/(αβ), d = (2/√c) asinh √t.

**Forward** (the ``tiled`` kernel; :class:`RouteConfig` picks its launch): a program walks token tiles of
``BLOCK_T`` rows (persistently, ``tile = pid, pid + P, …`` when ``programs_per_sm > 0``; one tile per
program otherwise, the first version's launch), D in ``BLOCK_D`` slices, centroids re-read from L1/L2
per slice. The measured alternatives with the same contract — ``rows`` (the centroid block resident per
program) and ``split`` (select and measure as two kernels) — are benchmark peers in
:mod:`bkdsl.kernels.hyperbolic_routing.variants`, which this module does not import.

Per token tile:

1. **Select.** key_e = (‖x‖² + ‖μ_e‖² − 2 x·μ_e)/β_e (∝ t; the one-matmul form through ``tl.dot``,
   fp32 accumulate, ``tf32x3`` by default), the k smallest by k rounds of argmin. The form cancels
   digits when x ≈ μ (absolute error ≲ 2⁻²²(‖x‖² + ‖μ‖²) in tf32x3); it only decides *which*
   experts, so two experts whose keys differ by less than that are a tie either way.
2. **Measure.** For the k selected experts s is recomputed from the difference x − μ (fp32, no
   cancellation), α from a float64 sum of squares of the fp32 coordinates (its digits survive
   ‖x‖ = 1 − 1e-6), β once per call on the host in float64, d = (2/√c) log1p(√t + t/(1 + √(1 + t)))
   with log1p by Goldberg's trick. The k slots are then re-sorted by the accurate d (k rounds of
   argmin), so the returned distances are ascending even where phase 1 swapped a near-tie.

**Backward** (∂L/∂d_j = g_j = grad_dist_j − e^{−d_j} grad_gate_j, per token t and slot j):

    a_j = g_j · 2 / (√s_j √(α β_j) √(1 + t_j))      (0 where s_j = 0: the subgradient at x = μ)
    r_j = 2√c √(t_j / (1 + t_j))
    ∂L/∂x        = Σ_j a_j (x − μ_j) + (Σ_j g_j r_j / α) x
    ∂L/∂μ_e      = Σ_{(t, j): idx = e} [ −a_j (x − μ_j) + (g_j r_j / β_j) μ_j ]

Kernel 1 (``_bwd_coef_kernel``) recomputes s (fp32, from the difference) and the float64 square sums
as the forward's measure phase does, then forms every per-(token, slot) scalar (t, gate, g, a, r) in
float64 — b and g cancel on some rows, see the kernel — and writes a, w = g r/β [T, k] and
b = Σ_j g_j r_j/α [T] rounded once to fp32. Kernel 2 (``_bwd_grad_kernel``) owns
one D-slice and one token split: it writes ∂L/∂x for its slice and reduces ∂L/∂μ over its tokens.
The scatter over tokens is a matmul with the one-hot selection matrix, onehot_jᵀ [E, BLOCK_T] @
q_j [BLOCK_T, BLOCK_D] (q_j = w_j μ_j − a_j (x − μ_j), each term formed by difference before the
sum, so no cancellation of x·a against μ·a), accumulated in registers and written to a per-split
workspace [S, E, D] that ``torch.sum`` reduces in fixed order: deterministic. ``atomic=True``
instead adds q_j into ∂L/∂μ with fp32 atomics (no workspace, not bit-reproducible).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import struct

import torch
import triton
import triton.language as tl

from bkdsl.diagnostics import BkError
from bkdsl.kernels import dispatch

__all__ = ["hyperbolic_route_triton", "route_backward_triton", "RouteConfig", "BackwardConfig",
           "DEFAULT_CONFIG", "V1_CONFIG", "MAX_EXPERTS"]

MAX_EXPERTS = 256


@dataclasses.dataclass(frozen=True)
class RouteConfig:
    """Launch of the forward: which kernel, its tiles, and how many programs.

    ``kernel``: ``tiled`` (select and measure in one program: the production kernel); ``rows`` and
    ``split`` name the benchmark peers of :mod:`bkdsl.kernels.hyperbolic_routing.variants` (launched by its
    ``hyperbolic_route_variant``; :func:`hyperbolic_route_triton` refuses them).
    ``programs_per_sm`` > 0: persistent grid of min(tiles, SMs × programs_per_sm) programs looping
    over token tiles; 0: one program per tile (for ``split``: of the select kernel). ``precision`` is
    the selection dot's ``input_precision`` (tf32x3: fp32-accurate products on the tensor cores; tf32:
    one product, a 2⁻¹⁰ relative error per input that may swap near-ties; ieee: fp32 FMAs).
    ``xsq_once`` (tiled): ‖x‖² summed once per tile, in float64, in the select loop (the key takes it
    rounded to fp32) instead of an fp32 sum there and a float64 one in the measure loop.
    ``fused_measure`` (tiled, split): the measure phase walks D once for all k slots (each x slice
    loaded once) instead of once per slot; same sums in the same order, so the same bits.
    """
    kernel: str = "tiled"          # "tiled" | "rows" | "split"
    block_t: int = 64
    block_d: int = 32              # tiled, split
    num_warps: int = 8
    num_stages: int = 2
    precision: str = "tf32x3"
    programs_per_sm: int = 2
    maxnreg: int | None = None     # cap on registers per thread (more programs per SM, maybe spills)
    xsq_once: bool = False
    fused_measure: bool = False

    def label(self) -> str:
        bd = f" bd={self.block_d}" if self.kernel != "rows" else ""
        reg = f" maxnreg={self.maxnreg}" if self.maxnreg else ""
        flags = "".join(f" {name}" for name in ("xsq_once", "fused_measure") if getattr(self, name))
        return (f"{self.kernel} bt={self.block_t}{bd} w={self.num_warps} st={self.num_stages} "
                f"{self.precision} pps={self.programs_per_sm}{reg}{flags}")


@dataclasses.dataclass(frozen=True)
class BackwardConfig:
    """Launch of the backward pair: tiles, token splits per SM, and how ∂L/∂μ is reduced."""
    block_t: int = 64
    block_d: int = 32              # D-slice of the gradient kernel
    num_warps: int = 8
    splits_per_sm: int = 1         # token splits S ≈ SMs × this / (D / block_d)
    atomic: bool = False           # True: fp32 atomics into ∂L/∂μ (not bit-reproducible)
    precision: str = "tf32x3"      # the one-hot scatter dot (one-hot is exact in tf32)


#: The first version's launch (one program per 64-token tile, D slices of 32, 4 warps, tf32x3).
V1_CONFIG = RouteConfig(kernel="tiled", block_t=64, block_d=32, num_warps=4, num_stages=3,
                        precision="tf32x3", programs_per_sm=0)
#: The fastest accurate launch measured on the H200 (65 536 x 64 x 256, fp32, k = 2): 64-token tiles,
#: D slices of 64, 4 warps, 3 stages, on a persistent grid of 2 programs per SM, measuring all k slots
#: in one walk over D — 0.0996 ms (bench/results/2026-12-01-hyperbolic_routing-run3.json), against
#: 0.1034 ms with D slices of 32 in the same process (0.1030 in run2) and 0.121 ms for the v1 launch
#: (one program per tile, run2). D slices of 64 were also 4 % faster at one program per tile in run2.
DEFAULT_CONFIG = dataclasses.replace(V1_CONFIG, block_d=64, programs_per_sm=2, fused_measure=True)
#: Fastest measured backward (same file: 0.294 ms vs 0.697 ms for 8 warps, 1 split per SM).
DEFAULT_BACKWARD = BackwardConfig(num_warps=4, splits_per_sm=2)


# --- shared device functions ------------------------------------------------------------------------

@triton.jit
def _log1p(u):
    """log(1 + u) to full relative precision for small u ≥ 0 (Goldberg 1991, Theorem 4)."""
    w = 1.0 + u
    return tl.where(w == 1.0, u, tl.log(w) * (u / tl.where(w == 1.0, 1.0, w - 1.0)))


@triton.jit
def _distance(t, two_over_sqrt_c):
    """d = (2/√c) asinh √t, asinh r = log1p(r + r²/(1 + √(1 + r²))) with r² = t."""
    return two_over_sqrt_c * _log1p(tl.sqrt(t) + t / (1.0 + tl.sqrt(1.0 + t)))


@triton.jit
def _curvature64(c_hi, c_lo):
    """c in float64 from its two-float split c = c_hi + c_lo (a float argument reaches a kernel as fp32,
    and 1 − c‖x‖² near the sphere needs c to ~1e-16 when c is not a float32 number)."""
    return tl.cast(c_hi, tl.float64) + tl.cast(c_lo, tl.float64)


@triton.jit
def _pick(vec, sel, exp_, BLOCK_T: tl.constexpr, K: tl.constexpr, KP: tl.constexpr):
    """vec[sel] [BLOCK_T, KP] (1 on padded slots) from a per-expert vector vec [BLOCK_E] in registers,
    one slot at a time (2-D [BLOCK_T, BLOCK_E] compares, not a 3-D one)."""
    slot = tl.arange(0, KP)
    out = tl.full([BLOCK_T, KP], 1.0, tl.float32)
    for j in tl.static_range(K):
        hit = exp_[None, :] == _slot(sel, slot, j)[:, None]
        out = tl.where(slot[None, :] == j, tl.sum(tl.where(hit, vec[None, :], 0.0), axis=1)[:, None], out)
    return out


@triton.jit
def _slot(vals, slot, j):
    """Column j of a [BLOCK_T, KP] tile."""
    return tl.sum(tl.where(slot[None, :] == j, vals, 0), axis=1)


@triton.jit
def _k_smallest(key, exp_, BLOCK_T: tl.constexpr, K: tl.constexpr, KP: tl.constexpr):
    """Indices [BLOCK_T, KP] of the K smallest keys per row (k rounds of argmin; slots ≥ K are 0)."""
    slot = tl.arange(0, KP)
    sel = tl.zeros([BLOCK_T, KP], tl.int32)
    for j in tl.static_range(K):
        best = tl.argmin(key, axis=1)
        sel = tl.where(slot[None, :] == j, best[:, None], sel)
        key = tl.where(exp_[None, :] == best[:, None], float("inf"), key)
    return sel


@triton.jit
def _sort_slots(dist, sel, K: tl.constexpr, KP: tl.constexpr):
    """(dist, sel) with the first K slots of each row in ascending order of dist."""
    slot = tl.arange(0, KP)
    work = tl.where(slot[None, :] < K, dist, float("inf"))
    out_d = tl.zeros_like(dist)
    out_i = tl.zeros_like(sel)
    for j in tl.static_range(K):
        m = tl.argmin(work, axis=1)
        pick = slot[None, :] == m[:, None]
        dj = tl.sum(tl.where(pick, dist, 0.0), axis=1)
        ij = tl.sum(tl.where(pick, sel, 0), axis=1)
        out_d = tl.where(slot[None, :] == j, dj[:, None], out_d)
        out_i = tl.where(slot[None, :] == j, ij[:, None], out_i)
        work = tl.where(pick, float("inf"), work)
    return out_d, out_i


@triton.jit
def _finish_tile(s, xsq64, sel, beta_sel, tok, t_live, gate_ptr, idx_ptr, dist_ptr, c, c64, two_over_sqrt_c,
                 K: tl.constexpr, KP: tl.constexpr):
    """From s, β of the selected [BLOCK_T, KP] and ‖x‖² (float64): d, re-sorted; store gate, index, d."""
    alpha = (1.0 - c64 * xsq64).to(tl.float32)
    dist = _distance(c * s / (alpha[:, None] * beta_sel), two_over_sqrt_c)
    dist, sel = _sort_slots(dist, sel, K, KP)
    slot = tl.arange(0, KP)
    out = tok.to(tl.int64)[:, None] * K + slot[None, :]
    o_live = t_live[:, None] & (slot[None, :] < K)
    tl.store(dist_ptr + out, dist, mask=o_live)
    tl.store(gate_ptr + out, tl.exp(-dist), mask=o_live)
    tl.store(idx_ptr + out, sel.to(tl.int64), mask=o_live)


@triton.jit
def _centroid_norms(musq64, e_live, c64):
    """(‖μ‖² as fp32, β = 1 − c‖μ‖² from the float64 sum, 1 on padded experts)."""
    return musq64.to(tl.float32), tl.where(e_live, (1.0 - c64 * musq64).to(tl.float32), 1.0)


@triton.jit
def _select_key(xsq, musq, dot, beta, e_live):
    """key_e = max(‖x‖² + ‖μ_e‖² − 2x·μ_e, 0)/β_e; +inf on padded experts."""
    s_fast = tl.maximum(xsq[:, None] + musq[None, :] - 2.0 * dot, 0.0)
    return tl.where(e_live[None, :], s_fast / beta[None, :], float("inf"))


# --- forward kernels --------------------------------------------------------------------------------

@triton.jit
def _x_slice(x_ptr, row_x, t_live, d0, D, xsq64, BLOCK_D: tl.constexpr, X_NORM: tl.constexpr):
    """The x tile of D slice [d0, d0 + BLOCK_D) (zeros outside), its columns and mask; with X_NORM its
    Σ x² in float64 added to ``xsq64``."""
    col = d0 + tl.arange(0, BLOCK_D)
    live = t_live[:, None] & (col < D)[None, :]
    xt = tl.load(x_ptr + row_x[:, None] + col[None, :], mask=live, other=0.0)
    if X_NORM:
        x64 = xt.to(tl.float64)
        xsq64 += tl.sum(x64 * x64, axis=1)
    return xt, col, live, xsq64


@triton.jit
def _slot_sums(x_ptr, mu_ptr, row_x, t_live, sel_j, D, xsq64, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
               X_NORM: tl.constexpr, MU_NORM: tl.constexpr):
    """One selected slot over D slices: s_j = Σ (x − μ_j)² in fp32 from the difference (no cancellation
    near x = μ); with X_NORM, Σ x² in float64 added to ``xsq64``; with MU_NORM, ‖μ_j‖² of the gathered
    rows in float64 (zeros otherwise). Shared by the forward's measure phase and the backward."""
    s_j = tl.zeros([BLOCK_T], tl.float32)
    m_j = tl.zeros([BLOCK_T], tl.float64)
    for d0 in range(0, D, BLOCK_D):
        xt, col, live, xsq64 = _x_slice(x_ptr, row_x, t_live, d0, D, xsq64, BLOCK_D, X_NORM)
        mg = tl.load(mu_ptr + sel_j[:, None] * D + col[None, :], mask=live, other=0.0)
        if MU_NORM:
            m64 = mg.to(tl.float64)
            m_j += tl.sum(m64 * m64, axis=1)
        diff = xt - mg
        s_j += tl.sum(diff * diff, axis=1)
    return s_j, xsq64, m_j


@triton.jit
def _measure_per_slot(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                      K: tl.constexpr, KP: tl.constexpr, X_NORM: tl.constexpr, MU_NORM: tl.constexpr):
    """(s, ‖μ_sel‖² float64 (MU_NORM), xsq64) for the K selected slots, one slot's D loop after the other
    (2-D tiles: few registers; x re-read per slot from L1/L2). ‖x‖² is summed in slot 0's loop when
    X_NORM (else ``xsq64`` is already complete)."""
    slot = tl.arange(0, KP)
    s = tl.zeros([BLOCK_T, KP], tl.float32)
    musq64 = tl.full([BLOCK_T, KP], 0.5, tl.float64)   # padded slots: any β > 0
    for j in tl.static_range(K):
        sel_j = _slot(sel, slot, j)
        if X_NORM:     # constexpr branches, not `X_NORM and j == 0`: plain constexpr arguments for older Triton
            s_j, xsq64, m_j = _slot_sums(x_ptr, mu_ptr, row_x, t_live, sel_j, D, xsq64, BLOCK_T, BLOCK_D, j == 0,
                                         MU_NORM)
        else:
            s_j, xsq64, m_j = _slot_sums(x_ptr, mu_ptr, row_x, t_live, sel_j, D, xsq64, BLOCK_T, BLOCK_D, False,
                                         MU_NORM)
        s = tl.where(slot[None, :] == j, s_j[:, None], s)
        musq64 = tl.where(slot[None, :] == j, m_j[:, None], musq64)
    return s, musq64, xsq64


@triton.jit
def _measure_fused(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                   K: tl.constexpr, KP: tl.constexpr, X_NORM: tl.constexpr, MU_NORM: tl.constexpr):
    """Same result as :func:`_measure_per_slot` with one D loop for all K slots: each x slice is loaded
    once and serves the K gathered rows (K fewer x reads from L1/L2, K accumulators live at once).
    Each slot's sums take the same terms in the same order, so the two agree bit for bit."""
    slot = tl.arange(0, KP)
    s = tl.zeros([BLOCK_T, KP], tl.float32)
    musq64 = tl.where(slot[None, :] < K, tl.zeros([BLOCK_T, KP], tl.float64), 0.5)
    for d0 in range(0, D, BLOCK_D):
        xt, col, live, xsq64 = _x_slice(x_ptr, row_x, t_live, d0, D, xsq64, BLOCK_D, X_NORM)
        for j in tl.static_range(K):
            mg = tl.load(mu_ptr + _slot(sel, slot, j)[:, None] * D + col[None, :], mask=live, other=0.0)
            if MU_NORM:
                m64 = mg.to(tl.float64)
                musq64 += tl.where(slot[None, :] == j, tl.sum(m64 * m64, axis=1)[:, None], 0.0)
            diff = xt - mg
            s += tl.where(slot[None, :] == j, tl.sum(diff * diff, axis=1)[:, None], 0.0)
    return s, musq64, xsq64


@triton.jit
def _centroid_sq64(mu_ptr, exp_, e_live, D, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr):
    """‖μ_e‖² in float64 for every expert (E·D multiply-adds, from L2), once per program."""
    musq64 = tl.zeros([BLOCK_E], tl.float64)
    for d0 in range(0, D, BLOCK_D):
        col = d0 + tl.arange(0, BLOCK_D)
        mt = tl.load(mu_ptr + exp_[:, None] * D + col[None, :], mask=e_live[:, None] & (col < D)[None, :],
                     other=0.0).to(tl.float64)
        musq64 += tl.sum(mt * mt, axis=1)
    return musq64


@triton.jit
def _centroid_table(mu_ptr, E, D, c_hi, c_lo, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr):
    """Per program, before its token tiles: the expert lanes, which are live, c in float64, and
    (‖μ‖², β) of every centroid (:func:`_centroid_norms` of :func:`_centroid_sq64`)."""
    exp_ = tl.arange(0, BLOCK_E)
    e_live = exp_ < E
    c64 = _curvature64(c_hi, c_lo)
    musq, beta = _centroid_norms(_centroid_sq64(mu_ptr, exp_, e_live, D, BLOCK_E, BLOCK_D), e_live, c64)
    return exp_, e_live, c64, musq, beta


@triton.jit
def _select_tile(x_ptr, mu_ptr, row_x, t_live, musq, beta, exp_, e_live, D, BLOCK_T: tl.constexpr,
                 BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr, K: tl.constexpr, KP: tl.constexpr,
                 PRECISION: tl.constexpr, XSQ64: tl.constexpr):
    """Phase 1 for one token tile: (indices [BLOCK_T, KP] of the K smallest keys, ‖x‖² in float64).

    key = (‖x‖² + ‖μ‖² − 2 x·μ)/β with x·μ through ``tl.dot`` over D slices. With XSQ64 the tile's
    ‖x‖² is summed in float64 here, once per tile, and returned for the measure phase (which then does
    not sum it again; the key takes it rounded to fp32); otherwise an fp32 sum for the key only and
    zeros are returned."""
    dot = tl.zeros([BLOCK_T, BLOCK_E], tl.float32)
    xsq = tl.zeros([BLOCK_T], tl.float32)
    xsq64 = tl.zeros([BLOCK_T], tl.float64)
    for d0 in range(0, D, BLOCK_D):
        col = d0 + tl.arange(0, BLOCK_D)
        c_live = col < D
        xt = tl.load(x_ptr + row_x[:, None] + col[None, :], mask=t_live[:, None] & c_live[None, :], other=0.0)
        mt = tl.load(mu_ptr + exp_[:, None] * D + col[None, :], mask=e_live[:, None] & c_live[None, :],
                     other=0.0)
        dot = tl.dot(xt, tl.trans(mt), dot, input_precision=PRECISION)
        if XSQ64:
            x64 = xt.to(tl.float64)
            xsq64 += tl.sum(x64 * x64, axis=1)
        else:
            xsq += tl.sum(xt * xt, axis=1)
    if XSQ64:
        xsq = xsq64.to(tl.float32)
    return _k_smallest(_select_key(xsq, musq, dot, beta, e_live), exp_, BLOCK_T, K, KP), xsq64


@triton.jit
def _measure(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
             K: tl.constexpr, KP: tl.constexpr, X_NORM: tl.constexpr, MU_NORM: tl.constexpr,
             FUSED: tl.constexpr):
    """Phase 2's sums by :func:`_measure_fused` (FUSED) or :func:`_measure_per_slot`."""
    if FUSED:
        out = _measure_fused(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T, BLOCK_D, K, KP, X_NORM,
                             MU_NORM)
    else:
        out = _measure_per_slot(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T, BLOCK_D, K, KP, X_NORM,
                                MU_NORM)
    return out


@triton.jit
def _route_tiled_kernel(x_ptr, mu_ptr, gate_ptr, idx_ptr, dist_ptr, T, E, D, c, c_hi, c_lo, two_over_sqrt_c,
                        K: tl.constexpr, KP: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr,
                        BLOCK_D: tl.constexpr, PRECISION: tl.constexpr, XSQ_ONCE: tl.constexpr,
                        FUSED_MEASURE: tl.constexpr):
    """Select and measure in one program per token tile (persistent when the grid is smaller)."""
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    exp_, e_live, c64, musq, beta = _centroid_table(mu_ptr, E, D, c_hi, c_lo, BLOCK_E, BLOCK_D)
    n_tiles = tl.cdiv(T, BLOCK_T)
    for tile in range(pid, n_tiles, nprog):
        tok = tile * BLOCK_T + tl.arange(0, BLOCK_T)
        t_live = tok < T
        row_x = tok.to(tl.int64) * D
        sel, xsq64 = _select_tile(x_ptr, mu_ptr, row_x, t_live, musq, beta, exp_, e_live, D, BLOCK_T, BLOCK_E,
                                  BLOCK_D, K, KP, PRECISION, XSQ_ONCE)
        beta_sel = _pick(beta, sel, exp_, BLOCK_T, K, KP)
        if XSQ_ONCE:   # ‖x‖² is complete: the measure loops do not sum it
            s, _, xsq64 = _measure(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T, BLOCK_D, K, KP, False,
                                   False, FUSED_MEASURE)
        else:
            s, _, xsq64 = _measure(x_ptr, mu_ptr, row_x, t_live, sel, xsq64, D, BLOCK_T, BLOCK_D, K, KP, True,
                                   False, FUSED_MEASURE)
        _finish_tile(s, xsq64, sel, beta_sel, tok, t_live, gate_ptr, idx_ptr, dist_ptr, c, c64, two_over_sqrt_c,
                     K, KP)


# --- backward kernels -------------------------------------------------------------------------------

@triton.jit
def _bwd_coef_kernel(x_ptr, mu_ptr, idx_ptr, ggate_ptr, gdist_ptr, a_ptr, w_ptr, b_ptr, T, D, c, c_hi, c_lo,
                     two_over_sqrt_c, two_sqrt_c, K: tl.constexpr, KP: tl.constexpr, BLOCK_T: tl.constexpr,
                     BLOCK_D: tl.constexpr, HAS_GGATE: tl.constexpr, HAS_GDIST: tl.constexpr):
    """Per (token, slot): a = g·2/(√s √(αβ) √(1+t)), w = g r/β; per token b = Σ_j g r/α."""
    pid = tl.program_id(0)
    tok = pid * BLOCK_T + tl.arange(0, BLOCK_T)
    t_live = tok < T
    row_x = tok.to(tl.int64) * D
    slot = tl.arange(0, KP)
    o_live = t_live[:, None] & (slot[None, :] < K)
    out = tok.to(tl.int64)[:, None] * K + slot[None, :]
    s = tl.zeros([BLOCK_T, KP], tl.float32)
    xsq64 = tl.zeros([BLOCK_T], tl.float64)
    musq64 = tl.full([BLOCK_T, KP], 0.5, tl.float64)    # ‖μ_j‖² of the gathered rows (padded slots: 0.5)
    for j in tl.static_range(K):                       # one slot at a time: 2-D tiles, few registers
        sel_j = tl.load(idx_ptr + tok.to(tl.int64) * K + j, mask=t_live, other=0)
        s_j, xsq64, m_j = _slot_sums(x_ptr, mu_ptr, row_x, t_live, sel_j, D, xsq64, BLOCK_T, BLOCK_D, j == 0, True)
        s = tl.where(slot[None, :] == j, s_j[:, None], s)
        musq64 = tl.where(slot[None, :] == j, m_j[:, None], musq64)
    # The per-(token, slot) scalars in float64 (BLOCK_T·k values per tile; the D loops above are
    # unchanged). Two sums cancel for a fraction ~ε of random incoming gradients: b = Σ_j g_j r_j/α when
    # g_1 r_1 ≈ −g_2 r_2 (r = 2√c √(t/(1+t)) lies within 1/t of 2√c, so its fp32 rounding — and on the
    # GPU the non-IEEE tl.sqrt / division — was multiplied by |g r|/|Σ g r|, up to ~1e4 at 65 536
    # tokens), and g = grad_dist − e^{−d} grad_gate near d = 0 (the fp32 gate's rounding, × |grad|/|g|).
    # The incoming gradients are exact inputs, so float64 here gives the reference's answer rounded
    # once (docs/kernels_routing.md, "Measured").
    c64 = _curvature64(c_hi, c_lo)
    alpha = 1.0 - c64 * xsq64
    beta = 1.0 - c64 * musq64
    ab = alpha[:, None] * beta
    s64 = s.to(tl.float64)
    t = c64 * s64 / ab
    g = tl.zeros([BLOCK_T, KP], tl.float64)
    if HAS_GDIST:
        g += tl.load(gdist_ptr + out, mask=o_live, other=0.0).to(tl.float64)
    if HAS_GGATE:      # the gate in float64 too: g = grad_dist − e^{−d} grad_gate cancels near d = 0
        gate = tl.exp(-_distance(t, 2.0 / tl.sqrt(c64)))
        g -= gate * tl.load(ggate_ptr + out, mask=o_live, other=0.0).to(tl.float64)
    g = tl.where(o_live, g, 0.0)
    pos = s64 > 0
    a = tl.where(pos, 2.0 / (tl.sqrt(tl.where(pos, s64, 1.0)) * tl.sqrt(ab) * tl.sqrt(1.0 + t)), 0.0)
    gr = g * (2.0 * tl.sqrt(c64)) * tl.sqrt(t / (1.0 + t))
    tl.store(a_ptr + out, (g * a).to(tl.float32), mask=o_live)
    tl.store(w_ptr + out, (gr / beta).to(tl.float32), mask=o_live)
    tl.store(b_ptr + tok, (tl.sum(gr, axis=1) / alpha).to(tl.float32), mask=t_live)


@triton.jit
def _bwd_grad_kernel(x_ptr, mu_ptr, idx_ptr, a_ptr, w_ptr, b_ptr, gx_ptr, ws_ptr, gmu_ptr, T, E, D,
                     K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr,
                     ATOMIC: tl.constexpr, PRECISION: tl.constexpr):
    """One D-slice × one token split: ∂L/∂x for the slice; ∂L/∂μ of the split (workspace or atomics)."""
    chunk = tl.program_id(0)
    split = tl.program_id(1)
    n_splits = tl.num_programs(1)
    col = chunk * BLOCK_D + tl.arange(0, BLOCK_D)
    c_live = col < D
    exp_ = tl.arange(0, BLOCK_E)
    acc = tl.zeros([BLOCK_E, BLOCK_D], tl.float32)
    n_tiles = tl.cdiv(T, BLOCK_T)
    for tile in range(split, n_tiles, n_splits):
        tok = tile * BLOCK_T + tl.arange(0, BLOCK_T)
        t_live = tok < T
        tok64 = tok.to(tl.int64)
        live = t_live[:, None] & c_live[None, :]
        xt = tl.load(x_ptr + tok64[:, None] * D + col[None, :], mask=live, other=0.0)
        gx = tl.load(b_ptr + tok, mask=t_live, other=0.0)[:, None] * xt
        for j in tl.static_range(K):
            sel = tl.load(idx_ptr + tok64 * K + j, mask=t_live, other=0)
            a = tl.load(a_ptr + tok64 * K + j, mask=t_live, other=0.0)
            w = tl.load(w_ptr + tok64 * K + j, mask=t_live, other=0.0)
            mg = tl.load(mu_ptr + sel[:, None] * D + col[None, :], mask=live, other=0.0)
            p = a[:, None] * (xt - mg)
            gx += p
            q = w[:, None] * mg - p
            if ATOMIC:
                tl.atomic_add(gmu_ptr + sel[:, None] * D + col[None, :], q, mask=live)
            else:
                onehot = (sel[:, None] == exp_[None, :]).to(tl.float32)
                acc = tl.dot(tl.trans(onehot), q, acc, input_precision=PRECISION)
        tl.store(gx_ptr + tok64[:, None] * D + col[None, :], gx, mask=live)
    if not ATOMIC:
        ws = ws_ptr + split.to(tl.int64) * E * D
        tl.store(ws + exp_[:, None] * D + col[None, :], acc, mask=(exp_[:, None] < E) & c_live[None, :])


# --- host side --------------------------------------------------------------------------------------

def _alloc(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Output buffers (one place, so tests can poison them and check every element is written)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _check(x: torch.Tensor, mu: torch.Tensor, k: int) -> None:
    if x.dtype != torch.float32 or mu.dtype != torch.float32:
        raise BkError("E0403", f"the routing kernel takes float32 tokens and centroids, got {x.dtype} and "
                               f"{mu.dtype}", help="use the reference (BKDSL_KERNELS=reference) for float64")
    if mu.shape[0] > MAX_EXPERTS:
        raise BkError("E0201", f"the routing kernel holds at most {MAX_EXPERTS} experts per program, got "
                               f"{mu.shape[0]}")


@functools.lru_cache(maxsize=None)
def _sms_of(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _num_sms(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device; 2 under the interpreter (so loops get > 1 trip)."""
    if device.type == "cuda":
        return _sms_of(device.index if device.index is not None else torch.cuda.current_device())
    return 2


@functools.lru_cache(maxsize=64)
def _split(c: float) -> tuple[float, float]:
    """c = c_hi + c_lo with both float32 numbers (c to ~2⁻⁴⁸ relative inside the kernel). Rounded by
    ``struct`` (IEEE round-to-nearest, as torch does) and cached: no tensor is made per call."""
    c_hi = _f32(c)
    return c_hi, _f32(c - c_hi)


def _f32(v: float) -> float:
    return struct.unpack("f", struct.pack("f", v))[0]


def _cdiv(a: int, b: int) -> int:
    """⌈a/b⌉. Plain integers: triton.cdiv / next_power_of_2 are constexpr functions in recent Triton
    with a few µs of host overhead per call, and the launchers call them a dozen times per fwd + bwd."""
    return -(-a // b)


def _pow2(n: int) -> int:
    """Smallest power of two ≥ n (n ≥ 1)."""
    return 1 << (n - 1).bit_length()


def _precision(p: str) -> str:
    # the interpreter computes every dot in numpy float32 whatever the mode
    return "ieee" if dispatch.interpreting() else p


def _forward_grid(cfg: RouteConfig, n_tiles: int, device: torch.device) -> tuple[int]:
    return (min(n_tiles, _num_sms(device) * cfg.programs_per_sm) if cfg.programs_per_sm > 0 else n_tiles,)


def forward_launch(x: torch.Tensor, mu: torch.Tensor, k: int, c: float, cfg: RouteConfig):
    """What every forward routing kernel (the production one and the variants) needs before its launch:
    the checked contiguous inputs, the outputs (gate, idx, dist) [T, k], and the launch constants
    (c_hi, c_lo, BLOCK_E, number of token tiles, the common meta-parameters) — None for T = 0."""
    _check(x, mu, k)
    x, mu = x.contiguous(), mu.contiguous()
    T = x.shape[0]
    outs = (_alloc((T, k), x.dtype, x.device), _alloc((T, k), torch.int64, x.device),
            _alloc((T, k), x.dtype, x.device))
    if T == 0:
        return x, mu, outs, None
    c_hi, c_lo = _split(c)
    launch = dict(num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    if cfg.maxnreg and x.is_cuda:
        launch["maxnreg"] = cfg.maxnreg
    common = dict(K=k, KP=_pow2(k), BLOCK_T=cfg.block_t, **launch)
    return x, mu, outs, (c_hi, c_lo, max(16, _pow2(mu.shape[0])), _cdiv(T, cfg.block_t), common)


def hyperbolic_route_triton(x: torch.Tensor, mu: torch.Tensor, k: int, c: float = 1.0,
                            config: RouteConfig | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance) [T, k] by the fused kernel (no autograd; see the custom op)."""
    cfg = config or DEFAULT_CONFIG
    if cfg.kernel != "tiled":  # the variants' kernels are not on the production path
        raise ValueError(f"hyperbolic_route_triton runs the tiled kernel; the {cfg.kernel!r} variant is "
                         "bkdsl.kernels.hyperbolic_routing.variants.hyperbolic_route_variant")
    x, mu, (gate, idx, dist), fwd = forward_launch(x, mu, k, c, cfg)
    if fwd is None:
        return gate, idx, dist
    T, D = x.shape
    E = mu.shape[0]
    c_hi, c_lo, block_e, n_tiles, common = fwd
    _route_tiled_kernel[_forward_grid(cfg, n_tiles, x.device)](
        x, mu, gate, idx, dist, T, E, D, float(c), c_hi, c_lo, 2.0 / math.sqrt(c), BLOCK_E=block_e,
        PRECISION=_precision(cfg.precision), BLOCK_D=cfg.block_d, XSQ_ONCE=cfg.xsq_once,
        FUSED_MEASURE=cfg.fused_measure, **common)
    return gate, idx, dist


def route_backward_triton(x: torch.Tensor, mu: torch.Tensor, idx: torch.Tensor, grad_gate: torch.Tensor | None,
                          grad_dist: torch.Tensor | None, c: float = 1.0, config: BackwardConfig | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂x, ∂L/∂μ) of the k selected gates and distances: the kernel form of ``route_backward``."""
    cfg = config or DEFAULT_BACKWARD
    _check(x, mu, idx.shape[1])
    x, mu, idx = x.contiguous(), mu.contiguous(), idx.contiguous()
    T, D = x.shape
    E, k = mu.shape[0], idx.shape[1]
    grad_x = _alloc((T, D), x.dtype, x.device)
    if T == 0:
        return grad_x, torch.zeros_like(mu)
    gg = grad_gate.to(torch.float32).contiguous() if grad_gate is not None else None
    gd = grad_dist.to(torch.float32).contiguous() if grad_dist is not None else None
    a = torch.empty(T, k, dtype=torch.float32, device=x.device)
    w = torch.empty_like(a)
    b = torch.empty(T, dtype=torch.float32, device=x.device)
    dp = max(16, _pow2(D))
    n_tiles = _cdiv(T, cfg.block_t)
    _bwd_coef_kernel[(n_tiles,)](
        x, mu, idx, gg if gg is not None else a, gd if gd is not None else a, a, w, b, T, D, float(c), *_split(c),
        2.0 / math.sqrt(c), 2.0 * math.sqrt(c), K=k, KP=_pow2(k), BLOCK_T=cfg.block_t,
        BLOCK_D=min(32, dp), HAS_GGATE=gg is not None, HAS_GDIST=gd is not None,
        num_warps=4)                                            # bd 32: no spills at 4 warps (sm_90)
    block_d = min(cfg.block_d, dp)
    n_chunks = _cdiv(D, block_d)
    splits = max(1, min(n_tiles, _cdiv(_num_sms(x.device) * cfg.splits_per_sm, n_chunks)))
    block_e = max(16, _pow2(E))
    if cfg.atomic:
        grad_mu = torch.zeros_like(mu)
        ws = grad_mu
    else:
        grad_mu = None
        ws = torch.empty(splits, E, D, dtype=torch.float32, device=x.device)
    _bwd_grad_kernel[(n_chunks, splits)](
        x, mu, idx, a, w, b, grad_x, ws, grad_mu if grad_mu is not None else ws, T, E, D, K=k,
        BLOCK_T=cfg.block_t, BLOCK_E=block_e, BLOCK_D=block_d, ATOMIC=cfg.atomic,
        PRECISION=_precision(cfg.precision), num_warps=cfg.num_warps)
    if grad_mu is None:
        grad_mu = ws.sum(0)          # fixed-order reduction over the splits: deterministic
    return grad_x, grad_mu
