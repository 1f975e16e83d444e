"""Benchmark: the causal (retarded) resolvent scan (Triton) vs its peers, checked first.

    python3 bench/resolvent_causal.py --out $OUT                              # on the GPU, < 200 s (--budget)
    TRITON_INTERPRET=1 python3 bench/resolvent_causal.py --small --out /tmp/r  # CPU dry run of the script

Contenders at 4096 × 2048 float32 (z = 0.1i), each checked against the float64-free reference
(:func:`resolvent_diag_causal_reference`, the left continued fraction as a Python loop over N) before it
is timed with ``triton.testing.do_bench`` (median), all in one process:

* the causal one-sweep kernel (forward; backward kernel; forward + backward through the custom op);
* the plain sequential causal kernel (one lane per sequence, N dependent steps) — the "sequential kernel";
* the two-sided segmented kernel (what a model paid before; not the same function, timed for scale);
* the strongest PyTorch peer a user would pick: the Möbius prefix product as a parallel scan under
  ``torch.compile`` — ``torch._higher_order_ops.associative_scan`` (pointwise combine, forward only: the
  prototype has no autograd) and a Hillis–Steele doubling scan in plain ops (forward, and forward +
  backward through autograd);
* the reference itself (one call).

Correctness at N = 65 536 on 2 chains (forward against the reference, gradients against the
reference adjoint sweep; |G| ≤ 1/Im z, Im G > 0, all finite) and the copy-bandwidth bytes floor
(4 + 4 + 8)·B·N bytes. The JSON (``<out>/<date>-resolvent_causal.json``) is rewritten after every step,
so a run cut short keeps its numbers; ``--budget`` seconds (default 200) stops it cleanly. Every check
fails closed: NaN/Inf in an error, or an exception, is a failure recorded in the JSON, never a pass.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import time
import traceback
from pathlib import Path

import torch
import triton

from bkdsl.kernels import dispatch, tiles
from bkdsl.kernels.resolvent import causal as kc
from bkdsl.kernels.resolvent import ops  # noqa: F401  (registers torch.ops.bkdsl.resolvent_diag_causal)
from bkdsl.kernels.resolvent import segmented as ks
from bkdsl.kernels.resolvent import variants
from bkdsl.kernels.resolvent.naive import (ResolventDiagCausal, resolvent_causal_backward_reference,
                                           resolvent_diag_causal_reference)

Z = 0.1j
BUDGET_S = 200.0
TARGET_FWD_MS = 0.15
T0 = time.time()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')} +{time.time() - T0:6.1f}s] {msg}", flush=True)


def chain(batch, n, device, gen, disorder=2.0):
    a = (disorder * torch.randn(batch, n, generator=gen)).to(device)
    b = (1.0 + 0.3 * torch.randn(batch, n - 1, generator=gen)).to(device)
    return a, b


def rel_err(x, y):
    """max |x − y| / max |y|; NaN (never a pass) when either holds a non-finite value or y is empty."""
    if x.numel() == 0 or y.numel() == 0:
        return float("nan")
    xr = torch.view_as_real(x) if x.is_complex() else x
    yr = torch.view_as_real(y) if y.is_complex() else y
    if not (torch.isfinite(xr).all() and torch.isfinite(yr).all()):
        return float("nan")
    return ((x - y).abs().max() / y.abs().max()).item()


def fwd_errors(g, g_ref):
    return {"forward": rel_err(g, g_ref), "nonfinite": int((~torch.isfinite(torch.view_as_real(g))).sum()),
            "max_abs_G_times_Im_z": g.abs().max().item() * Z.imag, "min_Im_G": g.imag.min().item()}


def grad_errors(ga, gb, ra, rb):
    return {"grad_a": rel_err(ga, ra), "grad_b": rel_err(gb, rb),
            "grad_nonfinite": int((~torch.isfinite(ga)).sum() + (~torch.isfinite(gb)).sum())}


def ok(err, tol=1e-3):
    """Within bounds; NaN anywhere fails (comparisons with NaN are False)."""
    worst = [v for k, v in err.items() if k in ("forward", "grad_a", "grad_b")]
    bad = err.get("nonfinite", 0) + err.get("grad_nonfinite", 0)
    bounds = err.get("max_abs_G_times_Im_z", 0.0) <= 1 + 1e-5 and err.get("min_Im_G", 1.0) > 0
    return bool(worst) and all(v < tol for v in worst) and bad == 0 and bounds


def wall_ms(fn, **_):
    """The --small stand-in for do_bench: one call after one warm-up, wall clock."""
    fn()
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "bench/results"))
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--long-n", type=int, default=65536)
    ap.add_argument("--budget", type=float, default=None, help=f"seconds (default {BUDGET_S:.0f}; --small: none)")
    ap.add_argument("--small", action="store_true", help="toy sizes on the CPU interpreter (script check)")
    args = ap.parse_args()
    small = args.small
    device = "cpu" if small else "cuda"
    batch, n, long_n = (2, 40, 100) if small else (args.batch, args.n, args.long_n)
    budget_s = args.budget if args.budget is not None else (float("inf") if small else BUDGET_S)
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    layout = dict(seg=kc.CAUSAL_SEG, segs=kc.CAUSAL_SEGS, io=kc.CAUSAL_IO)
    bwd_layout = dict(seg=kc.CAUSAL_BWD_SEG, segs=kc.CAUSAL_BWD_SEGS)
    if small:
        layout, bwd_layout = dict(seg=4, segs=4, block_b=2, io=kc.CAUSAL_IO), dict(seg=2, segs=8, block_b=2)
        bench, timer, gpu = wall_ms, "wall clock, one call (CPU interpreter: not a measurement)", "cpu"

        def sync():
            pass

        def compile_peer(fn):  # the CPU interpreter run checks the script, not inductor
            return fn
    else:
        from triton.testing import do_bench

        def bench(fn, **kw):
            return do_bench(fn, return_mode="median", **kw)

        timer, gpu, sync = "triton.testing.do_bench median", torch.cuda.get_device_name(), torch.cuda.synchronize

        def compile_peer(fn):
            return torch.compile(fn, dynamic=False)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{_dt.date.today().isoformat()}-resolvent_causal{'-small' if small else ''}.json"
    times, first_s, errors, failures, skipped, floor = {}, {}, {}, {}, [], {}
    result = {"name": "resolvent_causal", "partial": True, "date": _dt.date.today().isoformat(), "gpu": gpu,
              "torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version(),
              "timer": timer, "sizes": {"batch": batch, "n": n, "dtype": "float32 -> complex64", "z": str(Z),
                                        "long_chain": [2, long_n]},
              "layout_fwd": layout, "layout_bwd": bwd_layout, "target": f"causal forward <= {TARGET_FWD_MS} ms",
              "times_ms": times, "first_call_s": first_s, "max_error": errors, "failures": failures,
              "skipped": skipped}

    def write():
        result["wall_s"] = time.time() - T0
        path.write_text(json.dumps(result, indent=2, default=str))

    def left():
        return budget_s - (time.time() - T0)

    def step(name, fn, need_s=0.0):
        if left() < need_s:
            log(f"SKIP {name}: {left():.0f} s left, needs ~{need_s:.0f} s")
            skipped.append(name)
            write()
            return None
        log(f"-> {name}")
        t = time.time()
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 - recorded in the JSON, the run goes on
            failures[name] = f"{type(e).__name__}: {e}"[:2000]
            log(f"FAILED {name} after {time.time() - t:.1f} s: {failures[name][:300]}")
            traceback.print_exc()
            write()
            return None
        log(f"<- {name} ({time.time() - t:.1f} s)")
        write()
        return value

    def first_call(name, fn):
        def go():
            t = time.time()
            r = fn()
            sync()
            first_s[name] = time.time() - t
            return r
        return go

    def timed(name, fn, **kw):
        def go():
            times[name] = ms = bench(fn, **kw)
            extra = f"   {floor['ms'] / ms:6.1%} of the bytes floor" if floor else ""
            log(f"   {name:48s} {ms:9.4f} ms{extra}")
            return ms
        return go

    def check(key, got, want, tol=1e-3):
        errors[key] = fwd_errors(got, want)
        errors[key]["ok"] = ok(errors[key], tol)
        log(f"   {key}: {errors[key]}")
        return errors[key]["ok"]

    log(f"start: {gpu}, torch {torch.__version__}, triton {triton.__version__}, budget {budget_s:.0f} s")
    a, b = chain(batch, n, device, gen)
    w = torch.randn(batch, n, generator=gen, dtype=torch.complex64).to(device)

    # --- the layouts: the custom ops launch through their tile tables (a layout that fails to compile
    # falls back to the next, #20.3); the bench times the layouts that ran
    def pick():
        torch.ops.bkdsl.resolvent_diag_causal(a, b, Z.real, Z.imag)
        torch.ops.bkdsl.resolvent_diag_causal_backward(a, b, Z.real, Z.imag, w)
        sync()
        result["active_tiles"] = {k: dict(t) for k, t in tiles.active("resolvent").items()}
        result["tile_failures"] = tiles.failures("resolvent")
        for k, t in tiles.active("resolvent.causal").items():
            if not small:
                (layout if k.startswith("resolvent.causal_fwd") else bwd_layout).update(t)
        return True

    step("pick the causal layouts (custom ops, tile tables)", first_call("custom ops (tile tables)", pick))

    # --- the causal kernel: forward, backward, fwd+bwd through the custom op
    fwd = lambda: kc.resolvent_diag_causal_triton(a, b, Z.real, Z.imag, **layout)  # noqa: E731
    g = step("compile causal fwd", first_call("causal fwd", fwd))
    g_ref = step("reference causal fwd (one call)", first_call("reference fwd", lambda: resolvent_diag_causal_reference(a, b, Z)))
    fwd_ok = g is not None and g_ref is not None and check("causal fwd", g, g_ref)
    if fwd_ok:
        step("time causal fwd", timed("causal fwd (one sweep)", fwd))
    bwd = lambda: kc.resolvent_diag_causal_backward_triton(a, b, Z.real, Z.imag, w, **bwd_layout)  # noqa: E731
    gk = step("compile causal bwd", first_call("causal bwd", bwd))
    gr = step("reference causal bwd (adjoint sweep, one call)", lambda: resolvent_causal_backward_reference(a, b, Z, w))
    if gk is not None and gr is not None:
        errors["causal bwd"] = grad_errors(*gk, *gr)
        errors["causal bwd"]["ok"] = ok(errors["causal bwd"])
        log(f"   causal bwd: {errors['causal bwd']}")
        if errors["causal bwd"]["ok"]:
            step("time causal bwd", timed("causal bwd kernel", bwd))
    del gk, gr
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)

    def op_fwd_bwd():
        with dispatch.force("triton"):
            gg = torch.ops.bkdsl.resolvent_diag_causal(ar, br, Z.real, Z.imag)
            return torch.autograd.grad(gg, (ar, br), w)

    step("time causal fwd+bwd (custom op)", timed("causal fwd+bwd (custom op, autograd)", op_fwd_bwd))

    # --- the sequential kernel and the two-sided kernel
    seq = lambda: variants.resolvent_diag_causal_triton_sequential(a, b, Z.real, Z.imag)  # noqa: E731
    gs = step("compile sequential causal fwd", first_call("sequential causal fwd", seq))
    if gs is not None and g_ref is not None and check("sequential causal fwd", gs, g_ref):
        step("time sequential causal fwd", timed("sequential causal fwd (one lane per sequence)", seq))
    del gs
    two = lambda: ks.resolvent_diag_triton(a, b, Z.real, Z.imag)  # noqa: E731
    if step("compile two-sided fwd", first_call("two-sided fwd", two)) is not None:
        step("time two-sided fwd", timed("two-sided segmented fwd (not causal; scale)", two))

    def copy_floor():
        src = torch.empty(2**18 if small else 2**28, dtype=torch.float32, device=device).uniform_()
        dst = torch.empty_like(src)
        copy_ms = bench(lambda: dst.copy_(src))
        bw = 2 * src.numel() * 4 / (copy_ms * 1e-3)
        floor.update(bytes_per_site=16, ms=(4 + 4 + 8) * batch * n / bw * 1e3)
        result.update(copy_bandwidth_TBps=bw / 1e12, bytes_floor=floor)
        log(f"   copy {bw / 1e12:.2f} TB/s; bytes floor {floor['ms']:.4f} ms")

    step("copy bandwidth (bytes floor)", copy_floor)
    step("time reference fwd (one call)", timed("reference causal fwd (python loop over N)",
                                                lambda: resolvent_diag_causal_reference(a, b, Z), warmup=1, rep=1),
         need_s=2)

    # --- N = 65 536: forward and gradients against the reference (loops without an autograd graph)
    la, lb = chain(2, long_n, device, gen, disorder=3.0)
    lw = torch.randn(2, long_n, generator=gen, dtype=torch.complex64).to(device)
    lg = step(f"causal fwd 2 x {long_n}", lambda: kc.resolvent_diag_causal_triton(la, lb, Z.real, Z.imag, **layout))
    lg_ref = step(f"reference fwd 2 x {long_n}", lambda: resolvent_diag_causal_reference(la, lb, Z), need_s=20)
    if lg is not None and lg_ref is not None:
        check("long", lg, lg_ref)
    lgk = step(f"causal bwd 2 x {long_n}",
               lambda: kc.resolvent_diag_causal_backward_triton(la, lb, Z.real, Z.imag, lw, **bwd_layout))
    lgr = step(f"reference bwd 2 x {long_n}", lambda: resolvent_causal_backward_reference(la, lb, Z, lw),
               need_s=40) if lgk is not None else None
    if lgk is not None and lgr is not None:
        errors.setdefault("long", {}).update(grad_errors(*lgk, *lgr))
        errors["long"]["ok"] = ok(errors["long"])
        log(f"   long gradients: {errors['long']}")

    # --- the strongest PyTorch peers: parallel scans under torch.compile (forward), autograd (fwd+bwd)
    scan = compile_peer(lambda a, b: variants.resolvent_diag_causal_associative_scan(
        a, b, Z, combine_mode="generic" if small else "pointwise"))
    gsc = step("compile associative_scan peer", first_call("associative_scan (compiled)", lambda: scan(a, b)), need_s=60)
    if gsc is not None and g_ref is not None and check("associative_scan (compiled)", gsc, g_ref):
        step("time associative_scan peer", timed("torch.compile associative_scan fwd (peer)", lambda: scan(a, b)))
    del gsc
    dbl = compile_peer(lambda a, b: variants.resolvent_diag_causal_doubling(a, b, Z))
    gd = step("compile doubling-scan peer", first_call("doubling scan (compiled)", lambda: dbl(a, b)), need_s=60)
    if gd is not None and g_ref is not None and check("doubling scan (compiled)", gd, g_ref):
        step("time doubling-scan peer fwd", timed("torch.compile doubling scan fwd (peer)", lambda: dbl(a, b)))

        def dbl_fwd_bwd():
            return torch.autograd.grad(dbl(ar, br), (ar, br), w)

        if step("compile doubling-scan fwd+bwd", first_call("doubling scan fwd+bwd (compiled)", dbl_fwd_bwd),
                need_s=60) is not None:
            step("time doubling-scan peer fwd+bwd", timed("torch.compile doubling scan fwd+bwd (peer)", dbl_fwd_bwd))
    del gd, g_ref

    r = {}
    t = times
    base = t.get("causal fwd (one sweep)")
    for k in ("sequential causal fwd (one lane per sequence)", "two-sided segmented fwd (not causal; scale)",
              "torch.compile associative_scan fwd (peer)", "torch.compile doubling scan fwd (peer)",
              "reference causal fwd (python loop over N)"):
        if base and t.get(k):
            r[f"{k} / causal fwd"] = t[k] / base
    if t.get("causal fwd+bwd (custom op, autograd)") and t.get("torch.compile doubling scan fwd+bwd (peer)"):
        r["doubling fwd+bwd / causal fwd+bwd"] = (t["torch.compile doubling scan fwd+bwd (peer)"]
                                                  / t["causal fwd+bwd (custom op, autograd)"])
    if base and floor:
        r["causal fwd / bytes floor"] = base / floor["ms"]
    result["ratios"] = r
    result["all_checks_ok"] = bool(errors) and all(e.get("ok") for e in errors.values()) and not failures
    result["target_met"] = bool(base) and base <= TARGET_FWD_MS and result["all_checks_ok"]
    result["partial"] = False
    write()
    log(f"wrote {path}")
    print(f"{'contender':56s} {'ms':>9s} {'x causal fwd':>13s}")
    for k, v in times.items():
        rel = f"{v / base:13.2f}" if (base and v) else ""
        print(f"{k:56s} {v:9.4f} {rel}" if v is not None and not math.isnan(v) else f"{k:56s} {'failed':>9s}")
    print("first calls (compile + run), s:", {k: round(v, 1) for k, v in first_s.items()})
    print("checks ok:", {k: e.get("ok") for k, e in errors.items()}, "target met:", result["target_met"])
    if failures:
        print("FAILURES:", json.dumps(failures, indent=1))
    if skipped:
        print("skipped (budget):", skipped)


if __name__ == "__main__":
    main()
