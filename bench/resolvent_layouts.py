"""Segment-layout sweep of the segmented resolvent kernels (forward and backward) on one GPU.

bench/resolvent.py measured (H200, 2026-12-01) that shorter segments are faster at 4096 × 2048
(SEG 32 / 16 / 8: 2.00 / 0.62 / 0.37 ms forward): fewer dependent steps per lane, more lanes. This
sweep continues that line: for each (seg, segs, block_b) it compiles the forward and the backward with
that layout, checks both against the default layout on the same fresh random inputs (relative error),
and times them (triton.testing.do_bench, median).

    python3 bench/resolvent_layouts.py --out bench/results              # H200, ~1 min
    python3 bench/resolvent_layouts.py --layouts 4,128,1 4,64,1 2,256,1 2,128,1 4,256,1   # the run2 list
    TRITON_INTERPRET=1 python3 bench/resolvent_layouts.py --small --out /tmp/r   # CPU script check

Writes <out>/<date>-resolvent_layouts.json after every layout, and prints a table last.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

from bkdsl.kernels import resolvent as kr  # installed, or staged by bench/gpu_k1.sh  # noqa: E402

LAYOUTS = [(16, 128, 1), (8, 256, 1), (4, 512, 1), (2, 1024, 1), (1, 2048, 1), (8, 128, 1), (4, 256, 1),
           (8, 128, 2), (4, 256, 2), (4, 128, 4), (2, 512, 2), (8, 64, 4)]
SMALL_LAYOUTS = [(4, 4, 2), (2, 8, 2), (1, 16, 1)]


def rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).abs().max() / y.abs().max().clamp_min(1e-30))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--budget", type=float, default=150.0, help="seconds; later layouts are skipped")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--layouts", nargs="*", default=None, metavar="SEG,SEGS,BLOCK_B",
                    help="layouts to sweep instead of the built-in list (e.g. 4,128,1 2,128,1)")
    a = ap.parse_args()
    small = a.small
    dev = "cpu" if small else "cuda"
    B, N = (3, 37) if small else (a.batch, a.n)
    layouts = SMALL_LAYOUTS if small else LAYOUTS
    if a.layouts:
        layouts = [tuple(int(v) for v in t.split(",")) for t in a.layouts]
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
    ref_ga, ref_gb = kr.resolvent_diag_backward_triton(pot, hop, z_re, z_im, grad)
    res = {"name": "resolvent_layouts", "date": dt.date.today().isoformat(), "small": small,
           "gpu": torch.cuda.get_device_name() if dev == "cuda" else "cpu (interpreter)",
           "torch": torch.__version__, "size": [B, N], "z": [z_re, z_im],
           "default_layout": [kr.SEG, kr.SEGS, kr.BLOCK_B], "layouts": {}, "skipped": []}
    try:
        import triton
        res["triton"] = triton.__version__
    except ImportError:
        pass
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{res['date']}-resolvent_layouts{'-small' if small else ''}.json"
    for seg, segs, bb in layouts:
        name = f"seg={seg},segs={segs},block_b={bb}"
        if time.time() - t0 > a.budget:
            res["skipped"].append(name)
            continue
        row: dict = {}
        try:
            tc = time.time()
            f = kr.resolvent_diag_triton(pot, hop, z_re, z_im, seg, segs, bb)
            ga, gb = kr.resolvent_diag_backward_triton(pot, hop, z_re, z_im, grad, seg, segs, bb)
            row["compile_and_first_call_s"] = round(time.time() - tc, 2)
            row["fwd_rel_vs_default"] = rel(f, ref_f)
            row["grad_a_rel_vs_default"] = rel(ga, ref_ga)
            row["grad_b_rel_vs_default"] = rel(gb, ref_gb)
            row["finite"] = bool(torch.isfinite(torch.view_as_real(f)).all() and torch.isfinite(ga).all())
            row["fwd_ms"] = bench(lambda: kr.resolvent_diag_triton(pot, hop, z_re, z_im, seg, segs, bb))
            row["bwd_ms"] = bench(lambda: kr.resolvent_diag_backward_triton(pot, hop, z_re, z_im, grad,
                                                                             seg, segs, bb))
        except Exception as e:  # a layout that does not compile or run is recorded, not fatal
            row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        res["layouts"][name] = row
        print(f"[{time.time() - t0:6.1f}s] {name}: {json.dumps(row)}", flush=True)
        path.write_text(json.dumps(res, indent=2) + "\n")
    ok = {k: v for k, v in res["layouts"].items()
          if "fwd_ms" in v and v["finite"] and v["fwd_rel_vs_default"] < 1e-4 and v["grad_a_rel_vs_default"] < 1e-3}
    if ok:
        res["best_fwd"] = min(ok, key=lambda k: ok[k]["fwd_ms"])
        res["best_bwd"] = min(ok, key=lambda k: ok[k]["bwd_ms"])
    res["wall_s"] = round(time.time() - t0, 1)
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\n{'layout':32s} {'fwd ms':>9s} {'bwd ms':>9s}  fwd rel   grad rel")
    for k, v in res["layouts"].items():
        if "fwd_ms" in v:
            print(f"{k:32s} {v['fwd_ms']:9.4f} {v['bwd_ms']:9.4f}  {v['fwd_rel_vs_default']:.1e}  "
                  f"{max(v['grad_a_rel_vs_default'], v['grad_b_rel_vs_default']):.1e}")
        else:
            print(f"{k:32s} {v.get('error')}")
    print(f"best fwd {res.get('best_fwd')}, best bwd {res.get('best_bwd')}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
