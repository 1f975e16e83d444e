"""Benchmark: the chunked Triton delta rule against flash-linear-attention's chunk_delta_rule (issue #20.2).

    python bench/delta_rule.py --out DIR --budget-s 190      # on the GPU (bench/gpu_delta.sh)
    TRITON_INTERPRET=1 python bench/delta_rule.py --smoke    # CPU: checks the script at tiny size, no timing

Two functions, each checked before it is timed, on fresh random inputs (seed = wall clock, recorded):

* **fla's function** (no feature map, no normaliser, scale 1, L2-normalised keys, β = σ(N(0,1))): ours
  (``feature_map=False, normalize=False``) and fla's ``chunk_delta_rule`` compute the same y, so both are
  compared with the same float64 truth (the chunked reference in float64 on the inputs as rounded to the
  dtype) — forward and the gradients of ⟨y, dy⟩ — and timed side by side. This is the target row:
  ours ≤ 1.0× fla at B4 H8 N4096 D128, error no worse than fla's.
* **bkdsl's function** (φ = ELU + 1 in the kernel and the normaliser; raw keys 0.5·N(0,1) − 3 so that
  β‖φ(k)‖² < 2): ours against its float64 truth, and the PyTorch chunked reference of today
  (``bkdsl.nn.fast_weights.fast_weight_chunked``, float32: ``solve_triangular`` has no bf16 kernel).

Timing: ``triton.testing.do_bench`` medians (L2 flushed) in one process, fwd and fwd+bwd, bf16 and fp32.
Floor: max(HBM bytes of the inputs and outputs / measured copy bandwidth, chunked-form FLOPs / measured
bf16 matmul rate) — the sequential state scan is what keeps every contender far above it. Parts past
``--budget-s`` are skipped and recorded as such. The JSON goes to DIR/<date>-delta_rule.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from bkdsl.kernels.delta_rule import chunk as kc
from bkdsl.kernels.delta_rule import naive
from bkdsl.kernels.delta_rule import op  # noqa: F401  (registers torch.ops.bkdsl.delta_rule)
from bkdsl.nn.fast_weights import fast_weight_chunked

LOG = print
TOL = {torch.float32: 1e-3, torch.bfloat16: 3e-2}  # relative max error of a passing check


def rel_max(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b| (NaN when either holds a non-finite value: a check then fails)."""
    a, b = a.double(), b.double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("nan")
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def passes(err: float, dtype: torch.dtype) -> bool:
    return err == err and err < TOL[dtype]  # NaN fails


def ceilings() -> dict:
    from triton.testing import do_bench

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    t_mm = do_bench(lambda: a @ b, return_mode="median")
    x = torch.randn(2**28, device="cuda")
    y = torch.empty_like(x)
    t_cp = do_bench(lambda: y.copy_(x), return_mode="median")
    return {"bf16_matmul_tflops": 2 * 8192**3 / t_mm / 1e9, "copy_tb_s": 2 * x.numel() * 4 / t_cp / 1e9}


def floor_ms(B, H, N, D, dtype, ceil: dict | None, backward: bool) -> dict:
    """Lower bounds: HBM traffic of q, k, v, β, y (+ dy, dq, dk, dv, dβ) and the chunked form's FLOPs
    (per chunk of C: K Kᵀ, T, W_k, U_v, W_k Sᵀ, Uᵀ K, Q Kᵀ, Q Sᵀ, (QKᵀ)U ≈ 6·C·D² + 8·C²·D multiply-adds ×2;
    the backward ≈ 2× the forward)."""
    C = kc.CHUNK
    el = torch.tensor([], dtype=dtype).element_size()
    n_tok = B * H * N
    bytes_ = n_tok * (4 * D + 1) * el * (2.25 if backward else 1.0)
    flops = 2 * (B * H * N / C) * (6 * C * D * D + 8 * C * C * D) * (3.0 if backward else 1.0)
    if not ceil:
        return {"bytes": bytes_, "flops": flops}
    t_mem = bytes_ / (ceil["copy_tb_s"] * 1e12) * 1e3
    t_mm = flops / (ceil["bf16_matmul_tflops"] * 1e12) * 1e3
    return {"bytes": bytes_, "flops": flops, "hbm_ms": t_mem, "matmul_ms": t_mm, "floor_ms": max(t_mem, t_mm)}


