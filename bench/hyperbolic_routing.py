"""Benchmark: fused hyperbolic routing (distances + gate + top-k) and its backward, vs peers and floors.

    python3 bench/hyperbolic_routing.py --out bench/results     # H200: < 90 s, writes <date>-hyperbolic_routing.json
    python3 bench/hyperbolic_routing.py --dry --out /tmp/hr     # CPU, TRITON_INTERPRET=1, tiny sizes, no timing value

Method (BENCHMARKS.md). Floors first: bytes = one read of x and μ plus the outputs (gate, distance fp32,
index int64) at the copy bandwidth measured here; arithmetic = T·E·D fp32 FMAs for all pairs. Then, at
full size, every forward variant is checked against the float64 reference (chunked
``hyperbolic_route_reference``) on fresh random inputs and on hard inputs (centroids at ‖μ‖ = 1 − 1e-6,
tokens within 1e-5..1e-3 of a centroid, a quarter of the tokens at ‖x‖ = 1 − 1e-6): max relative error
of d and gate, index agreement, and the number of *non-tie* index differences (a selected expert whose
float64 distance differs from the reference's by more than 1e-5 relative; must be 0). The backward
kernel is checked against ``route_backward`` (float64 inside), row-wise ‖Δ‖/‖ref‖. Then everything is
timed in this process on the same inputs (``triton.testing.do_bench``, median): the forward sweep
(``--budget-s`` bounds it), geoopt's broadcast distance + top-k, the one-matmul form (cuBLAS) + top-k,
the Triton backward alone (deterministic workspace and atomics), forward + backward with the Triton
backward and with the PyTorch closed form. Last, a short table.

Also recorded: how many tokens a single-tf32 selection with a rigorous margin test would have to re-check
(``tf32_margin``), the number that decides whether that variant can pay (docs/kernels_routing.md).
"""

from __future__ import annotations

import sys

if "--dry" in sys.argv:                      # before triton is imported anywhere
    import os as _os
    _os.environ["TRITON_INTERPRET"] = "1"

import argparse
import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import torch

from bkdsl.kernels import hyperbolic_routing as kh
from bkdsl.nn import poincare as pb
from bkdsl.nn.hyperbolic_moe import hyperbolic_route_reference, route_backward

# most promising first (the budget guard skips the tail); register use from an sm_90 compile with
# Triton 3.9 on the CPU (docs/kernels_routing.md): bt=64 w=8 st=2 222 regs, no spill; w=4 255 + spills
R = kh.RouteConfig
FORWARD_SWEEP = [
    kh.DEFAULT_CONFIG,
    kh.V1_CONFIG,
    R(block_t=64, block_d=32, num_warps=8, num_stages=2, programs_per_sm=2, maxnreg=128),
    R(block_t=32, block_d=32, num_warps=4, num_stages=2, programs_per_sm=3),
    R(block_t=32, block_d=32, num_warps=4, num_stages=2, programs_per_sm=3, maxnreg=168),
    R(block_t=64, block_d=32, num_warps=4, num_stages=2, programs_per_sm=2),
    R(block_t=128, block_d=32, num_warps=8, num_stages=2, programs_per_sm=1),
    R(block_t=64, block_d=32, num_warps=8, num_stages=3, programs_per_sm=2),
    R(block_t=64, block_d=32, num_warps=8, num_stages=2, programs_per_sm=0),
    R(block_t=64, block_d=32, num_warps=8, num_stages=2, precision="tf32", programs_per_sm=2),
    R(kernel="rows", block_t=32, num_warps=8, num_stages=2, programs_per_sm=2),
    R(kernel="rows", block_t=16, num_warps=4, num_stages=2, programs_per_sm=4),
]
BACKWARD_SWEEP = {
    "workspace bd=32 w=8": kh.BackwardConfig(),
    "workspace bd=32 w=4 splits x2": kh.BackwardConfig(num_warps=4, splits_per_sm=2),
    "atomic bd=32 w=4": kh.BackwardConfig(num_warps=4, atomic=True),
}


def ball_points(n, d, gen, device, scale=2.0):
    return pb.expmap0(scale * torch.randn(n, d, generator=gen)).to(device)


