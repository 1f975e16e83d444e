"""Segment-layout and variant sweep of the segmented resolvent kernels on one GPU.

bench/resolvent.py measured (H200, 2026-12-01) that shorter segments are faster at 4096 × 2048
(SEG 32 / 16 / 8: 2.00 / 0.62 / 0.37 ms forward): fewer dependent steps per lane, more lanes. This
sweep continues that line. A layout is SEG,SEGS,BLOCK_B[,IO[,RENORM[,MAXNREG]]]: IO strided (default) /
packed / tile and RENORM max (default) / pow2 are the forward variants (packed and pow2 run the launchers of
kernels/resolvent/variants.py, the others the production ones of kernels/resolvent/segmented.py)
(docs/kernels_k1.md, "Forward variants"), MAXNREG a register cap per thread. For each layout it compiles
the forward, checks it against the default kernel's output on the same fresh random inputs (relative
error; above --tol the layout is recorded as failed and not timed) and times it (triton.testing.do_bench,
median). With --bwd the backward is compiled, checked and timed as well (its Möbius sweeps take the
variant; the adjoint sweeps are the same for all).

    python3 bench/resolvent_layouts.py --out bench/results        # H200: the variant list, ≈ 2 min
    python3 bench/resolvent_layouts.py --bwd --layouts 4,128,1 2,128,1 4,256,1   # forward and backward
    TRITON_INTERPRET=1 python3 bench/resolvent_layouts.py --small --out /tmp/r    # CPU script check

Writes <out>/<date>-resolvent_layouts.json after every layout (stops starting layouts after --budget
seconds; the rest are listed under "skipped"), and prints a table last. Read "fwd_ms" against the
"default" row measured in the same process; "best_fwd" is the fastest layout whose output matched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

from bkdsl.kernels.resolvent import ops as _ops  # noqa: F401  (registers torch.ops.bkdsl.resolvent_diag*)
from bkdsl.kernels.resolvent import segmented as kr  # installed, or staged by bench/gpu_k1.sh  # noqa: E402
from bkdsl.kernels.resolvent import variants as kv  # io="packed", renorm="pow2" (not in the production module)

# Most telling first (the budget cuts the tail): the default (tile I/O at 8 × 128, chosen by the first
# sweep of the variants: bench/results/2026-12-01-resolvent_layouts-run3.json) and the previous default
# (strided 4 × 256); then its neighbours: power-of-two renormalisation, shorter windows, two sequences
# per program, 4-site segments; the warp-local scan layout 16 × 32 × 4 (4 warps, the first sweep's
# fastest at 0.183 ms) last, as it compiles slowest (≈ 30 s).
LAYOUTS = ["8,128,1,tile", "4,256,1", "8,128,1,tile,pow2", "8,64,1,tile", "8,64,1,tile,pow2", "8,128,2,tile",
           "4,128,1,tile", "8,256,1,tile,pow2", "16,64,1,tile,pow2", "16,32,4,tile,pow2"]
SMALL_LAYOUTS = ["4,4,2", "2,8,2", "1,16,1", "4,4,2,packed", "8,4,2,tile", "4,8,2,tile,pow2",
                 "2,8,2,strided,pow2", "4,4,2,tile,max,80"]


def parse_layout(spec: str) -> dict:
    """"SEG,SEGS,BLOCK_B[,IO[,RENORM[,MAXNREG]]]" → the launcher's keyword arguments."""
    parts = spec.split(",")
    if not 3 <= len(parts) <= 6:
        raise ValueError(f"layout {spec!r}: expected SEG,SEGS,BLOCK_B[,IO[,RENORM[,MAXNREG]]]")
    kw = dict(seg=int(parts[0]), segs=int(parts[1]), block_b=int(parts[2]))
    if len(parts) > 3:
        kw["io"] = parts[3]
    if len(parts) > 4:
        kw["renorm"] = parts[4]
    if len(parts) > 5:
        kw["maxnreg"] = int(parts[5])
    return kw


def layout_name(kw: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in kw.items())


def rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))