def make_inputs(B, H, N, D, dtype, dev, gen, kind):
    """[B, H, N, D] tensors. kind "fla": L2-normalised keys; kind "phi": raw keys 0.5·N(0,1) − 3."""
    q = torch.randn(B, H, N, D, generator=gen)
    k = torch.randn(B, H, N, D, generator=gen)
    v = torch.randn(B, H, N, D, generator=gen)
    beta = torch.randn(B, H, N, generator=gen).sigmoid()
    k = F.normalize(k, dim=-1) if kind == "fla" else 0.5 * k - 3.0
    dy = torch.randn(B, H, N, D, generator=gen)
    return [t.to(dev, dtype) for t in (q, k, v, beta, dy)]


def truth(q, k, v, beta, dy, feature_map, normalize):
    """float64 y and gradients of ⟨y, dy⟩ on the inputs as given (already rounded to their dtype)."""
    xs = [t.double().requires_grad_() for t in (q, k, v, beta)]
    y = naive.delta_rule_chunked(*xs, feature_map, normalize)
    y.backward(dy.double())
    return y.detach(), [x.grad for x in xs]


def ours(q, k, v, beta, dy, feature_map, normalize):
    xs = [t.detach().clone().requires_grad_() for t in (q, k, v, beta)]
    y = torch.ops.bkdsl.delta_rule(*xs, feature_map, normalize)[0]
    y.backward(dy)
    return y.detach(), [x.grad for x in xs]


def to_fla(t: torch.Tensor) -> torch.Tensor:
    """[B, H, N, ...] → fla's [B, N, H, ...]."""
    return t.transpose(1, 2).contiguous()


def fla_run(fla_fn, q, k, v, beta, dy):
    xs = [to_fla(t).requires_grad_() for t in (q, k, v, beta)]
    y, _ = fla_fn(*xs, scale=1.0)
    y.backward(to_fla(dy))
    return y.detach().transpose(1, 2), [x.grad.transpose(1, 2) for x in xs]


def errors(got, ref) -> dict:
    y, gs = got
    y_ref, gs_ref = ref
    out = {"y": rel_max(y, y_ref)}
    out.update({f"d{n}": rel_max(g, r) for n, g, r in zip(("q", "k", "v", "beta"), gs, gs_ref)})
    return out