def hard_inputs(T, E, D, gen, device):
    dirs = torch.randn(E, D, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    radius = torch.where(torch.arange(E) % 2 == 0, 1 - 1e-6, 0.5).double()
    mu = (dirs * radius[:, None]).float()
    owner = torch.randint(E, (T,), generator=gen)
    base = mu[owner].double()
    step = torch.logspace(-5, -3, T, dtype=torch.float64)[:, None] * (1 - base.norm(dim=1, keepdim=True))
    x = pb.project((base + step * torch.randn(T, D, generator=gen, dtype=torch.float64)).float())
    far = torch.randn(T // 4, D, generator=gen, dtype=torch.float64)
    x[: T // 4] = (far / far.norm(dim=1, keepdim=True) * (1 - 1e-6)).float()
    return x.to(device), mu.to(device)


def max_rel(got, want):
    got = got.double()
    pos = want.abs() > 0
    err = (got - want).abs()
    rel = torch.where(pos, err / torch.where(pos, want.abs(), 1.0), torch.where(err > 0, torch.inf, 0.0))
    return rel.max().item()


def row_rel(got, want):
    err = (got.double() - want).norm(dim=1)
    ref = want.norm(dim=1)
    return torch.where(ref > 0, err / torch.where(ref > 0, ref, 1.0), torch.where(err > 0, torch.inf, 0.0)).max().item()


def reference64(x, mu, k, chunk=4096):
    """The specification in float64, in token chunks (the [T, E, D] difference would be 8.6 GB at once)."""
    outs = [hyperbolic_route_reference(x[i:i + chunk].double(), mu.double(), k) for i in range(0, x.shape[0], chunk)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


def check_forward(out, ref, x, mu):
    gate, idx, dist = out
    rg, ri, rd = ref
    d_named = pb.dist(x.double()[:, None, :], mu.double()[idx])      # float64 distance to our experts
    non_tie = (d_named - rd).abs() > 1e-5 * rd.abs().clamp_min(1e-30)
    return {"dist": max_rel(dist, rd), "gate": max_rel(gate, rg),
            "index_agreement": (idx == ri).double().mean().item(),
            "non_tie_index_differences": int(non_tie.any(1).sum()),
            "nonfinite": int((~torch.isfinite(gate)).sum() + (~torch.isfinite(dist)).sum())}


def check_backward(x, mu, idx, gg, gd, cfg):
    gx, gmu = kh.route_backward_triton(x, mu, idx, gg, gd, 1.0, cfg)
    rx, rmu = route_backward(x.double(), mu.double(), idx, gg.double(), gd.double())
    return {"grad_x_row_rel": row_rel(gx, rx), "grad_mu_row_rel": row_rel(gmu, rmu)}


def tf32_margin(x, mu, k, ref_dist):
    r"""Fraction of tokens (and of 64-token tiles) a tf32 selection with a rigorous margin test re-checks.

    tf32 truncates each input to 10 mantissa bits (relative error ≤ 2⁻¹⁰), so
    |x·μ − tf32(x·μ)| ≤ (2⁻⁹ + 2⁻²⁰ + D·2⁻²³)‖x‖‖μ‖ (Cauchy–Schwarz; D·2⁻²³ bounds the fp32 accumulation)
    and key_e = s_e/β_e carries δ_e ≤ [2(2⁻⁹ + 2⁻²⁰ + D·2⁻²³)‖x‖‖μ_e‖ + (D + 2)2⁻²⁴(‖x‖² + ‖μ_e‖²)]/β_e.
    A token is certain when key_(k) + δ_(k) < key_(k+1) − δ_(k+1) (sorted by the exact key).
    """
    if mu.shape[0] <= k:
        return None
    D = x.shape[1]
    x64, mu64 = x.double(), mu.double()
    xn, mn = x64.norm(dim=1), mu64.norm(dim=1)
    beta = pb.conformal_denominator(mu64)
    eps = 2.0 ** -9 + 2.0 ** -20 + D * 2.0 ** -23
    keys, deltas = [], []
    for i in range(0, x.shape[0], 4096):
        xs = x64[i:i + 4096]
        s = torch.cdist(xs, mu64) ** 2
        keys.append(s / beta)
        deltas.append((2 * eps * xn[i:i + 4096, None] * mn[None, :]
                       + (D + 2) * 2.0 ** -24 * (xn[i:i + 4096, None] ** 2 + mn[None, :] ** 2)) / beta)
    key, delta = torch.cat(keys), torch.cat(deltas)
    order = key.argsort(1)
    kk = key.gather(1, order[:, k - 1:k + 1])
    dd = delta.gather(1, order[:, k - 1:k + 1])
    unsure = (kk[:, 0] + dd[:, 0]) >= (kk[:, 1] - dd[:, 1])
    T = x.shape[0] // 64 * 64
    tiles = unsure[:T].reshape(-1, 64).any(1).double().mean().item() if T else float("nan")
    return {"tokens_to_recheck": unsure.double().mean().item(), "tiles_with_a_recheck": tiles}


def geoopt_route(ball, x, mu, k):
    d = ball.dist(x[:, None, :], mu[None, :, :])
    dk, idx = torch.topk(d, k, dim=1, largest=False)
    return torch.exp(-dk), idx, dk


def one_matmul_route(x, mu, k):
    s = (x * x).sum(1, keepdim=True) + (mu * mu).sum(1)[None, :] - 2.0 * x @ mu.T
    t = s.clamp_min(0) / ((1 - (x * x).sum(1, keepdim=True)) * (1 - (mu * mu).sum(1))[None, :])
    d = 2.0 * torch.asinh(t.sqrt())
    dk, idx = torch.topk(d, k, dim=1, largest=False)
    return torch.exp(-dk), idx, dk


def make_timer(dry):
    if dry:
        def wall(fn):                        # the interpreter: one call, wall clock (checks the path only)
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
        return wall
    from triton.testing import do_bench
    return lambda fn: do_bench(fn, warmup=10, rep=40, return_mode="median")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--tokens", type=int, default=65536)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=45.0, help="wall time for the forward sweep")
    ap.add_argument("--dry", action="store_true", help="CPU interpreter, tiny sizes: checks the script")
    args = ap.parse_args()
    t_start = time.time()
    dry = args.dry
    device = "cpu" if dry else "cuda"
    T, E, D, k = (150, 12, 40, 2) if dry else (args.tokens, args.experts, args.dim, args.k)
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    bench = make_timer(dry)
    log = lambda msg: print(f"[{time.time() - t_start:6.1f}s] {msg}", flush=True)

    # inputs and float64 references (full size)
    x, mu = ball_points(T, D, gen, device), ball_points(E, D, gen, device)
    hx, hmu = hard_inputs(T, E, D, gen, device)
    ref, href = reference64(x, mu, k), reference64(hx, hmu, k)
    log("float64 references done")

    # floors
    if dry:
        bw, n_sm = 4.24e12, 132
    else:
        src = torch.empty(2**28, dtype=torch.float32, device=device).uniform_()
        dst = torch.empty_like(src)
        bw = 2 * src.numel() * 4 / (bench(lambda: dst.copy_(src)) * 1e-3)
        del src, dst
        n_sm = torch.cuda.get_device_properties(0).multi_processor_count
    floor_bytes = 4 * T * D + 4 * E * D + T * k * (4 + 4 + 8)
    floor_ms = floor_bytes / bw * 1e3
    fma_floor_ms = T * E * D / (n_sm * 128 * 1.98e9) * 1e3     # one fp32 FMA per lane per clock (H200 SXM)
    times, errors, sweep, failed = {}, {}, {}, {}

    def timed(name, fn):
        ms = bench(fn)
        times[name] = ms
        log(f"{name:52s} {ms:9.4f} ms   floor/time {floor_ms / ms:6.1%}")
        return ms

    # forward sweep: check at full size, then time
    for cfg in FORWARD_SWEEP:
        name = cfg.label()
        if time.time() - t_start > args.budget_s and sweep and not dry:
            failed[name] = "skipped: sweep budget spent"
            continue
        try:
            fn = lambda cfg=cfg: kh.hyperbolic_route_triton(x, mu, k, 1.0, cfg)
            errors[name] = {"random": check_forward(fn(), ref, x, mu),
                            "hard": check_forward(kh.hyperbolic_route_triton(hx, hmu, k, 1.0, cfg), href, hx, hmu)}
            log(f"{name}: {errors[name]}")
            sweep[name] = timed(f"fwd {name}", fn)
        except Exception as e:  # a launch that does not compile or fit is reported, not fatal
            failed[name] = f"{type(e).__name__}: {str(e)[:300]}"
            log(f"{name}: FAILED {failed[name]}")
    accurate = {n: v for n, v in sweep.items()
                if max(errors[n]["random"]["dist"], errors[n]["hard"]["dist"]) <= 1e-5
                and errors[n]["random"]["non_tie_index_differences"] == 0
                and errors[n]["hard"]["non_tie_index_differences"] == 0}
    best = min(accurate, key=accurate.get) if accurate else None
    t_default = sweep.get(kh.DEFAULT_CONFIG.label())
    t_v1 = sweep.get(kh.V1_CONFIG.label())

    # peers
    if not dry:
        ball = pb.ball(1.0).to(device)
        timed("geoopt PoincareBall.dist broadcast + topk", lambda: geoopt_route(ball, x, mu, k))
    timed("one-matmul form + topk (eager)", lambda: one_matmul_route(x, mu, k))
    mm_err = max_rel(one_matmul_route(hx, hmu, k)[2], href[2])
    log(f"one-matmul form on the hard inputs: max rel error of d {mm_err:.3e}")

    # backward: accuracy, kernel alone, fwd + bwd both ways
    gg = torch.randn(T, k, generator=gen).to(device)
    gd = torch.randn(T, k, generator=gen).to(device)
    idx, hidx = ref[1], href[1]
    bwd = {}
    for name, bcfg in BACKWARD_SWEEP.items():
        try:
            errors[f"backward {name}"] = {"random": check_backward(x, mu, idx, gg, gd, bcfg),
                                          "hard": check_backward(hx, hmu, hidx, gg, gd, bcfg)}
            log(f"backward {name}: {errors[f'backward {name}']}")
            bwd[name] = timed(f"bwd kernels {name}", lambda bcfg=bcfg: kh.route_backward_triton(x, mu, idx, gg, gd,
                                                                                                1.0, bcfg))
        except Exception as e:
            failed[f"backward {name}"] = f"{type(e).__name__}: {str(e)[:300]}"
            log(f"backward {name}: FAILED {failed[f'backward {name}']}")
    xr, mr = x.clone().requires_grad_(True), mu.clone().requires_grad_(True)

    def fwd_bwd_op():
        gate, _, dist = torch.ops.bkdsl.hyperbolic_route(xr, mr, k, 1.0)
        torch.autograd.grad((gate * gg).sum() + (dist * gd).sum(), (xr, mr))

    def fwd_bwd_closed_form():
        gate, i, dist = kh.hyperbolic_route_triton(x, mu, k)
        route_backward(x, mu, i, gg, gd)

    from bkdsl.kernels import dispatch
    t_fb = t_fb_ref = None
    try:
        with dispatch.force("triton"):
            t_fb = timed("fwd + bwd, Triton backward (custom op)", fwd_bwd_op)
    except Exception as e:
        failed["fwd + bwd custom op"] = f"{type(e).__name__}: {str(e)[:300]}"
        log(f"fwd + bwd custom op: FAILED {failed['fwd + bwd custom op']}")
    t_fb_ref = timed("fwd + bwd, PyTorch closed-form backward", fwd_bwd_closed_form)

    tf32 = tf32_margin(x, mu, k, ref[2])
    log(f"tf32 selection with a rigorous margin test would re-check: {tf32}")
    nonfinite = [n for n in sweep if errors[n]["random"]["nonfinite"] or errors[n]["hard"]["nonfinite"]]

    result = {
        "name": "hyperbolic_routing",
        "date": _dt.date.today().isoformat(),
        "dry": dry,
        "gpu": None if dry else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": __import__("triton").__version__,
        "python": platform.python_version(),
        "sizes": {"tokens": T, "experts": E, "dim": D, "k": k, "dtype": "float32"},
        "copy_bandwidth_TBps": bw / 1e12,
        "bytes_floor": {"bytes": floor_bytes, "ms": floor_ms},
        "fp32_fma_floor_ms_all_pairs": fma_floor_ms,
        "times_ms": times,
        "forward_sweep_ms": sweep,
        "backward_sweep_ms": bwd,
        "failed_or_skipped": failed,
        "variants_with_nonfinite_outputs": nonfinite,
        "best_accurate_forward": best,
        "default_forward": kh.DEFAULT_CONFIG.label(),
        "ratios": {
            "best / v1 launch": sweep[best] / t_v1 if best and t_v1 else None,
            "default / v1 launch": t_default / t_v1 if t_default and t_v1 else None,
            "best / one_matmul": sweep[best] / times["one-matmul form + topk (eager)"] if best else None,
            "best / geoopt": (sweep[best] / times["geoopt PoincareBall.dist broadcast + topk"]
                              if best and not dry else None),
            "best / bytes_floor": sweep[best] / floor_ms if best else None,
            "best / fma_floor": sweep[best] / fma_floor_ms if best else None,
            "fwd+bwd triton / fwd+bwd closed form": t_fb / t_fb_ref if t_fb else None,
        },
        "max_error": errors,
        "one_matmul_max_rel_error_hard_inputs": mm_err,
        "tf32_margin": tf32,
        "target": "<= 0.1 ms forward at 65536 x 64 x 256, max rel error <= 1e-5 vs float64",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result['date']}-hyperbolic_routing{'-dry' if dry else ''}.json"
    path.write_text(json.dumps(result, indent=2))
    log(f"wrote {path}")

    ref_ms = t_v1 or t_default or 1.0
    print(f"\n{'contender':52s} {'ms':>9s} {'v1/this':>8s}")
    for name, v in times.items():
        print(f"{name:52s} {v:9.4f} {ref_ms / v:8.3f}")
    print(f"best accurate forward: {best} {sweep.get(best, float('nan')):.4f} ms; target 0.1 ms; "
          f"bytes floor {floor_ms:.4f} ms at {bw / 1e12:.2f} TB/s; fp32 FMA floor {fma_floor_ms:.4f} ms")
    if failed:
        print(f"failed or skipped: {list(failed)}")
    if nonfinite:
        print(f"NON-FINITE OUTPUTS: {nonfinite}")


if __name__ == "__main__":
    main()
