"""Benchmark: scattering-gated block-sparse attention vs FlexAttention and dense SDPA (BENCHMARKS.md).

    python bench/scattering_attention.py --out bench/results        # on the GPU (bench/gpu_k2.sh)
    TRITON_INTERPRET=1 python bench/scattering_attention.py --smoke  # CPU: checks the script, no timing
    python bench/scattering_attention.py --variants --budget-s 120 --out DIR   # ONLY=variants bash bench/gpu_k2.sh
    TRITON_INTERPRET=1 python bench/scattering_attention.py --variants --smoke  # CPU check of that sweep

``--variants`` is the focused sweep of the launch variants (split causal diagonal, LPT order, TMA
forward; see :func:`variant_sweep`), ``--only-causal`` restricts it to the causal inputs.

Method: measure the two ceilings (bf16 matmul, device copy); build S so that exactly the intended
fraction of 128-block pairs is kept; check ours against the reference (fp32, computed head-chunk by
head-chunk) on fresh random inputs at full size, forward and gradients; then time every contender in
this process on the same inputs with ``triton.testing.do_bench`` (median, L2 flushed between runs).

FLOPs on the kept blocks: forward 4·B·H·D·(kept token pairs); forward+backward 3.5× that (backward =
2.5 forward: five matmuls against two). Dense SDPA: the same with all N² pairs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bkdsl.kernels.scattering_attention import active_tile
from bkdsl.kernels.scattering_attention.kernel import (
    Launch,
    Tiles,
    block_plan,
    bwd_dkdv,
    bwd_dq,
    bwd_preprocess,
    default_tiles,
    override_tiles,
    scattering_attention_forward,
)
from bkdsl.kernels.scattering_attention.ops import scattering_attention_triton
from bkdsl.kernels.tiles import failures as tile_failures
from bkdsl.nn.scattering_attention import block_sparsity_stats, scattering_attention_reference

TAU = 1.0
LOG = print


def banded_score(bsz: int, n: int, block: int, fraction: float, gen: torch.Generator, device) -> torch.Tensor:
    """S whose block scores keep exactly ``fraction`` of the (I, J) pairs under σ_I·σ_J > τ = 1.

    Three levels of σ, randomly placed: n_a blocks at 2, n_c at 0.75, the rest at 0.25. Kept pairs
    are high·high and high·mid (2·0.75 = 1.5 > 1; 0.75² and 2·0.25 are < 1):
    n_a² + 2·n_a·n_c = fraction·nB². For fraction 1/2, n_a = nB/2 and n_c = nB/4.
    fraction 1: every σ = 1.5 (all pairs kept, every token active: S ≥ 0.9, m = 1.5).
    Tokens: S_i = σ_I·u, u ~ U(0.6, 1), one token per block at exactly σ_I.
    """
    nb = n // block
    if fraction == 1.0:
        sigma = torch.full((bsz, nb), 1.5)
    else:
        assert fraction == 0.5 and nb % 4 == 0, "constructed for 1/2 and nB divisible by 4"
        n_a, n_c = nb // 2, nb // 4
        levels = torch.tensor([2.0] * n_a + [0.75] * n_c + [0.25] * (nb - n_a - n_c))
        sigma = torch.stack([levels[torch.randperm(nb, generator=gen)] for _ in range(bsz)])
    u = 0.6 + 0.4 * torch.rand(bsz, nb, block, generator=gen)
    top = torch.randint(0, block, (bsz, nb), generator=gen)
    u.scatter_(2, top[..., None], 1.0)
    return (sigma[..., None] * u).reshape(bsz, n).to(device)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def reference_chunked(q, k, v, s, do, causal, heads_per_chunk):
    """Reference o and (dq, dk, dv) in fp32, a few heads at a time (O(N²) memory per chunk)."""
    outs, grads = [], [[], [], []]
    for h0 in range(0, q.shape[1], heads_per_chunk):
        sl = slice(h0, h0 + heads_per_chunk)
        qc, kc, vc = (x[:, sl].detach().float().requires_grad_() for x in (q, k, v))
        o = scattering_attention_reference(qc, kc, vc, s, TAU, 128, causal)
        g = torch.autograd.grad(o, (qc, kc, vc), do[:, sl].float())
        outs.append(o.detach())
        for acc, gi in zip(grads, g):
            acc.append(gi)
        del o, g
    return torch.cat(outs, 1), [torch.cat(g, 1) for g in grads]


def check(q, k, v, s, causal, heads_per_chunk) -> dict:
    """Ours (the custom op, autograd) against the reference: relative errors, written-everywhere checks."""
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    o = scattering_attention_triton(qg, kg, vg, s, TAU, 128, causal)
    do = torch.randn_like(o)
    o.backward(do)
    ref_o, ref_g = reference_chunked(q, k, v, s, do, causal, heads_per_chunk)
    res = {
        "o": rel_err(o, ref_o),
        "dq": rel_err(qg.grad, ref_g[0]),
        "dk": rel_err(kg.grad, ref_g[1]),
        "dv": rel_err(vg.grad, ref_g[2]),
        "finite": bool(all(torch.isfinite(t).all() for t in (o, qg.grad, kg.grad, vg.grad))),
        "inactive_rows_exactly_zero": bool((o[ref_o.abs().amax(-1) == 0] == 0).all()),
    }
    res["ok"] = res["finite"] and res["inactive_rows_exactly_zero"] and max(
        res[x] for x in ("o", "dq", "dk", "dv")
    ) < 2e-2
    return res


def ceilings() -> dict:
    from triton.testing import do_bench

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    t_mm = do_bench(lambda: a @ b, return_mode="median")
    x = torch.randn(2**28, device="cuda")  # 1 GiB
    y = torch.empty_like(x)
    t_cp = do_bench(lambda: y.copy_(x), return_mode="median")
    return {"bf16_matmul_tflops": 2 * 8192**3 / t_mm / 1e9, "copy_tb_s": 2 * x.numel() * 4 / t_cp / 1e9}


def make_flex(bsz: int, n: int, block: int, dev, cuda: bool):
    """FlexAttention (compiled on the GPU), create_block_mask, the σ buffer its mask_mods read (one
    buffer, so each mask_mod compiles once) and the rule's mask_mods, plain and causal."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    flex = torch.compile(flex_attention) if cuda else flex_attention
    sig_buf = torch.zeros(bsz, n // block, device=dev)

    def rule(b, h, q_idx, kv_idx):
        return sig_buf[b, q_idx // block] * sig_buf[b, kv_idx // block] > TAU

    def rule_causal(b, h, q_idx, kv_idx):
        return rule(b, h, q_idx, kv_idx) & (q_idx >= kv_idx)

    return flex, create_block_mask, sig_buf, rule, rule_causal


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, no timing (CPU interpreter)")
    ap.add_argument("--no-causal", action="store_true")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--budget-s", "--budget", type=float, default=380.0,
                    help="skip later parts past this wall time")
    ap.add_argument("--variants", action="store_true", help="only the launch-variant sweep (issue #8)")
    ap.add_argument("--only-causal", action="store_true", help="--variants: the causal inputs only")
    args = ap.parse_args()
    if args.variants:
        return variant_sweep(args)

    cuda = torch.cuda.is_available() and not args.smoke
    dev = "cuda" if cuda else "cpu"
    bsz, heads, n, d = (2, 16, 8192, 128) if not args.smoke else (1, 2, 512, 32)
    dtype = torch.bfloat16 if cuda else torch.float32
    block = 128
    t_start = time.time()
    result: dict = {
        "name": "scattering_attention",
        "date": _dt.date.today().isoformat(),
        "gpu": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "triton": __import__("triton").__version__,
        "python": sys.version.split()[0],
        "sizes": {"B": bsz, "H": heads, "N": n, "D": d, "block": block, "dtype": str(dtype), "tau": TAU},
        "flop_convention": "fwd 4·B·H·D·kept_pairs; fwd+bwd 3.5x fwd",
        "default_tiles": default_tiles(block, d)._asdict(),  # before the sweep
        "scenarios": [],
    }
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        result["ceilings"] = ceilings()
        LOG(f"ceilings: {result['ceilings']}")

    flex, create_block_mask, sig_buf, rule, rule_causal = make_flex(bsz, n, block, dev, cuda)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result['date']}-scattering_attention{'-smoke' if args.smoke else ''}.json"

    def save() -> None:
        result["wall_s"] = time.time() - t_start
        path.write_text(json.dumps(result, indent=2))

    def elapsed() -> float:
        return time.time() - t_start

    gen = torch.Generator().manual_seed(int(time.time()))
    result["extra_checks"] = extra_checks(dev, gen, small=not cuda)
    save()

    def bench(fn, grads=None):
        from triton.testing import do_bench

        try:
            return do_bench(fn, warmup=50, rep=300, grad_to_none=grads, return_mode="median")
        except Exception as e:  # a contender that cannot run here is reported, not fatal
            LOG(f"   failed: {type(e).__name__}: {str(e)[:300]}")
            return float("nan")

    chosen = default_tiles(block, d)
    if cuda and not args.no_sweep:
        LOG("== tile sweep on the full-50% inputs")
        s = banded_score(bsz, n, block, 0.5, gen, dev)
        q, k, v, do = (torch.randn(bsz, heads, n, d, device=dev, dtype=dtype) for _ in range(4))
        result["sweep"], chosen = sweep(q, k, v, s, do, False, bench, t_start + 0.45 * args.budget_s)
        LOG(f"   chosen tiles: {chosen}")
        del q, k, v, do
    result["tiles_used"] = chosen._asdict()
    # causal scenarios run the causal entry of the tile table (the variant sweep's fastest combination)
    result["tiles_used_causal"] = default_tiles(block, d, True)._asdict()  # the table's first entry;
    # "active_tiles" records what ran after any fallback
    save()

    scenarios = [(0.5, False), (1.0, False)] + ([] if args.no_causal else [(0.5, True), (1.0, True)])
    for fraction, causal in scenarios:
        name = f"{'causal' if causal else 'full'}-{int(fraction * 100)}%"
        if elapsed() > args.budget_s * (0.65 if causal else 0.8):
            LOG(f"== {name}: skipped (wall-time budget)")
            result.setdefault("skipped", []).append(name)
            continue
        # causal scenarios run the default tile table with its fallback (#20.3: the causal dK/dV default
        # crashed ptxas on the H200 with triton 3.6); the non-causal ones the sweep's chosen tiles
        with (contextlib.nullcontext() if causal else override_tiles(block, d, chosen)):
            sc = scenario(name, fraction, causal, bsz, heads, n, d, block, dtype, dev, gen, cuda, flex,
                          create_block_mask, sig_buf, rule_causal if causal else rule, bench, result)
        result["scenarios"].append(sc)
        result["active_tiles"] = {k: t._asdict() for k, t in active_tile().items()}  # the tiles that ran
        result["tile_failures"] = tile_failures("scattering_attention")
        save()
        if cuda:
            torch.cuda.empty_cache()

    save()
    LOG(f"wrote {path}")
    summary(result)
    ok = all(sc["check"]["ok"] for sc in result["scenarios"]) and all(c["ok"] for c in result["extra_checks"])
    return 0 if ok else 1