def measure(kr, kw, pot, hop, grad, z_re, z_im, ref_f, ref_g, tol, bench) -> dict:
    """One layout: compile + first call, relative difference to the default's output (and gradients when
    ref_g is given), timed only if finite and within tol (a wrong variant is recorded as failed, never as
    fast). Exceptions are recorded, not raised."""
    row: dict = {}
    if kw.get("io") == "packed" or kw.get("renorm", "max") != "max":   # a variant: variants.py launchers
        fwd_fn, bwd_fn = kv.resolvent_diag_triton_variant, kv.resolvent_diag_backward_triton_variant
    else:                                                              # the production launchers
        fwd_fn, bwd_fn = kr.resolvent_diag_triton, kr.resolvent_diag_backward_triton
        kw = {k: v for k, v in kw.items() if k != "renorm"}
    try:
        tc = time.time()
        f = fwd_fn(pot, hop, z_re, z_im, **kw)
        row["compile_and_first_call_s"] = round(time.time() - tc, 2)
        row["fwd_rel_vs_default"] = rel(f, ref_f)
        row["finite"] = bool(torch.isfinite(torch.view_as_real(f)).all())
        bwd_kw = {k: v for k, v in kw.items() if k != "maxnreg"}
        if ref_g is not None:
            ga, gb = bwd_fn(pot, hop, z_re, z_im, grad, **bwd_kw)
            row["grad_a_rel_vs_default"] = rel(ga, ref_g[0])
            row["grad_b_rel_vs_default"] = rel(gb, ref_g[1])
            row["finite"] = row["finite"] and bool(torch.isfinite(ga).all() and torch.isfinite(gb).all())
        worst = max(v for k, v in row.items() if k.endswith("_rel_vs_default"))
        row["ok"] = row["finite"] and worst <= tol
        if not row["ok"]:
            return row
        row["fwd_ms"] = bench(lambda: fwd_fn(pot, hop, z_re, z_im, **kw))
        if ref_g is not None:
            row["bwd_ms"] = bench(lambda: bwd_fn(pot, hop, z_re, z_im, grad, **bwd_kw))
    except Exception as e:  # a layout that does not compile or run is recorded, not fatal
        row["ok"] = False
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--budget", type=float, default=150.0, help="seconds; later layouts are skipped")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--layouts", nargs="*", default=None, metavar="SEG,SEGS,BLOCK_B[,IO[,RENORM[,MAXNREG]]]",
                    help="layouts to sweep instead of the built-in list (e.g. 4,128,1 4,256,1,tile)")
    ap.add_argument("--bwd", action="store_true", help="also check and time the backward per layout")
    ap.add_argument("--tol", type=float, default=1e-5, help="max relative difference to the default's output")
    a = ap.parse_args()
    small = a.small
    dev = "cpu" if small else "cuda"
    B, N = (3, 37) if small else (a.batch, a.n)
    layouts = [parse_layout(t) for t in (a.layouts or (SMALL_LAYOUTS if small else LAYOUTS))]
    z_re, z_im = 0.0, 0.1
    gen = torch.Generator().manual_seed(int(time.time()))       # fresh inputs every run
    pot = (2.0 * torch.randn(B, N, generator=gen)).to(dev)
    hop = (1.0 + 0.1 * torch.randn(B, N - 1, generator=gen)).to(dev)
    grad = torch.randn(B, N, 2, generator=gen).to(dev)
    grad = torch.view_as_complex(grad)
    t0 = time.time()

    if small:
        def bench(fn):
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1e3
    else:
        import triton.testing

        def bench(fn):
            return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))

    ref_f = kr.resolvent_diag_triton(pot, hop, z_re, z_im)
    if a.bwd:
        ref_ga, ref_gb = kr.resolvent_diag_backward_triton(pot, hop, z_re, z_im, grad)
    res = {"name": "resolvent_layouts", "date": dt.date.today().isoformat(), "small": small,
           "gpu": torch.cuda.get_device_name() if dev == "cuda" else "cpu (interpreter)",
           "torch": torch.__version__, "size": [B, N], "z": [z_re, z_im], "tol": a.tol, "bwd": a.bwd,
           "default_layout": [kr.SEG, kr.SEGS, kr.BLOCK_B, kr.IO], "layouts": {}, "skipped": [], "partial": True}
    try:
        import triton
        res["triton"] = triton.__version__
    except ImportError:
        pass
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{res['date']}-resolvent_layouts{'-small' if small else ''}.json"
    for kw in layouts:
        name = layout_name(kw)
        if time.time() - t0 > a.budget:
            res["skipped"].append(name)
            continue
        res["layouts"][name] = measure(kr, kw, pot, hop, grad, z_re, z_im, ref_f,
                                       (ref_ga, ref_gb) if a.bwd else None, a.tol, bench)
        print(f"[{time.time() - t0:6.1f}s] {name}: {json.dumps(res['layouts'][name])}", flush=True)
        path.write_text(json.dumps(res, indent=2) + "\n")
    ok = {k: v for k, v in res["layouts"].items() if v.get("ok")}
    if ok:
        res["best_fwd"] = min(ok, key=lambda k: ok[k]["fwd_ms"])
        if a.bwd:
            res["best_bwd"] = min(ok, key=lambda k: ok[k]["bwd_ms"])
    res["wall_s"] = round(time.time() - t0, 1)
    res["partial"] = False
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\n{'layout':52s} {'fwd ms':>9s} {'bwd ms':>9s}  fwd rel   grad rel")
    for k, v in res["layouts"].items():
        if "fwd_ms" in v:
            bwd = f"{v['bwd_ms']:9.4f}" if "bwd_ms" in v else f"{'-':>9s}"
            grad_rel = (f"{max(v['grad_a_rel_vs_default'], v['grad_b_rel_vs_default']):.1e}"
                        if "grad_a_rel_vs_default" in v else "-")
            print(f"{k:52s} {v['fwd_ms']:9.4f} {bwd}  {v['fwd_rel_vs_default']:.1e}  {grad_rel}")
        else:
            print(f"{k:52s} {v.get('error') or 'FAILED check: ' + json.dumps(v)}")
    print(f"best fwd {res.get('best_fwd')}, best bwd {res.get('best_bwd')}; skipped {res['skipped']}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
