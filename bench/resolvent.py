"""Benchmark: segmented resolvent diagonal (Triton) vs the previous sequential kernel and the reference.

    python3 bench/resolvent.py --out bench/results                      # on the GPU, < 240 s (--budget)
    TRITON_INTERPRET=1 python3 bench/resolvent.py --small --out /tmp/r  # CPU dry run of the whole script

Order (each step logged before and after with the elapsed time; the JSON is rewritten after every
step, so a run cut short still leaves its numbers; ``--budget`` seconds, default 230, stops it cleanly):

1. default segmented forward at 4096 × 2048: compile (first call, timed), check against the reference
   forward (one call: 77 ms on the H200), time with ``triton.testing.do_bench`` (median) → JSON;
2. segmented backward: compile, check ∂L/∂a, ∂L/∂b against the reference adjoint sweeps (a loop, no
   autograd graph), time the kernel alone and fwd + bwd through the custom op;
3. the previous sequential forward (the peer), then the copy bandwidth → the bytes floor
   (4 + 4 + 8)·B·N bytes in fp32, then the reference forward (one timed call);
4. optional, while the budget lasts (a step that would not fit in what is left is skipped and listed
   under "skipped"): the reference fwd + bwd; the long chain (N = 65 536) on 2 chains — forward
   against the reference forward, gradients against the reference adjoint sweeps (loops without an
   autograd graph, a few seconds) — and timed at the same number of sites as the main size (128 chains)
   for both kernels; the sequential backward peer (its compile is the slowest, ≈ 10× the sequential
   forward's); other (SEG, SEGS, BLOCK_B), each a fresh compile, skipped unless 1.5× the default
   forward's first call fits.

``--small`` runs the same steps at toy sizes on the CPU interpreter, timing with one wall-clock call,
to check the script end to end; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
import traceback
from pathlib import Path

import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.resolvent import ops as _ops  # noqa: F401  (registers torch.ops.bkdsl.resolvent_diag*)
from bkdsl.kernels.resolvent import segmented as kr
from bkdsl.kernels.resolvent import variants as kv
from bkdsl.nn.resolvent import ResolventDiag, resolvent_backward_reference, resolvent_diag_reference

Z = 0.1j
BUDGET_S = 230.0  # the whole run stops cleanly (JSON written) before this many seconds
T0 = time.time()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')} +{time.time() - T0:6.1f}s] {msg}", flush=True)


def chain(batch, n, device, gen, disorder=2.0):
    a = (disorder * torch.randn(batch, n, generator=gen)).to(device)
    b = (1.0 + 0.3 * torch.randn(batch, n - 1, generator=gen)).to(device)
    return a, b


def rel_err(x, y):
    return ((x - y).abs().max() / y.abs().max()).item()


def fwd_errors(g, g_ref):
    return {"forward": rel_err(g, g_ref), "nonfinite": int((~torch.isfinite(torch.view_as_real(g))).sum()),
            "max_abs_G_times_Im_z": g.abs().max().item() * Z.imag, "min_Im_G": g.imag.min().item()}


def grad_errors(ga, gb, ra, rb):
    return {"grad_a": rel_err(ga, ra), "grad_b": rel_err(gb, rb),
            "grad_nonfinite": int((~torch.isfinite(ga)).sum() + (~torch.isfinite(gb)).sum())}


def ok(err):
    """True when the errors are within bounds (the bench records, rather than aborts on, a failure)."""
    worst = max([v for k, v in err.items() if k in ("forward", "grad_a", "grad_b")] or [0.0])
    bad = err.get("nonfinite", 0) + err.get("grad_nonfinite", 0)
    bounds = err.get("max_abs_G_times_Im_z", 0) <= 1 + 1e-5 and err.get("min_Im_G", 1) > 0
    return bad == 0 and worst < 1e-3 and bounds


def wall_ms(fn, **_):
    """The --small stand-in for do_bench: one call after one warm-up, wall clock."""
    fn()
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--long-n", type=int, default=65536)
    ap.add_argument("--budget", type=float, default=None,
                    help=f"seconds; stop cleanly before this (default {BUDGET_S:.0f}; --small: no limit)")
    ap.add_argument("--small", action="store_true", help="toy sizes on the CPU interpreter (script check)")
    args = ap.parse_args()
    small = args.small
    device = "cpu" if small else "cuda"
    batch, n, long_n = (2, 40, 100) if small else (args.batch, args.n, args.long_n)
    budget_s = args.budget if args.budget is not None else (float("inf") if small else BUDGET_S)
    long_batch_check = 2
    long_batch_time = 2 if small else max(1, batch * n // long_n)  # same number of sites as the main size
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    default = (kr.SEG, kr.SEGS, kr.BLOCK_B)
    default_bwd = (kr.BWD_SEG, kr.BWD_SEGS, kr.BLOCK_B)   # the backward's own layout, as the custom op runs it
    # other (SEG, SEGS, BLOCK_B) for the sweep, each a fresh compile (tile I/O at SEG 32 compiles for ≈ 30 s
    # on the H200's host; bench/resolvent_layouts.py is the sweep of layouts and variants)
    layouts = [(4, 256, 1)]
    long_layout = (32, 1024, 1)  # a long chain has few sequences: more, longer segments per window
    if small:
        default, layouts, long_layout = (4, 4, 2), [(2, 8, 2)], (4, 8, 2)
        default_bwd = (2, 8, 2)
    import triton

    if small:
        bench, bench_name, gpu = wall_ms, "wall clock, one call (CPU interpreter: not a measurement)", "cpu"

        def sync():
            pass
    else:
        from triton.testing import do_bench

        def bench(fn, **kw):
            return do_bench(fn, return_mode="median", **kw)
        bench_name, gpu = "triton.testing.do_bench median", torch.cuda.get_device_name()
        sync = torch.cuda.synchronize

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{_dt.date.today().isoformat()}-resolvent{'-small' if small else ''}.json"
    times, compile_s, errors, failures, skipped = {}, {}, {}, {}, []
    result = {"name": "resolvent", "partial": True, "date": _dt.date.today().isoformat(), "gpu": gpu,
              "torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version(),
              "timer": bench_name, "sizes": {"batch": batch, "n": n, "dtype": "float32 -> complex64",
                                             "z": str(Z), "long_chain": [long_batch_time, long_n]},
              "default_layout": "seg={},segs={},block_b={}".format(*default),
              "target": "forward <= 0.2 ms at 4096 x 2048", "budget_s": budget_s if budget_s != float("inf") else None,
              "times_ms": times, "first_call_s": compile_s, "max_error": errors, "failures": failures,
              "skipped": skipped}
    floor = {}

    def write():
        result["wall_s"] = time.time() - T0
        path.write_text(json.dumps(result, indent=2))

    def left():
        return budget_s - (time.time() - T0)

    def step(name, fn, need_s=0.0):
        """Run fn (logged before/after with elapsed time); skip it if less than need_s of the budget is
        left; record an exception instead of aborting. Returns fn's value or None."""
        if left() < need_s:
            log(f"SKIP {name}: {left():.0f} s left of the budget, needs ~{need_s:.0f} s")
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
        """The first call of a kernel (Triton compile + run), wall clock, synchronised."""
        def go():
            t = time.time()
            r = fn()
            sync()
            compile_s[name] = time.time() - t
            return r
        return go

    def timed(name, fn, **kw):
        def go():
            times[name] = ms = bench(fn, **kw)
            extra = f"   {floor['ms'] / ms:6.1%} of the bytes floor" if floor else ""
            log(f"   {name:44s} {ms:9.4f} ms{extra}")
            return ms
        return go

    log(f"start: {gpu}, torch {torch.__version__}, triton {triton.__version__}, budget {budget_s:.0f} s")
    a, b = chain(batch, n, device, gen)
    w = torch.randn(batch, n, generator=gen, dtype=torch.complex64).to(device)

    # --- 1. the default forward: compile, check, time
    fwd = lambda: kr.resolvent_diag_triton(a, b, Z.real, Z.imag, *default)  # noqa: E731
    g = step("compile segmented fwd (first call)", first_call("segmented fwd", fwd))
    g_ref = step("reference fwd (one call, for the check)", first_call("reference fwd", lambda: resolvent_diag_reference(a, b, Z)))
    if g is not None and g_ref is not None:
        errors["full"] = fwd_errors(g, g_ref)
        errors["full"]["ok"] = ok(errors["full"])
        log(f"   full-size forward check: {errors['full']}")
    fwd_ms = step("time segmented fwd", timed("segmented fwd (default layout)", fwd))
    del g

    # --- 2. the backward: compile, check, time
    bwd = lambda: kr.resolvent_diag_backward_triton(a, b, Z.real, Z.imag, w, *default_bwd)  # noqa: E731
    gk = step("compile segmented bwd (first call)", first_call("segmented bwd", bwd))
    gr = step("reference bwd (adjoint sweeps, one call, for the check)",
              first_call("reference bwd", lambda: resolvent_backward_reference(a, b, Z, w)))
    if gk is not None and gr is not None:
        errors.setdefault("full", {}).update(grad_errors(*gk, *gr))
        errors["full"]["ok"] = ok(errors["full"])
        log(f"   full-size gradient check: {errors['full']}")
    del gk, gr
    step("time segmented bwd kernel", timed("segmented bwd kernel alone", bwd))
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)

    def triton_fwd_bwd():
        with dispatch.force("triton"):
            gg = torch.ops.bkdsl.resolvent_diag(ar, br, Z.real, Z.imag)
            torch.autograd.grad(gg, (ar, br), w)

    def ref_fwd_bwd():
        gg = ResolventDiag.apply(ar, br, Z)
        torch.autograd.grad(gg, (ar, br), w)

    fb_ms = step("time segmented fwd+bwd (custom op)", timed("segmented fwd+bwd (custom op, autograd)", triton_fwd_bwd))

    # --- 3. the peer, the floor, the reference
    seq = lambda: kv.resolvent_diag_triton_sequential(a, b, Z.real, Z.imag)  # noqa: E731
    seq_g = step("compile sequential fwd (first call)", first_call("sequential fwd", seq))
    if seq_g is not None and g_ref is not None:
        errors["sequential_fwd_vs_reference"] = rel_err(seq_g, g_ref)
    del seq_g
    seq_ms = step("time sequential fwd", timed("previous sequential fwd (peer)", seq))

    def copy_floor():
        src = torch.empty(2**18 if small else 2**28, dtype=torch.float32, device=device).uniform_()
        dst = torch.empty_like(src)
        copy_ms = bench(lambda: dst.copy_(src))
        bw = 2 * src.numel() * 4 / (copy_ms * 1e-3)
        floor.update(bytes_per_site=16, ms=(4 + 4 + 8) * batch * n / bw * 1e3)
        result.update(copy_bandwidth_TBps=bw / 1e12, bytes_floor=floor)
        log(f"   copy {bw / 1e12:.2f} TB/s; bytes floor {floor['ms']:.4f} ms")
    step("copy bandwidth (bytes floor)", copy_floor)
    ref_ms = step("time reference fwd (one call)", timed("reference fwd (python loop over N)",
                                                         lambda: resolvent_diag_reference(a, b, Z), warmup=1, rep=1),
                  need_s=2)
    del g_ref

    def ratios():
        t = times
        r = {}
        def put(k, x, y):
            if t.get(x) and t.get(y):
                r[k] = t[x] / t[y]
        put("sequential_fwd / segmented_fwd", "previous sequential fwd (peer)", "segmented fwd (default layout)")
        put("sequential_bwd / segmented_bwd", "previous sequential bwd kernel (peer)", "segmented bwd kernel alone")
        put("reference_fwd / segmented_fwd", "reference fwd (python loop over N)", "segmented fwd (default layout)")
        put("reference_fwd_bwd / segmented_fwd_bwd", "reference fwd+bwd (adjoint sweeps)",
            "segmented fwd+bwd (custom op, autograd)")
        if floor and t.get("segmented fwd (default layout)"):
            r["segmented_fwd / bytes_floor"] = t["segmented fwd (default layout)"] / floor["ms"]
        result["ratios"] = r

    ratios()
    write()

    # --- 4. optional, while the budget lasts
    # a fresh compile is assumed to cost what the default forward's first call did (plus margin)
    compile_need = 1.5 * compile_s.get("segmented fwd", 60.0) + 5
    step("time reference fwd+bwd (one call)", timed("reference fwd+bwd (adjoint sweeps)", ref_fwd_bwd,
                                                    warmup=1, rep=1), need_s=5)

    # the long chain: a small batch, checked against the reference forward and the reference adjoint
    # sweeps (loops over N without an autograd graph: ≈ 2N and 4N small launches)
    la, lb = chain(long_batch_check, long_n, device, gen, disorder=3.0)
    lw = torch.randn(long_batch_check, long_n, generator=gen, dtype=torch.complex64).to(device)
    lg = step(f"segmented fwd {long_batch_check} x {long_n}", lambda: kr.resolvent_diag_triton(la, lb, Z.real, Z.imag, *default))
    lg_ref = step(f"reference fwd {long_batch_check} x {long_n}", lambda: resolvent_diag_reference(la, lb, Z), need_s=25)
    if lg is not None and lg_ref is not None:
        errors["long"] = fwd_errors(lg, lg_ref)
        errors["long"]["ok"] = ok(errors["long"])
        log(f"   N = {long_n} forward check: {errors['long']}")
    lgk = step(f"segmented bwd {long_batch_check} x {long_n}",
               lambda: kr.resolvent_diag_backward_triton(la, lb, Z.real, Z.imag, lw, *default_bwd))
    lgr = step(f"reference bwd {long_batch_check} x {long_n}", lambda: resolvent_backward_reference(la, lb, Z, lw),
               need_s=50) if lgk is not None else None
    if lgk is not None and lgr is not None:
        errors.setdefault("long", {}).update(grad_errors(*lgk, *lgr))
        errors["long"]["ok"] = ok(errors["long"])
        log(f"   N = {long_n} gradient check: {errors['long']}")
    del lg, lg_ref, lgk, lgr
    write()
    ta, tb = chain(long_batch_time, long_n, device, gen, disorder=3.0)
    step(f"time segmented fwd {long_batch_time} x {long_n}",
         timed(f"segmented fwd {long_batch_time} x {long_n}", lambda: kr.resolvent_diag_triton(ta, tb, Z.real, Z.imag, *default)))
    step(f"time sequential fwd {long_batch_time} x {long_n}",
         timed(f"previous sequential fwd {long_batch_time} x {long_n}",
               lambda: kv.resolvent_diag_triton_sequential(ta, tb, Z.real, Z.imag), warmup=1, rep=20), need_s=5)

    # the sequential backward peer: its unrolled chunks (8 × ~25 loads/stores) compile slowly (≈ 90 s
    # on a 2-core CPU for sm_90, ≈ 8× the sequential forward), so it comes after the long chain
    seq_b = lambda: kv.resolvent_diag_backward_triton_sequential(a, b, Z.real, Z.imag, w)  # noqa: E731
    seq_b_need = max(60.0, 10 * compile_s.get("sequential fwd", 10.0))
    if step("compile sequential bwd (first call)", first_call("sequential bwd", seq_b), need_s=seq_b_need) is not None:
        step("time sequential bwd", timed("previous sequential bwd kernel (peer)", seq_b))
    ratios()
    write()

    # other layouts: each a fresh compile
    sweep = {result["default_layout"]: fwd_ms}
    result["sweep_ms"] = sweep
    for layout in layouts + [long_layout]:
        name = "seg={},segs={},block_b={}".format(*layout)
        if layout == long_layout:
            fn = lambda: kr.resolvent_diag_triton(ta, tb, Z.real, Z.imag, *long_layout)  # noqa: E731
            name = f"{long_batch_time} x {long_n} {name}"
        else:
            fn = lambda layout=layout: kr.resolvent_diag_triton(a, b, Z.real, Z.imag, *layout)  # noqa: E731
        if step(f"compile fwd {name}", first_call(f"segmented fwd {name}", fn), need_s=compile_need) is None:
            continue
        if layout != long_layout and step(f"check fwd {name} against the default layout",
                                          lambda fn=fn, name=name: agrees_with_default(fn, a, b, default, errors, name)) is None:
            continue
        sweep[name] = step(f"time fwd {name}", timed(f"segmented fwd {name}", fn))
    result["partial"] = False
    ratios()
    write()
    log(f"wrote {path}")
    print(f"{'contender':50s} {'ms':>9s} {'x default segmented fwd':>24s}")
    for k, v in times.items():
        rel = f"{v / fwd_ms:24.2f}" if (v is not None and fwd_ms) else ""
        print(f"{k:50s} {v:9.4f} {rel}" if v is not None else f"{k:50s} {'failed':>9s}")
    print("first calls (compile + run), s:", {k: round(v, 1) for k, v in compile_s.items()})
    print("errors:", json.dumps(errors))
    if failures:
        print("FAILURES:", json.dumps(failures, indent=1))
    if skipped:
        print("skipped (budget):", skipped)


def agrees_with_default(fn, a, b, default, errors, name):
    """A swept layout must agree with the default layout (not timed otherwise)."""
    d = rel_err(fn(), kr.resolvent_diag_triton(a, b, Z.real, Z.imag, *default))
    errors.setdefault("sweep_vs_default", {})[name] = d
    if d > 1e-4:
        raise AssertionError(f"{name}: differs from the default layout by {d:.2e}")
    return True


if __name__ == "__main__":
    main()
