"""Benchmark: segmented resolvent diagonal (Triton) vs the previous sequential kernel and the reference.

    python3 bench/resolvent.py --out bench/results                      # on the GPU, < 90 s
    TRITON_INTERPRET=1 python3 bench/resolvent.py --small --out /tmp/r  # CPU dry run of the whole script

Method: measure the copy bandwidth (device-to-device, bytes read + written); the bytes floor is one read
of a and b and one write of G: (4 + 4 + 8)·B·N bytes in fp32. Check the segmented kernel against the
reference on fresh random inputs, forward and gradients, at the full size (4096 × 2048) and on a long
chain (N = 65 536: finite, |G| ≤ 1/Im z, relative error). Then time every contender in this process on
the same inputs with ``triton.testing.do_bench`` (median): the segmented forward over a few (SEG, SEGS,
BLOCK_B) layouts, its forward + backward through the custom op and its backward kernel alone, the
previous sequential kernels (forward and backward), the reference (a couple of runs: it is a Python
loop over N), and the long chain at the same number of sites (128 × 65 536) for both kernels.
``--small`` runs the same steps at toy sizes on the CPU interpreter, timing with one wall-clock call,
to check the script end to end; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import os
import time
from pathlib import Path

import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels import resolvent as kr
from bkdsl.nn.resolvent import ResolventDiag, resolvent_backward_reference, resolvent_diag_reference

Z = 0.1j
BUDGET_S = 80.0  # stop sweeping layouts past this (the lead's limit is 90 s)


def chain(batch, n, device, gen, disorder=2.0):
    a = (disorder * torch.randn(batch, n, generator=gen)).to(device)
    b = (1.0 + 0.3 * torch.randn(batch, n - 1, generator=gen)).to(device)
    return a, b


def rel_err(x, y):
    return ((x - y).abs().max() / y.abs().max()).item()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wall_ms(fn, **_):
    """The --small stand-in for do_bench: one call after one warm-up, wall clock."""
    fn()
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def check(a, b, w, layout, grads=True):
    """Max relative errors of the segmented kernel vs the reference, and its non-finite count."""
    g = kr.resolvent_diag_triton(a, b, Z.real, Z.imag, *layout)
    g_ref = resolvent_diag_reference(a, b, Z)
    err = {"forward": rel_err(g, g_ref), "nonfinite": int((~torch.isfinite(torch.view_as_real(g))).sum()),
           "max_abs_G_times_Im_z": g.abs().max().item() * Z.imag, "min_Im_G": g.imag.min().item()}
    if grads:
        ga, gb = kr.resolvent_diag_backward_triton(a, b, Z.real, Z.imag, w, *layout)
        ra, rb = resolvent_backward_reference(a, b, Z, w)
        err.update(grad_a=rel_err(ga, ra), grad_b=rel_err(gb, rb),
                   grad_nonfinite=int((~torch.isfinite(ga)).sum() + (~torch.isfinite(gb)).sum()))
    return err


def assert_ok(err, name):
    worst = max(v for k, v in err.items() if k in ("forward", "grad_a", "grad_b"))
    bad = err["nonfinite"] + err.get("grad_nonfinite", 0)
    assert bad == 0 and worst < 1e-3 and err["max_abs_G_times_Im_z"] <= 1 + 1e-5 and err["min_Im_G"] > 0, \
        f"{name}: {err}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--long-n", type=int, default=65536)
    ap.add_argument("--small", action="store_true", help="toy sizes on the CPU interpreter (script check)")
    args = ap.parse_args()
    t_start = time.time()
    small = args.small
    device = "cpu" if small else "cuda"
    batch, n, long_n = (2, 40, 100) if small else (args.batch, args.n, args.long_n)
    budget_s = float("inf") if small else BUDGET_S  # --small runs every step, however slow
    long_batch_check = 2 if small else 16
    long_batch_time = 2 if small else max(1, batch * n // long_n)  # same number of sites as the main size
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    # (SEG, SEGS, BLOCK_B): the default first
    layouts = [(kr.SEG, kr.SEGS, kr.BLOCK_B), (8, 256, 1), (32, 64, 1), (16, 64, 2)]
    long_layout = (32, 1024, 1)  # a long chain has few sequences: more, longer segments per window
    if small:
        layouts, long_layout = [(4, 4, 2), (2, 8, 2)], (4, 8, 2)
    if small:
        bench, bench_name, gpu = wall_ms, "wall clock, one call (CPU interpreter: not a measurement)", "cpu"
    else:
        from triton.testing import do_bench

        def bench(fn, **kw):
            return do_bench(fn, return_mode="median", **kw)
        bench_name, gpu = "triton.testing.do_bench median", torch.cuda.get_device_name()
    import triton

    # --- correctness on fresh inputs
    log("start")
    a, b = chain(batch, n, device, gen)
    w = torch.randn(batch, n, generator=gen, dtype=torch.complex64).to(device)
    errors = {"full": check(a, b, w, layouts[0])}
    log(f"full size checked: {errors['full']}")
    assert_ok(errors["full"], "full size")
    la, lb = chain(long_batch_check, long_n, device, gen, disorder=3.0)
    lw = torch.randn(long_batch_check, long_n, generator=gen, dtype=torch.complex64).to(device)
    errors["long"] = check(la, lb, lw, layouts[0] if not small else long_layout)
    log(f"N = {long_n} checked: {errors['long']}")
    assert_ok(errors["long"], f"N = {long_n}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_dt.date.today().isoformat()}-resolvent{'-small' if small else ''}.json"
    result = {"name": "resolvent", "partial": True, "date": _dt.date.today().isoformat(), "gpu": gpu,
              "torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version(),
              "timer": bench_name, "sizes": {"batch": batch, "n": n, "dtype": "float32 -> complex64",
                                             "z": str(Z), "long_chain": [long_batch_time, long_n]},
              "max_error": errors, "target": "forward <= 0.2 ms at 4096 x 2048"}
    path.write_text(json.dumps(result, indent=2))  # overwritten below once every contender is timed

    # --- bytes floor
    src = torch.empty(2**18 if small else 2**28, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    copy_ms = bench(lambda: dst.copy_(src))
    bw = 2 * src.numel() * 4 / (copy_ms * 1e-3)
    floor_ms = (4 + 4 + 8) * batch * n / bw * 1e3
    times = {}

    def timed(name, fn, **kw):
        times[name] = ms = bench(fn, **kw)
        print(f"{name:44s} {ms:9.4f} ms   {floor_ms / ms:6.1%} of the bytes floor", flush=True)
        return ms

    def optional(name, fn, share, **kw):
        """Time fn unless the run has used more than share of its budget (then record None)."""
        if time.time() - t_start > budget_s * share:
            log(f"time budget: {name} skipped")
            times[name] = None
            return None
        return timed(name, fn, **kw)

    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)

    def triton_fwd_bwd():
        g = torch.ops.bkdsl.resolvent_diag(ar, br, Z.real, Z.imag)
        torch.autograd.grad(g, (ar, br), w)

    def ref_fwd_bwd():
        g = ResolventDiag.apply(ar, br, Z)
        torch.autograd.grad(g, (ar, br), w)

    # --- the essentials first: default layout, fwd+bwd, the peers' forward
    ref_g = kr.resolvent_diag_triton(a, b, Z.real, Z.imag, *layouts[0])
    sweep = {}

    def layout_fn(layout):
        return lambda: kr.resolvent_diag_triton(a, b, Z.real, Z.imag, *layout)

    def layout_name(layout):
        return "seg={},segs={},block_b={}".format(*layout)

    t_fwd = sweep[layout_name(layouts[0])] = timed(f"segmented fwd {layout_name(layouts[0])}",
                                                    layout_fn(layouts[0]))
    with dispatch.force("triton"):
        t_fb = timed("segmented fwd+bwd (custom op, autograd)", triton_fwd_bwd)
    t_bwd = timed("segmented bwd kernel alone", lambda: kr.resolvent_diag_backward_triton(a, b, Z.real, Z.imag, w))
    t_seq = timed("previous sequential fwd (peer)", lambda: kr.resolvent_diag_triton_sequential(a, b, Z.real, Z.imag))
    t_ref = timed("reference fwd (python loop over N)", lambda: resolvent_diag_reference(a, b, Z), warmup=1, rep=1)
    # --- then what the budget allows
    for layout in layouts[1:]:
        if time.time() - t_start > budget_s * 0.55:
            log(f"time budget: layout {layout} skipped")
            continue
        fn = layout_fn(layout)
        torch.testing.assert_close(fn(), ref_g, rtol=1e-4, atol=1e-4)
        sweep[layout_name(layout)] = timed(f"segmented fwd {layout_name(layout)}", fn)
    best = min(sweep, key=sweep.get)
    t_seq_b = optional("previous sequential bwd kernel (peer)",
                       lambda: kr.resolvent_diag_backward_triton_sequential(a, b, Z.real, Z.imag, w), 0.65)
    la, lb = chain(long_batch_time, long_n, device, gen, disorder=3.0)
    t_long = optional(f"segmented fwd {long_batch_time} x {long_n}",
                      lambda: kr.resolvent_diag_triton(la, lb, Z.real, Z.imag), 0.7)
    t_long_2 = optional("segmented fwd {} x {} {}".format(long_batch_time, long_n, layout_name(long_layout)),
                        lambda: kr.resolvent_diag_triton(la, lb, Z.real, Z.imag, *long_layout), 0.75)
    t_long_seq = optional(f"previous sequential fwd {long_batch_time} x {long_n}",
                          lambda: kr.resolvent_diag_triton_sequential(la, lb, Z.real, Z.imag), 0.8,
                          warmup=1, rep=20)
    t_ref_fb = optional("reference fwd+bwd (adjoint sweeps)", ref_fwd_bwd, 0.85, warmup=1, rep=1)
    t_long_best = min(t for t in (t_long, t_long_2) if t is not None) if (t_long or t_long_2) else None

    result.update({
        "partial": False,
        "copy_bandwidth_TBps": bw / 1e12,
        "bytes_floor": {"bytes_per_site": 16, "ms": floor_ms},
        "times_ms": times,
        "sweep_ms": sweep,
        "best_forward_layout": best,
        "ratios": {
            "sequential_fwd / segmented_fwd": t_seq / t_fwd,
            "sequential_bwd / segmented_bwd": (t_seq_b / t_bwd) if t_seq_b else None,
            "reference_fwd / segmented_fwd": t_ref / t_fwd,
            "reference_fwd_bwd / segmented_fwd_bwd": (t_ref_fb / t_fb) if t_ref_fb else None,
            "segmented_fwd / bytes_floor": t_fwd / floor_ms,
            "best_segmented_fwd / bytes_floor": sweep[best] / floor_ms,
            "long_chain sequential / best segmented": (t_long_seq / t_long_best) if t_long_seq and t_long_best else None,
        },
        "wall_s": time.time() - t_start,
    })
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path} ({time.time() - t_start:.0f} s)")
    print(f"{'contender':44s} {'ms':>9s} {'x default segmented fwd':>24s}")
    for k, v in times.items():
        print(f"{k:44s} {v:9.4f} {v / t_fwd:24.2f}" if v is not None else f"{k:44s} {'skipped':>9s}")
    print(f"bytes floor {floor_ms:.4f} ms at {bw / 1e12:.2f} TB/s; best forward layout {best} "
          f"({sweep[best]:.4f} ms; target 0.2 ms)")
    print(f"max rel. error full {max(errors['full'][k] for k in ('forward', 'grad_a', 'grad_b')):.2e}, "
          f"N = {long_n} {max(errors['long'][k] for k in ('forward', 'grad_a', 'grad_b')):.2e}")


if __name__ == "__main__":
    main()
