"""Benchmark: fused resolvent diagonal (Triton) vs the PyTorch reference sweep (BENCHMARKS.md).

    python bench/resolvent.py --out bench/results              # on the GPU (bench/gpu_k1.sh)
    TRITON_INTERPRET=1 python bench/resolvent.py --smoke       # CPU: checks the script, no timing

Method: measure the copy bandwidth (device-to-device, bytes read + written); the bytes floor is one read
of a and b and one write of G: (4 + 4 + 8)·B·N bytes in fp32. Check the kernel against the reference on
fresh random inputs (forward and gradients); then time every contender in this process on the same
inputs with ``triton.testing.do_bench`` (median): Triton forward (the default launch and a small sweep
of launch parameters), Triton forward + backward, the reference forward (Python loop over N, batch
vectorised) and the reference forward + backward (its adjoint sweeps).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import torch

from bkdsl.kernels import resolvent as kr
from bkdsl.nn.resolvent import ResolventDiag, resolvent_backward_reference, resolvent_diag_reference

Z = 0.1j


def chain(batch, n, device, gen):
    a = (2.0 * torch.randn(batch, n, generator=gen)).to(device)
    b = (1.0 + 0.3 * torch.randn(batch, n - 1, generator=gen)).to(device)
    return a, b


def rel_err(x, y):
    return ((x - y).abs().max() / y.abs().max()).item()


def copy_bandwidth(device, do_bench):
    """Bytes read + written per second by a large device-to-device copy (1 GiB each way)."""
    src = torch.empty(2**28, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src))
    return 2 * src.numel() * 4 / (ms * 1e-3), ms


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU interpreter, no timing")
    args = ap.parse_args()
    device = "cpu" if args.smoke else "cuda"
    batch, n = (40, 33) if args.smoke else (args.batch, args.n)
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))

    # correctness on fresh inputs: forward and gradients against the reference
    log("start")
    a, b = chain(batch, n, device, gen)
    w = torch.randn(batch, n, generator=gen, dtype=torch.complex64).to(device)
    g = kr.resolvent_diag_triton(a, b, Z.real, Z.imag)
    log("triton forward compiled and run")
    g_ref = resolvent_diag_reference(a, b, Z)
    log("reference forward done")
    ga, gb = kr.resolvent_diag_backward_triton(a, b, Z.real, Z.imag, w)
    log("triton backward compiled and run")
    ra, rb = resolvent_backward_reference(a, b, Z, w)
    log("reference backward done")
    errors = {"forward": rel_err(g, g_ref), "grad_a": rel_err(ga, ra), "grad_b": rel_err(gb, rb),
              "nonfinite": int((~torch.isfinite(torch.view_as_real(g))).sum())}
    print("max |Δ|/max|ref|:", errors)
    assert errors["nonfinite"] == 0 and max(errors["forward"], errors["grad_a"], errors["grad_b"]) < 1e-3
    if args.smoke:
        print("smoke: ok")
        return

    from triton.testing import do_bench
    import triton

    bw, copy_ms = copy_bandwidth(device, do_bench)
    floor_bytes = (4 + 4 + 8) * batch * n
    floor_ms = floor_bytes / bw * 1e3
    times = {}

    def timed(name, fn, **kw):
        ms = do_bench(fn, return_mode="median", **kw)
        times[name] = ms
        print(f"{name:42s} {ms:9.4f} ms   {floor_ms / ms:6.1%} of the bytes floor")
        return ms

    # launch-parameter sweep of the forward (the default first)
    sweep = {}
    for bs, ch, nw in [(kr.BLOCK_SEQ, kr.CHUNK, kr.NUM_WARPS), (32, 4, 1), (32, 16, 1), (64, 8, 1),
                       (64, 8, 2), (128, 8, 4)]:
        fn = lambda bs=bs, ch=ch, nw=nw: kr.resolvent_diag_triton(a, b, Z.real, Z.imag, bs, ch, nw)
        torch.testing.assert_close(fn(), g, rtol=1e-4, atol=1e-4)
        sweep[f"block_seq={bs},chunk={ch},warps={nw}"] = timed(f"triton fwd bs={bs} ch={ch} w={nw}", fn)
    best_cfg = min(sweep, key=sweep.get)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_dt.date.today().isoformat()}-resolvent.json"
    partial = {"name": "resolvent", "partial": True, "gpu": torch.cuda.get_device_name(),
               "torch": torch.__version__, "triton": triton.__version__,
               "sizes": {"batch": batch, "n": n}, "copy_bandwidth_TBps": bw / 1e12,
               "bytes_floor_ms": floor_ms, "sweep_ms": sweep, "max_error": errors}
    path.write_text(json.dumps(partial, indent=2))  # overwritten below once every contender is timed

    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)

    def triton_fwd_bwd():
        out = torch.ops.bkdsl.resolvent_diag(ar, br, Z.real, Z.imag)
        torch.autograd.grad(out, (ar, br), w)

    def ref_fwd_bwd():
        out = ResolventDiag.apply(ar, br, Z)
        torch.autograd.grad(out, (ar, br), w)

    t_fwd = sweep[next(iter(sweep))]
    t_layout = timed("layout copies alone (a, b to [N,B]; planes to complex)",
                     lambda: (kr._site_major(a), kr._site_major(b),
                              torch.view_as_real(torch.empty_like(g)).copy_(
                                  torch.empty(2, n, batch, device=device).permute(2, 1, 0))))
    t_fb = timed("triton fwd+bwd (custom op, autograd)", triton_fwd_bwd)
    t_bwd_only = timed("triton bwd kernel alone",
                       lambda: kr.resolvent_diag_backward_triton(a, b, Z.real, Z.imag, w))
    t_ref = timed("reference fwd (python loop over N)", lambda: resolvent_diag_reference(a, b, Z),
                  warmup=1, rep=1)
    t_ref_fb = timed("reference fwd+bwd (adjoint sweeps)", ref_fwd_bwd, warmup=1, rep=1)

    result = {
        "name": "resolvent",
        "date": _dt.date.today().isoformat(),
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "sizes": {"batch": batch, "n": n, "dtype": "float32 -> complex64", "z": str(Z)},
        "copy_bandwidth_TBps": bw / 1e12,
        "copy_ms_1GiB": copy_ms,
        "bytes_floor": {"bytes": floor_bytes, "ms": floor_ms},
        "times_ms": times,
        "sweep_ms": sweep,
        "best_forward_config": best_cfg,
        "ratios": {
            "reference_fwd / triton_fwd": t_ref / t_fwd,
            "reference_fwd_bwd / triton_fwd_bwd": t_ref_fb / t_fb,
            "triton_fwd / bytes_floor": t_fwd / floor_ms,
            "best_triton_fwd / bytes_floor": sweep[best_cfg] / floor_ms,
            "triton_bwd / triton_fwd": t_bwd_only / t_fwd,
            "layout_copies / triton_fwd": t_layout / t_fwd,
        },
        "max_error": errors,
        "target": "forward <= 0.2 ms at 4096 x 2048",
    }
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    print(f"{'contender':42s} {'ms':>9s} {'ours/peer':>10s}")
    for k, v in times.items():
        print(f"{k:42s} {v:9.4f} {t_fwd / v:10.3f}")
    print(f"bytes floor {floor_ms:.4f} ms at {bw / 1e12:.2f} TB/s; best fwd config {best_cfg}")


if __name__ == "__main__":
    main()