def extra_checks(dev, gen, small: bool) -> list[dict]:
    """Other head dims, dtypes, blocks and an N that is not a multiple of the block, at moderate size."""
    cases = [  # (B, H, N, D, dtype, block, causal)
        (1, 4, 2048, 64, torch.float16, 128, False),
        (1, 4, 2048, 64, torch.float16, 128, True),
        (1, 4, 2000, 128, torch.bfloat16, 128, True),
        (1, 4, 4096, 64, torch.bfloat16, 64, False),
        (1, 4, 1000, 128, torch.float16, 64, True),
    ]
    if small:
        cases = [(1, 2, 200, 16, torch.float32, 64, True), (1, 2, 256, 32, torch.float32, 32, False)]
    rows = []
    for bsz, heads, n, d, dtype, block, causal in cases:
        nb = -(-n // block)
        level = torch.tensor([0.1, 0.6, 1.3, 2.5])[torch.randint(0, 4, (bsz, nb), generator=gen)]
        s = (level.repeat_interleave(block, 1)[:, :n] * torch.rand(bsz, n, generator=gen)).to(dev)
        q, k, v = (torch.randn(bsz, heads, n, d, generator=gen).to(dev, dtype).requires_grad_() for _ in range(3))
        o = scattering_attention_triton(q, k, v, s, TAU, block, causal)
        do = torch.randn_like(o)
        o.backward(do)
        qf, kf, vf = (x.detach().float().requires_grad_() for x in (q, k, v))
        ref = scattering_attention_reference(qf, kf, vf, s, TAU, block, causal)
        ref_g = torch.autograd.grad(ref, (qf, kf, vf), do.float())
        errs = [rel_err(o, ref)] + [rel_err(a.grad, b) for a, b in zip((q, k, v), ref_g)]
        stats = block_sparsity_stats(s, TAU, block, causal)
        row = {
            "B": bsz, "H": heads, "N": n, "D": d, "dtype": str(dtype), "block": block, "causal": causal,
            "skipped_fraction": stats.skipped_fraction.mean().item(),
            "active_fraction": stats.active_fraction.mean().item(),
            "rel_err_o_dq_dk_dv": errs,
            "ok": max(errs) < 2e-2 and bool(torch.isfinite(o).all()),
        }
        LOG(f"extra check {row}")
        rows.append(row)
    return rows


def scenario(name, fraction, causal, bsz, heads, n, d, block, dtype, dev, gen, cuda, flex,
             create_block_mask, sig_buf, mask_mod, bench, result) -> dict:
    """One sparsity pattern: check against the reference, then time every contender."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    nb = n // block
    s = banded_score(bsz, n, block, fraction, gen, dev)
    q, k, v = (torch.randn(bsz, heads, n, d, device=dev, dtype=dtype) for _ in range(3))
    stats = block_sparsity_stats(s, TAU, block, causal)
    kept_pairs = stats.kept_blocks.sum().item()
    total_pairs = bsz * (nb * (nb + 1) // 2 if causal else nb * nb)
    # token pairs actually computed: a kept diagonal block (causal) is a triangle
    if causal:
        plan = block_plan(s, TAU, block, True)
        diag = (plan.sigma * plan.sigma > TAU).sum().item()
        tok_pairs = (kept_pairs - diag) * block * block + diag * block * (block + 1) / 2
        dense_pairs = bsz * n * (n + 1) / 2
    else:
        tok_pairs = kept_pairs * block * block
        dense_pairs = bsz * n * n
    flops_fwd = 4 * heads * d * tok_pairs
    flops_dense = 4 * heads * d * dense_pairs
    sc = {
        "scenario": name,
        "causal": causal,
        "kept_block_fraction": kept_pairs / total_pairs,
        "active_token_fraction": stats.active_fraction.mean().item(),
        "flops_fwd_kept": flops_fwd,
        "flops_fwd_dense": flops_dense,
    }
    LOG(f"== {name}: kept {sc['kept_block_fraction']:.4f} of block pairs, "
        f"active tokens {sc['active_token_fraction']:.3f}")
    sc["check"] = check(q, k, v, s, causal, heads_per_chunk=2 if cuda else heads)
    LOG(f"   check vs reference: {sc['check']}")

    sig_buf.copy_(block_plan(s, TAU, block, causal).sigma)
    bm = create_block_mask(mask_mod, bsz, None, n, n, device=dev, BLOCK_SIZE=block)
    if not cuda:  # smoke: the FlexAttention contender computes the same thing on active rows
        o_flex = flex(q, k, v, block_mask=bm)
        o_ours = scattering_attention_triton(q, k, v, s, TAU, block, causal)
        act = o_ours.abs().amax(-1) > 0
        sc["flex_vs_ours_on_active_rows"] = rel_err(o_ours[act], o_flex[act])
        LOG(f"   flex vs ours (active rows): {sc['flex_vs_ours_on_active_rows']:.2e}")
        return sc

    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    do = torch.randn_like(q)

    def fwd_bwd(f):
        def run():
            f(qg, kg, vg).backward(do)

        return run

    def sdpa_with(backend):
        def f(a, b_, c):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(a, b_, c, is_causal=causal)

        return f

    contenders = {
        "ours": lambda a, b_, c: scattering_attention_triton(a, b_, c, s, TAU, block, causal),
        "flex": lambda a, b_, c: flex(a, b_, c, block_mask=bm),
        "sdpa_flash": sdpa_with(SDPBackend.FLASH_ATTENTION),
        "sdpa_cudnn": sdpa_with(SDPBackend.CUDNN_ATTENTION),
    }
    t = {}
    with torch.no_grad():
        t["plan_only"] = bench(lambda: block_plan(s, TAU, block, causal))
        for key, f in contenders.items():
            t[f"{key}_fwd"] = bench(lambda: f(q, k, v))
    for key, f in contenders.items():
        t[f"{key}_fwd_bwd"] = bench(fwd_bwd(f), [qg, kg, vg])
    for ph in ("fwd", "fwd_bwd"):
        t[f"sdpa_{ph}"] = min(t[f"sdpa_flash_{ph}"], t[f"sdpa_cudnn_{ph}"], key=lambda x: (x != x, x))
    sc["time_ms"] = t
    tf = lambda fl, ms: fl / ms / 1e9  # noqa: E731  (TFLOP/s)
    sc["tflops"] = {
        "ours_fwd": tf(flops_fwd, t["ours_fwd"]),
        "ours_fwd_bwd": tf(3.5 * flops_fwd, t["ours_fwd_bwd"]),
        "flex_fwd": tf(flops_fwd, t["flex_fwd"]),
        "flex_fwd_bwd": tf(3.5 * flops_fwd, t["flex_fwd_bwd"]),
        "sdpa_fwd_dense": tf(flops_dense, t["sdpa_fwd"]),
        "sdpa_fwd_bwd_dense": tf(3.5 * flops_dense, t["sdpa_fwd_bwd"]),
    }
    frac = flops_fwd / flops_dense
    sc["ratios"] = {
        "fwd_ours_over_flex": t["ours_fwd"] / t["flex_fwd"],
        "fwd_bwd_ours_over_flex": t["ours_fwd_bwd"] / t["flex_fwd_bwd"],
        "fwd_ours_over_sdpa_x_fraction": t["ours_fwd"] / (t["sdpa_fwd"] * frac),
        "fwd_bwd_ours_over_sdpa_x_fraction": t["ours_fwd_bwd"] / (t["sdpa_fwd_bwd"] * frac),
        "sdpa_is": "best of flash and cudnn backends",
    }
    peak = result["ceilings"]["bf16_matmul_tflops"]
    sc["floor_ms"] = {"fwd": flops_fwd / peak / 1e9, "fwd_bwd": 3.5 * flops_fwd / peak / 1e9}
    sc["fraction_of_floor"] = {
        "fwd": sc["floor_ms"]["fwd"] / t["ours_fwd"],
        "fwd_bwd": sc["floor_ms"]["fwd_bwd"] / t["ours_fwd_bwd"],
    }
    LOG("   " + "  ".join(f"{key}={val:.3f}ms" for key, val in t.items()))
    LOG("   " + "  ".join(f"{key}={val:.3f}" for key, val in sc["ratios"].items() if isinstance(val, float)))
    return sc


FWD_VARIANTS = [  # Launch(m, n, warps, stages)
    (128, 64, 4, 3), (128, 64, 4, 4), (128, 64, 4, 2), (128, 128, 8, 2), (128, 128, 8, 3), (64, 128, 4, 3),
    (128, 32, 4, 3),
]
DKDV_VARIANTS = [
    (64, 64, 4, 3), (64, 64, 8, 3), (64, 64, 4, 4), (32, 64, 4, 3), (64, 128, 8, 3), (128, 64, 8, 3),
    (128, 128, 8, 2),
]
DQ_VARIANTS = [
    (64, 64, 4, 3), (128, 64, 8, 3), (128, 64, 8, 2), (64, 32, 4, 3), (128, 32, 8, 3), (64, 64, 4, 4),
    (128, 128, 8, 2),
]


def sweep(q, k, v, s, do, causal, bench, deadline) -> tuple[list[dict], Tiles]:
    """Each kernel's tile shapes alone (forward, dK/dV, dQ), errors checked against the default
    tiles' result; returns the rows and the fastest Tiles."""
    rows = []
    scale = 1.0 / math.sqrt(q.shape[-1])
    base = default_tiles(128, q.shape[-1])
    plan = block_plan(s, TAU, 128, causal)
    o_ref, lse = scattering_attention_forward(q, k, v, s, TAU, 128, causal, scale, tiles=base, plan=plan)
    delta = bwd_preprocess(o_ref, do)
    dkdv_ref = bwd_dkdv(do, q, k, v, lse, delta, plan, TAU, 128, causal, scale, base.dkdv)
    dq_ref = bwd_dq(do, q, k, v, lse, delta, plan, TAU, 128, causal, scale, base.dq)
    launchers = {
        "fwd": (FWD_VARIANTS, lambda t: scattering_attention_forward(
            q, k, v, s, TAU, 128, causal, scale, tiles=base._replace(fwd=t), plan=plan)[0], o_ref),
        "dkdv": (DKDV_VARIANTS, lambda t: torch.cat(
            bwd_dkdv(do, q, k, v, lse, delta, plan, TAU, 128, causal, scale, t)), torch.cat(dkdv_ref)),
        "dq": (DQ_VARIANTS, lambda t: bwd_dq(
            do, q, k, v, lse, delta, plan, TAU, 128, causal, scale, t), dq_ref),
    }
    best = {}
    for kind, (variants, fn, ref) in launchers.items():
        for shape in variants:
            t = Launch(*shape)
            row = {"kind": kind, "tiles": list(shape)}
            if time.time() > deadline:
                row["error"] = "skipped: wall-time budget"
                rows.append(row)
                continue
            try:
                row["rel_err_vs_default"] = rel_err(fn(t), ref)
                row["ms"] = bench(lambda: fn(t))
            except Exception as e:  # a shape that does not fit (shared memory, registers) is a result
                row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
            rows.append(row)
            LOG(f"   sweep {kind} {shape}: {row.get('ms', float('nan')):.3f} ms {row.get('error', '')}")
            if "ms" in row and row["rel_err_vs_default"] < 1e-2 and row["ms"] == row["ms"]:
                if kind not in best or row["ms"] < best[kind][0]:
                    best[kind] = (row["ms"], t)
    chosen = Tiles(*(best[kd][1] if kd in best else getattr(base, kd) for kd in ("fwd", "dkdv", "dq")))
    return rows, chosen


def summary(result: dict) -> None:
    LOG(f"{'scenario':<12} {'kept':>6} {'err(o,dq,dk,dv)':>28} {'ours f':>8} {'flex f':>8} {'sdpa f':>8} "
        f"{'ours fb':>8} {'flex fb':>8} {'sdpa fb':>8} {'o/flex f':>8} {'o/flex fb':>9} {'o/sdpa*x f':>10}")
    for sc in result["scenarios"]:
        c = sc["check"]
        errs = ",".join(f"{c[x]:.1e}" for x in ("o", "dq", "dk", "dv"))
        t = sc.get("time_ms")
        if t is None:
            LOG(f"{sc['scenario']:<12} {sc['kept_block_fraction']:>6.3f} {errs:>28}")
            continue
        r = sc["ratios"]
        LOG(f"{sc['scenario']:<12} {sc['kept_block_fraction']:>6.3f} {errs:>28} {t['ours_fwd']:>8.3f} "
            f"{t['flex_fwd']:>8.3f} {t['sdpa_fwd']:>8.3f} {t['ours_fwd_bwd']:>8.3f} {t['flex_fwd_bwd']:>8.3f} "
            f"{t['sdpa_fwd_bwd']:>8.3f} {r['fwd_ours_over_flex']:>8.3f} {r['fwd_bwd_ours_over_flex']:>9.3f} "
            f"{r['fwd_ours_over_sdpa_x_fraction']:>10.3f}")


# ----------------------------------------------------------------------------------------------------
# --variants: the launch variants of issue #8 (split causal diagonal, LPT order, TMA forward)
# ----------------------------------------------------------------------------------------------------

# (kind, Launch) in priority order: the sweep stops at the budget, so the likeliest wins come first.
# Causal inputs: LPT is predicted to matter most (the natural grid launches the lightest query blocks
# first and leaves the heaviest as a tail), the split diagonal least (it saves masking, not FLOPs).
CAUSAL_VARIANTS = [
    ("dkdv", Launch(64, 64, 4, 4, lpt=True)),
    ("dq", Launch(128, 128, 8, 2, lpt=True)),
    ("fwd", Launch(128, 64, 4, 2, lpt=True)),
    ("dkdv", Launch(64, 64, 4, 4, diag=2, lpt=True)),
    ("dq", Launch(128, 128, 8, 2, diag=2, lpt=True)),
    ("dq", Launch(128, 64, 8, 3, diag=2, lpt=True)),
    ("dq", Launch(64, 64, 4, 3, lpt=True)),
    ("dkdv", Launch(64, 128, 8, 3, diag=2, lpt=True)),
    ("dkdv", Launch(32, 128, 8, 3, diag=2, lpt=True)),
    ("dkdv", Launch(64, 64, 4, 3, diag=2, lpt=True)),
    ("fwd", Launch(128, 64, 4, 2, lpt=True, tma=True)),
    ("fwd", Launch(128, 64, 4, 2, diag=2, lpt=True)),
    ("dkdv", Launch(64, 64, 4, 4, diag=2)),
    ("dq", Launch(128, 128, 8, 2, diag=2)),
    ("dq", Launch(128, 64, 8, 2, diag=2, lpt=True)),
    ("fwd", Launch(128, 128, 8, 3, lpt=True, tma=True)),
]
# Non-causal 50% forward, for the stretch goal (SDPA × kept fraction): TMA loads, bigger tiles, stages.
FULL_FWD_VARIANTS = [
    Launch(128, 64, 4, 2, tma=True),
    Launch(128, 64, 4, 2, lpt=True),
    Launch(128, 128, 8, 3, tma=True),
    Launch(128, 64, 4, 3, tma=True),
    Launch(128, 128, 8, 4, tma=True),
    Launch(128, 64, 4, 2, lpt=True, tma=True),
]


def _kernels(q, k, v, s, do, causal, plan, scale):
    """kind → (launch(t) → output, default output): each kernel alone on shared inputs; the backward
    kernels take the default forward's lse and Δ."""
    base = default_tiles(128, q.shape[-1])
    o, lse = scattering_attention_forward(q, k, v, s, TAU, 128, causal, scale, tiles=base, plan=plan)
    delta = bwd_preprocess(o, do)
    fns = {
        "fwd": lambda t: scattering_attention_forward(
            q, k, v, s, TAU, 128, causal, scale, tiles=base._replace(fwd=t), plan=plan)[0],
        "dkdv": lambda t: torch.cat(bwd_dkdv(do, q, k, v, lse, delta, plan, TAU, 128, causal, scale, t)),
        "dq": lambda t: bwd_dq(do, q, k, v, lse, delta, plan, TAU, 128, causal, scale, t),
    }
    return {kind: (fn, fn(getattr(base, kind))) for kind, fn in fns.items()}, base


def _variant_row(kind, t, fn, ref, default_ms, timer) -> dict:
    """Check one variant against the default's output, then time it; a wrong one is never timed."""
    row = {"kind": kind, "launch": t._asdict()}
    try:
        out = fn(t)
        row["rel_err_vs_default"] = rel_err(out, ref)
        row["finite"] = bool(torch.isfinite(out).all())
        row["ok"] = row["finite"] and row["rel_err_vs_default"] < 1e-2
        if row["ok"]:
            row["ms"] = timer(lambda: fn(t))
            row["speedup_vs_default"] = default_ms / row["ms"]
    except Exception as e:  # a variant that does not compile or fit is a result, not a crash
        row["ok"], row["error"] = False, f"{type(e).__name__}: {str(e)[:300]}"
    LOG(f"   {kind:<5} {tuple(t)}: {row.get('ms', float('nan')):.3f} ms "
        f"err {row.get('rel_err_vs_default', float('nan')):.1e} {row.get('error', '')}")
    return row


def _ours(tiles: Tiles, s, causal: bool, d: int):
    """Our op as a user calls it (plan included, autograd), launched with ``tiles``."""
    def f(a, b_, c):
        with override_tiles(128, d, tiles):
            return scattering_attention_triton(a, b_, c, s, TAU, 128, causal)
    return f


def _others(flex, bm, causal: bool) -> dict:
    """FlexAttention with the rule's BlockMask, and dense SDPA (cuDNN and flash backends)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def sdpa(backend):
        def f(a, b_, c):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(a, b_, c, is_causal=causal)
        return f

    return {"flex": lambda a, b_, c: flex(a, b_, c, block_mask=bm),
            "sdpa_cudnn": sdpa(SDPBackend.CUDNN_ATTENTION), "sdpa_flash": sdpa(SDPBackend.FLASH_ATTENTION)}


def _contenders(q, k, v, do, fns: dict, timer, backward: bool) -> dict:
    """fwd (and fwd+bwd through autograd) of each contender, on the same inputs."""
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    t = {}
    for key, f in fns.items():
        with torch.no_grad():
            t[f"{key}_fwd"] = timer(lambda: f(q, k, v))
        if backward:
            t[f"{key}_fwd_bwd"] = timer(lambda: f(qg, kg, vg).backward(do), [qg, kg, vg])
        LOG(f"   {key}: " + ", ".join(f"{ph} {t[f'{key}_{ph}']:.3f} ms" for ph in ("fwd", "fwd_bwd")
                                       if f"{key}_{ph}" in t))
    return t


def _best(rows: list[dict], base: Tiles) -> Tiles:
    """Per kernel, the fastest checked row; the default rows come first, so a tie keeps the default."""
    best: dict[str, tuple[float, Launch]] = {}
    for r in rows:
        ms = r.get("ms", math.nan)
        if r.get("ok") and math.isfinite(ms) and ms < best.get(r["kind"], (math.inf,))[0]:
            best[r["kind"]] = (ms, Launch(**r["launch"]))
    return Tiles(*(best[kd][1] if kd in best else getattr(base, kd) for kd in ("fwd", "dkdv", "dq")))


def variant_sweep(args) -> int:
    """The focused sweep (``--variants``): causal 50% — every kernel's default and variants alone,
    checked against the default's output, then fwd and fwd+bwd of the default, of the fastest
    combination, of FlexAttention and SDPA; then (unless ``--only-causal``) the non-causal 50% forward
    variants against the default and SDPA for the stretch goal. JSON rewritten after every item; items
    past ``--budget-s`` are recorded as skipped."""
    cuda = torch.cuda.is_available() and not args.smoke
    dev = "cuda" if cuda else "cpu"
    bsz, heads, n, d = (2, 16, 8192, 128) if cuda else (1, 2, 512, 32)
    dtype = torch.bfloat16 if cuda else torch.float32
    t0 = time.time()
    res: dict = {
        "name": "scattering_attention-variants", "date": _dt.date.today().isoformat(),
        "gpu": torch.cuda.get_device_name() if cuda else "cpu (interpreter smoke, no timing)",
        "torch": torch.__version__, "triton": __import__("triton").__version__,
        "sizes": {"B": bsz, "H": heads, "N": n, "D": d, "block": 128, "dtype": str(dtype), "tau": TAU},
        "budget_s": args.budget_s, "default_tiles": default_tiles(128, d)._asdict(),
        "timing": "triton.testing.do_bench median, warmup 25 ms, rep 100 ms, L2 flushed", "parts": {},
        "skipped": [],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{res['date']}-scattering_attention-variants{'-smoke' if args.smoke else ''}.json"

    def save() -> None:
        res["wall_s"] = time.time() - t0
        path.write_text(json.dumps(res, indent=2))

    def left() -> bool:
        return time.time() - t0 < args.budget_s

    def timer(fn, grads=None) -> float:
        if not cuda:
            fn()
            return float("nan")
        from triton.testing import do_bench

        try:
            return do_bench(fn, warmup=25, rep=100, grad_to_none=grads, return_mode="median")
        except Exception as e:  # a contender that cannot run here is reported, not fatal
            LOG(f"   failed: {type(e).__name__}: {str(e)[:300]}")
            return float("nan")

    gen = torch.Generator().manual_seed(int(time.time()))
    flex, create_block_mask, sig_buf, rule, rule_causal = make_flex(bsz, n, 128, dev, cuda)
    parts = [("causal-50%", True, CAUSAL_VARIANTS)]
    if not args.only_causal:
        parts.append(("full-50%", False, [("fwd", t) for t in FULL_FWD_VARIANTS]))
    for name, causal, variants in parts:
        if not left():
            res["skipped"].append(name)
            continue
        LOG(f"== {name}")
        s = banded_score(bsz, n, 128, 0.5, gen, dev)
        q, k, v, do = (torch.randn(bsz, heads, n, d, device=dev, dtype=dtype) for _ in range(4))
        plan = block_plan(s, TAU, 128, causal)
        part = res["parts"][name] = {"rows": []}
        sl = slice(0, 2)  # the default against the fp32 reference on two heads (cheap sanity check)
        part["default_check"] = check(q[:, sl], k[:, sl], v[:, sl], s, causal, heads_per_chunk=2)
        LOG(f"   default vs reference (2 heads): {part['default_check']}")
        kernels, base = _kernels(q, k, v, s, do, causal, plan, 1.0 / math.sqrt(d))
        default_ms = {}
        for kind in dict.fromkeys(kind for kind, _ in variants):
            fn, _ = kernels[kind]
            default_ms[kind] = timer(lambda: fn(getattr(base, kind)))
            part["rows"].append({"kind": kind, "launch": getattr(base, kind)._asdict(), "default": True,
                                 "ok": True, "ms": default_ms[kind]})
            LOG(f"   {kind:<5} default {tuple(getattr(base, kind))}: {default_ms[kind]:.3f} ms")
        save()
        if cuda:  # FlexAttention's compile is the one long item: its causal fwd+bwd comes first
            sig_buf.copy_(plan.sigma)
            bm = create_block_mask(rule_causal if causal else rule, bsz, None, n, n, device=dev,
                                   BLOCK_SIZE=128)
            others = _others(flex, bm, causal)
            if causal:
                fns = {"ours_default": _ours(base, s, causal, d)} | others
                part["time_ms"] = _contenders(q, k, v, do, fns, timer, backward=True)
                save()
        for kind, t in variants:
            if not left():
                res["skipped"].append(f"{name} {kind} {tuple(t)}")
                continue
            fn, ref = kernels[kind]
            part["rows"].append(_variant_row(kind, t, fn, ref, default_ms[kind], timer))
            save()
        best = _best(part["rows"], base)
        part["best_tiles"] = best._asdict()
        LOG(f"   best combination {best}")
        if cuda and left():
            fns = {"ours_best": _ours(best, s, causal, d)} if best != base else {}
            if not causal:  # forward only, for the stretch goal; Flex compiles its forward alone
                fns = {"ours_default": _ours(base, s, causal, d)} | fns | others
            part.setdefault("time_ms", {}).update(_contenders(q, k, v, do, fns, timer, backward=causal))
        _ratios(part, s, causal, bsz, heads, n, d)
        save()
        del q, k, v, do
        if cuda:
            torch.cuda.empty_cache()
    save()
    LOG(f"wrote {path}")
    rows_ok = all(r.get("ok") or "error" in r for p in res["parts"].values() for r in p["rows"])
    return 0 if rows_ok and all(p["default_check"]["ok"] for p in res["parts"].values()) else 1


def _ratios(part: dict, s, causal, bsz, heads, n, d) -> None:
    """ours / Flex (fwd, fwd+bwd) for the default and the best combination, and the forward against
    SDPA × kept fraction of token pairs (the stretch goal: ≤ 1.1)."""
    t = part.get("time_ms", {})
    stats = block_sparsity_stats(s, TAU, 128, causal)
    nb = n // 128
    kept = stats.kept_blocks.sum().item()
    if causal:
        plan = block_plan(s, TAU, 128, True)
        diag = (plan.sigma * plan.sigma > TAU).sum().item()
        frac = ((kept - diag) * 128 * 128 + diag * 128 * 129 / 2) / (bsz * n * (n + 1) / 2)
    else:
        frac = kept / (bsz * nb * nb)
    part["kept_token_pair_fraction"] = frac
    r = {}
    sdpa = {ph: min((t[f"sdpa_{x}_{ph}"] for x in ("cudnn", "flash") if t.get(f"sdpa_{x}_{ph}", math.nan)
                     == t.get(f"sdpa_{x}_{ph}")), default=math.nan) for ph in ("fwd", "fwd_bwd")}
    for who in ("default", "best"):
        for ph in ("fwd", "fwd_bwd"):
            ours = t.get(f"ours_{who}_{ph}")
            if ours is None:
                continue
            if f"flex_{ph}" in t:
                r[f"{who}_{ph}_over_flex"] = ours / t[f"flex_{ph}"]
            r[f"{who}_{ph}_over_sdpa_x_fraction"] = ours / (sdpa[ph] * frac)
    part["ratios"] = r
    if r:
        LOG("   " + "  ".join(f"{k_}={v_:.3f}" for k_, v_ in r.items()))


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") not in (None, "", "0") and torch.cuda.is_available():
        sys.exit("unset TRITON_INTERPRET on a GPU machine")
    sys.exit(main())