def kernel_breakdown(fn, reps: int = 5) -> dict:
    """GPU time per kernel name (µs per call, torch.profiler) of ``reps`` calls of fn: where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    rows = {}
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0.0)
        if t > 0:
            rows[ev.key[:80]] = round(t / reps, 1)
    return dict(sorted(rows.items(), key=lambda kv: -kv[1])[:20])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, no timing (CPU interpreter)")
    ap.add_argument("--budget-s", type=float, default=190.0, help="skip later parts past this wall time")
    ap.add_argument("--no-sweep", action="store_true", help="skip the launch-configuration sweep")
    args = ap.parse_args()

    cuda = torch.cuda.is_available() and not args.smoke
    dev = "cuda" if cuda else "cpu"
    B, H, N, D = (4, 8, 4096, 128) if cuda else (1, 2, 100, 16)
    t0 = time.time()
    seed = int(time.time())
    try:
        from fla.ops.delta_rule import chunk_delta_rule as fla_fn
        import fla
        fla_version = getattr(fla, "__version__", "?")
    except Exception as e:  # the peer is optional where it cannot run (CPU smoke); recorded
        fla_fn, fla_version = None, f"unavailable: {type(e).__name__}: {e}"
    if not cuda:
        fla_fn = None  # fla's kernels need a GPU
    res: dict = {
        "name": "delta_rule", "date": _dt.date.today().isoformat(),
        "gpu": torch.cuda.get_device_name() if cuda else f"cpu (interpreter smoke, no timing) {platform.processor()}",
        "torch": torch.__version__, "triton": __import__("triton").__version__, "fla": fla_version,
        "python": sys.version.split()[0], "seed": seed,
        "sizes": {"B": B, "H": H, "N": N, "D": D, "chunk": kc.CHUNK},
        "timing": "triton.testing.do_bench median, L2 flushed; fwd+bwd = forward and backward of one call",
        "tolerance_rel_max": {str(k): v for k, v in TOL.items()},
        "checks": {}, "time_ms": {}, "ratios": {}, "floors": {}, "skipped": [], "errors": {},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{res['date']}-delta_rule{'-smoke' if args.smoke else ''}.json"

    def save():
        res["wall_s"] = time.time() - t0
        res["configs_used"] = kc.chosen_configs()
        path.write_text(json.dumps(res, indent=2, default=str))

    def left() -> bool:
        return time.time() - t0 < args.budget_s

    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        res["ceilings"] = ceilings()
        LOG(f"ceilings {res['ceilings']}")
    gen = torch.Generator().manual_seed(seed)

    def bench(fn, grads=None, rep=200):
        from triton.testing import do_bench
        return do_bench(fn, warmup=25, rep=rep, grad_to_none=grads, return_mode="median")

    def guarded(name, fn):
        """fn(), or None with the traceback recorded (a kernel that fails must not lose the other rows)."""
        try:
            return fn()
        except Exception as e:
            res["errors"][name] = traceback.format_exc(limit=4)
            LOG(f"{name} failed: {type(e).__name__}: {e}")
            return None

    ok_all = True
    parts = [("fla", torch.bfloat16), ("fla", torch.float32), ("phi", torch.bfloat16), ("phi", torch.float32)]
    for kind, dtype in parts:  # the target rows (fla's function) first: later parts may meet the budget
        dn = "bf16" if dtype == torch.bfloat16 else "fp32"
        if not left():
            res["skipped"].append(f"{kind} {dn}: wall-time budget")
            continue
        if kind == "fla":
            # --- fla's function: checks (ours, fla) against one float64 truth, then timing ---
            q, k, v, beta, dy = make_inputs(B, H, N, D, dtype, dev, gen, "fla")
            ref = truth(q, k, v, beta, dy, False, False)
            chk = {"ours": guarded(f"ours_fla_function_{dn}",
                                   lambda: errors(ours(q, k, v, beta, dy, False, False), ref))}
            if fla_fn is not None:
                try:
                    chk["fla"] = errors(fla_run(fla_fn, q, k, v, beta, dy), ref)
                except Exception as e:
                    res["errors"][f"fla_{dn}"] = traceback.format_exc(limit=3)
                    LOG(f"fla {dn} failed: {e}")
            chk["ours_ok"] = chk["ours"] is not None and all(passes(e, dtype) for e in chk["ours"].values())
            if "fla" in chk and chk["ours"] is not None:
                chk["ours_no_worse_than_fla"] = {n: chk["ours"][n] <= chk["fla"][n] for n in chk["ours"]}
            res["checks"][f"fla_function_{dn}"] = chk
            ok_all &= chk["ours_ok"]
            LOG(f"check fla-function {dn}: {json.dumps(chk)}")
            del ref
            save()
            tm = res["time_ms"]
            xs = [t.detach().clone().requires_grad_() for t in (q, k, v, beta)]

            def ours_fb():
                torch.ops.bkdsl.delta_rule(*xs, False, False)[0].backward(dy)
            if cuda and chk["ours_ok"]:
                tm[f"ours_fla_function_fwd_{dn}"] = bench(
                    lambda: torch.ops.bkdsl.delta_rule(q, k, v, beta, False, False))
                tm[f"ours_fla_function_fwdbwd_{dn}"] = bench(ours_fb, xs)
            fx = [to_fla(t).requires_grad_() for t in (q, k, v, beta)]
            fdy = to_fla(dy)

            def fla_fb():
                fla_fn(*fx, scale=1.0)[0].backward(fdy)
            if cuda and "fla" in chk:
                tm[f"fla_fwd_{dn}"] = bench(lambda: fla_fn(*[t.detach() for t in fx], scale=1.0))
                tm[f"fla_fwdbwd_{dn}"] = bench(fla_fb, fx)
            if cuda and chk["ours_ok"]:
                for part in ("fwd", "fwdbwd"):
                    if f"fla_{part}_{dn}" in tm:
                        res["ratios"][f"ours_over_fla_{part}_{dn}"] = (tm[f"ours_fla_function_{part}_{dn}"]
                                                                        / tm[f"fla_{part}_{dn}"])
                for bwd in (False, True):
                    fl = floor_ms(B, H, N, D, dtype, res.get("ceilings"), bwd)
                    res["floors"][f"{'fwdbwd' if bwd else 'fwd'}_{dn}"] = fl
                    part = "fwdbwd" if bwd else "fwd"
                    res["ratios"][f"ours_over_floor_{part}_{dn}"] = (tm[f"ours_fla_function_{part}_{dn}"]
                                                                      / fl["floor_ms"])
            if cuda:
                LOG(f"time {dn}: {json.dumps({k: v for k, v in tm.items() if k.endswith(dn)})}")
                save()
                if dtype == torch.bfloat16 and left():
                    try:
                        bd = res.setdefault("kernel_us_per_call", {})
                        if chk["ours_ok"]:
                            bd["ours_fwdbwd_bf16"] = kernel_breakdown(ours_fb)
                        if fla_fn is not None and "fla" in chk:
                            bd["fla_fwdbwd_bf16"] = kernel_breakdown(fla_fb)
                        LOG(f"kernels: {json.dumps(bd)}")
                    except Exception as e:  # diagnostics only: recorded, the run goes on
                        res["errors"]["kernel_breakdown"] = f"{type(e).__name__}: {e}"
                    save()
        else:
            # --- bkdsl's function: φ = ELU + 1 and the normaliser ---
            q, k, v, beta, dy = make_inputs(B, H, N, D, dtype, dev, gen, "phi")
            ref = truth(q, k, v, beta, dy, True, True)
            chk = {"ours": guarded(f"ours_phi_norm_{dn}", lambda: errors(ours(q, k, v, beta, dy, True, True), ref))}
            chk["ours_ok"] = chk["ours"] is not None and all(passes(e, dtype) for e in chk["ours"].values())
            if dtype == torch.float32:  # today's PyTorch chunked form (φ outside) on the same inputs
                fq, fk = naive.elu_plus_one(q), naive.elu_plus_one(k)
                chk["fast_weight_chunked"] = {"y": rel_max(fast_weight_chunked(fq, fk, v, beta)[0], ref[0])}
            res["checks"][f"phi_normaliser_{dn}"] = chk
            ok_all &= chk["ours_ok"]
            LOG(f"check phi+normaliser {dn}: {json.dumps(chk)}")
            del ref
            save()
            if cuda and chk["ours_ok"]:
                tm = res["time_ms"]
                xs = [t.detach().clone().requires_grad_() for t in (q, k, v, beta)]
                tm[f"ours_phi_norm_fwd_{dn}"] = bench(lambda: torch.ops.bkdsl.delta_rule(q, k, v, beta, True, True))

                def ours_pn_fb():
                    torch.ops.bkdsl.delta_rule(*xs, True, True)[0].backward(dy)
                tm[f"ours_phi_norm_fwdbwd_{dn}"] = bench(ours_pn_fb, xs)
                if dtype == torch.float32 and left():
                    rx = [t.detach().clone().requires_grad_() for t in (q, k, v, beta)]
                    tm["torch_chunked_fwd_fp32"] = bench(
                        lambda: fast_weight_chunked(naive.elu_plus_one(q), naive.elu_plus_one(k), v, beta), rep=100)

                    def ref_fb():
                        fq, fk = naive.elu_plus_one(rx[0]), naive.elu_plus_one(rx[1])
                        fast_weight_chunked(fq, fk, rx[2], rx[3])[0].backward(dy)
                    tm["torch_chunked_fwdbwd_fp32"] = bench(ref_fb, rx, rep=100)
                    for part in ("fwd", "fwdbwd"):
                        res["ratios"][f"torch_chunked_over_ours_phi_norm_{part}_fp32"] = (
                            tm[f"torch_chunked_{part}_fp32"] / tm[f"ours_phi_norm_{part}_fp32"])
                save()

    # --- launch-configuration sweep of our bf16 fla-function call (which block_v / stages to default to) ---
    if cuda and not args.no_sweep:
        q, k, v, beta, dy = make_inputs(B, H, N, D, torch.bfloat16, dev, gen, "fla")
        sweep = res.setdefault("sweep", [])
        variants = [dict(block_v=32), dict(block_v=64, configs={"state": (4, 1)}),
                    dict(block_v=32, configs={"state": (4, 3)}), dict(block_v=64, dot="tf32x3"),
                    dict(block_v=128, configs={"state": (8, 2), "out": (8, 2)})]
        for var in variants:
            if not left():
                res["skipped"].append(f"sweep {var}: wall-time budget")
                break
            row = {"variant": {k: str(v) for k, v in var.items()}}
            try:
                fwd = kc.delta_rule_fwd_triton(q, k, v, beta, False, False, **var)
                row["err_vs_default"] = rel_max(fwd[0], kc.delta_rule_fwd_triton(q, k, v, beta, False, False)[0])
                row["fwd_ms"] = bench(lambda: kc.delta_rule_fwd_triton(q, k, v, beta, False, False, **var))
                row["bwd_ms"] = bench(lambda: kc.delta_rule_bwd_triton(q, k, v, beta, *fwd, dy, False, False, **var))
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            sweep.append(row)
            LOG(f"sweep {row}")
            save()

    res["ok"] = ok_all
    save()
    LOG(f"wrote {path}")
    LOG("SUMMARY " + json.dumps({"ok": ok_all, "ratios": res["ratios"], "time_ms": res["time_ms"],
                                 "skipped": res["skipped"]}))
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
