r"""Measured alternatives to the production routing forward, kept as the benchmark's peers (not on the
production path: :mod:`bkdsl.kernels.hyperbolic_routing.kernel` does not import this module).

Same contract as :func:`~bkdsl.kernels.hyperbolic_routing.kernel.hyperbolic_route_triton` — (gate, index,
distance) [T, k], nearest first — and the same select / measure arithmetic (the shared device functions of
the production module), launched differently (``RouteConfig.kernel``):

* ``rows`` — the whole padded row (D ≤ MAX_ROW_DIM) at once: the E×D centroid block is loaded **once per
  program**, before the loop over token tiles, and stays resident (registers / shared memory) while the
  program walks its tiles; each token tile is loaded once and serves both phases. Wider rows run the
  production tiled kernel.
* ``split`` — two kernels joined by the index output: a select kernel writes the K experts of each token,
  a measure kernel, one program per tile, reads them back, measures, re-sorts and writes all three
  outputs (one more read of x, 0.016 ms at the bench size, for two lighter kernels).

docs/kernels_routing.md has their measurements against the production launch (bench/hyperbolic_routing.py).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import triton
import triton.language as tl

from bkdsl.kernels.hyperbolic_routing import kernel as production
from bkdsl.kernels.hyperbolic_routing.kernel import (DEFAULT_CONFIG, RouteConfig, _centroid_norms,
                                                     _centroid_table, _curvature64, _finish_tile,
                                                     _forward_grid, _k_smallest, _measure, _pick, _pow2,
                                                     _precision, _select_key, _select_tile,
                                                     hyperbolic_route_triton)

__all__ = ["hyperbolic_route_variant", "MAX_ROW_DIM", "VARIANTS"]

MAX_ROW_DIM = 256          # the ``rows`` kernel holds a padded row of at most this many coordinates
VARIANTS = ("tiled", "rows", "split")


@triton.jit
def _route_select_kernel(x_ptr, mu_ptr, idx_ptr, T, E, D, c_hi, c_lo, K: tl.constexpr, KP: tl.constexpr,
                         BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr,
                         PRECISION: tl.constexpr):
    """``split`` phase 1: the K selected experts of each token into the index output (unsorted)."""
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    exp_, e_live, _, musq, beta = _centroid_table(mu_ptr, E, D, c_hi, c_lo, BLOCK_E, BLOCK_D)
    slot = tl.arange(0, KP)
    n_tiles = tl.cdiv(T, BLOCK_T)
    for tile in range(pid, n_tiles, nprog):
        tok = tile * BLOCK_T + tl.arange(0, BLOCK_T)
        t_live = tok < T
        sel, _ = _select_tile(x_ptr, mu_ptr, tok.to(tl.int64) * D, t_live, musq, beta, exp_, e_live, D, BLOCK_T,
                              BLOCK_E, BLOCK_D, K, KP, PRECISION, False)
        tl.store(idx_ptr + tok.to(tl.int64)[:, None] * K + slot[None, :], sel.to(tl.int64),
                 mask=t_live[:, None] & (slot[None, :] < K))


@triton.jit
def _route_measure_kernel(x_ptr, mu_ptr, gate_ptr, idx_ptr, dist_ptr, T, D, c, c_hi, c_lo, two_over_sqrt_c,
                          K: tl.constexpr, KP: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                          FUSED_MEASURE: tl.constexpr):
    """``split`` phase 2, one program per token tile: reads the selection from the index output, measures
    (β_j from the gathered rows' float64 ‖μ_j‖², no per-program pass over all centroids), re-sorts,
    and overwrites index, gate and distance."""
    pid = tl.program_id(0)
    tok = pid * BLOCK_T + tl.arange(0, BLOCK_T)
    t_live = tok < T
    slot = tl.arange(0, KP)
    o_live = t_live[:, None] & (slot[None, :] < K)
    sel = tl.load(idx_ptr + tok.to(tl.int64)[:, None] * K + slot[None, :], mask=o_live, other=0).to(tl.int32)
    c64 = _curvature64(c_hi, c_lo)
    s, musq64, xsq64 = _measure(x_ptr, mu_ptr, tok.to(tl.int64) * D, t_live, sel, tl.zeros([BLOCK_T], tl.float64),
                                D, BLOCK_T, BLOCK_D, K, KP, True, True, FUSED_MEASURE)
    _finish_tile(s, xsq64, sel, (1.0 - c64 * musq64).to(tl.float32), tok, t_live, gate_ptr, idx_ptr, dist_ptr,
                 c, c64, two_over_sqrt_c, K, KP)


@triton.jit
def _route_rows_kernel(x_ptr, mu_ptr, gate_ptr, idx_ptr, dist_ptr, T, E, D, c, c_hi, c_lo, two_over_sqrt_c, K: tl.constexpr, KP: tl.constexpr, BLOCK_T: tl.constexpr,
                       BLOCK_E: tl.constexpr, DP: tl.constexpr, PRECISION: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    exp_ = tl.arange(0, BLOCK_E)
    e_live = exp_ < E
    col = tl.arange(0, DP)
    c_live = col < D
    # the centroid block, loaded once per program and kept for all its token tiles
    mu_blk = tl.load(mu_ptr + exp_[:, None] * D + col[None, :], mask=e_live[:, None] & c_live[None, :], other=0.0)
    mu_t = tl.trans(mu_blk)
    m64 = mu_blk.to(tl.float64)
    musq, beta = _centroid_norms(tl.sum(m64 * m64, axis=1), e_live, _curvature64(c_hi, c_lo))
    c64 = _curvature64(c_hi, c_lo)
    n_tiles = tl.cdiv(T, BLOCK_T)
    for tile in range(pid, n_tiles, nprog):
        tok = tile * BLOCK_T + tl.arange(0, BLOCK_T)
        t_live = tok < T
        xt = tl.load(x_ptr + tok.to(tl.int64)[:, None] * D + col[None, :], mask=t_live[:, None] & c_live[None, :],
                     other=0.0)
        dot = tl.dot(xt, mu_t, input_precision=PRECISION)
        x64 = xt.to(tl.float64)
        xsq64 = tl.sum(x64 * x64, axis=1)
        sel = _k_smallest(_select_key(xsq64.to(tl.float32), musq, dot, beta, e_live), exp_, BLOCK_T, K, KP)
        mg = tl.load(mu_ptr + sel[:, :, None] * D + col[None, None, :],
                     mask=t_live[:, None, None] & c_live[None, None, :], other=0.0)
        diff = xt[:, None, :] - mg
        s = tl.sum(diff * diff, axis=2)
        _finish_tile(s, xsq64, sel, _pick(beta, sel, exp_, BLOCK_T, K, KP), tok, t_live, gate_ptr, idx_ptr,
                     dist_ptr, c, c64, two_over_sqrt_c, K, KP)


def hyperbolic_route_variant(x: torch.Tensor, mu: torch.Tensor, k: int, c: float = 1.0,
                             config: RouteConfig | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance) [T, k] by the kernel ``config.kernel`` names (``tiled``: the production
    launcher; ``rows`` with D > MAX_ROW_DIM also runs it)."""
    cfg = config or DEFAULT_CONFIG
    if cfg.kernel not in VARIANTS:
        raise ValueError(f"RouteConfig.kernel must be one of {VARIANTS}, got {cfg.kernel!r}")
    T, D = x.shape
    dp = max(16, _pow2(D))
    if cfg.kernel == "tiled" or (cfg.kernel == "rows" and dp > MAX_ROW_DIM):
        return production.hyperbolic_route_triton(x, mu, k, c, dataclasses.replace(cfg, kernel="tiled"))
    # the production set-up (checks, outputs through its allocator, launch constants): one copy
    x, mu, (gate, idx, dist), fwd = production.forward_launch(x, mu, k, c, cfg)
    if fwd is None:
        return gate, idx, dist
    E = mu.shape[0]
    c_hi, c_lo, block_e, n_tiles, common = fwd
    grid = _forward_grid(cfg, n_tiles, x.device)
    if cfg.kernel == "split":
        _route_select_kernel[grid](x, mu, idx, T, E, D, c_hi, c_lo, BLOCK_E=block_e, BLOCK_D=cfg.block_d,
                                   PRECISION=_precision(cfg.precision), **common)
        _route_measure_kernel[(n_tiles,)](x, mu, gate, idx, dist, T, D, float(c), c_hi, c_lo, 2.0 / math.sqrt(c),
                                          BLOCK_D=cfg.block_d, FUSED_MEASURE=cfg.fused_measure, **common)
        return gate, idx, dist
    _route_rows_kernel[grid](x, mu, gate, idx, dist, T, E, D, float(c), c_hi, c_lo, 2.0 / math.sqrt(c), DP=dp,
                             BLOCK_E=block_e, PRECISION=_precision(cfg.precision), **common)
    return gate, idx, dist
