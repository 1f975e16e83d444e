"""Throughput of the batched axial Kohn-Sham HF+BCS (thesis ch. 3 data, ²⁴Mg, 10 x 20 x 0.8 fm) on a GPU.

Self-checking: first the batch on the device is compared with the one-at-a-time CPU solve of the same
fields (the reference: :func:`bkdsl.physics.hf_axial.axial_hf_bcs`), both converged to 1e-8; a difference
above 1e-4 MeV or 1e-5 fm^-3 (LAPACK and cuSOLVER round differently) stops the bench (exit 2) before anything is timed. Then, in one process:

* ``cpu_single``: fields solved one at a time on the CPU (the way the thesis solved them, "a few
  minutes per sample on one core");
* ``device_batch_B``: :func:`bkdsl.physics.hf_dataset.generate_hf_densities` end to end (draw, solve,
  cuts) for B = 32, 128, 512, ... fields per batch, until a part's time cap is spent;
* ``eigh_B``: ``triton.testing.do_bench`` of one batched ``torch.linalg.eigh`` on [B, 400, 400]
  (float64), the per-Omega step that dominates one iteration (5 blocks per iteration).

Writes JSON (GPU name, torch/triton versions, sizes, wall times, samples/s, ratios to the CPU rate,
max errors).

    python bench/hf_throughput.py --out $OUT/hf_throughput.json [--family sho] [--cap 60] [--device cuda]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bkdsl.diagnostics import BkError  # noqa: E402
from bkdsl.physics.grid import AxialGrid, GridSpec  # noqa: E402
from bkdsl.physics.hf_axial import THESIS_GRID, axial_hf_bcs, axial_hf_bcs_batch  # noqa: E402
from bkdsl.physics.hf_dataset import draw_fields, generate_hf_densities  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def check(dev: torch.device, family: str, n: int) -> dict:
    """Batch on ``dev`` against the one-at-a-time CPU solves of the same n fields."""
    grid = AxialGrid(GridSpec(*THESIS_GRID))
    v = draw_fields(family, grid, 12345, range(n), 24, {})
    t0 = time.perf_counter()
    tol = dict(tol_e=1e-8, tol_rho=1e-8)      # tighter than the data's 1e-6, so that the comparison means something
    ref = [axial_hf_bcs("Mg24", v_ext=v[i], device="cpu", **tol) for i in range(n)]
    t_ref = time.perf_counter() - t0
    _sync(dev)
    t0 = time.perf_counter()
    got = axial_hf_bcs_batch("Mg24", v_ext=v, device=dev, **tol)
    _sync(dev)
    t_got = time.perf_counter() - t0
    errs_e, errs_rho = [], []
    for a, b in zip(ref, got):
        if isinstance(b, BkError):
            return {"ok": False, "why": f"batch element failed: {b.code} {b.diagnostic.message}"}
        errs_e.append(abs(a.energy - b.energy))
        errs_rho.append(float((a.rho - b.rho.cpu()).abs().max()))
    ok = max(errs_e) < 1e-4 and max(errs_rho) < 1e-5
    return {"ok": ok, "fields": n, "max_abs_dE_MeV": max(errs_e), "max_abs_drho_fm3": max(errs_rho),
            "cpu_single_s": t_ref, "cpu_single_samples_per_s": n / t_ref, "device_batch_s": t_got}


def eigh_time(dev: torch.device, B: int) -> float | None:
    """Milliseconds of one torch.linalg.eigh on [B, 400, 400] float64 (do_bench; CUDA only)."""
    if dev.type != "cuda":
        return None
    try:
        import triton.testing as tt
    except ImportError:
        return None
    a = torch.randn(B, 400, 400, dtype=torch.float64, device=dev)
    a = a + a.transpose(-1, -2)
    return float(tt.do_bench(lambda: torch.linalg.eigh(a), warmup=1, rep=50))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/hf_throughput.json")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--family", default="sho", choices=("sho", "rnd"))
    ap.add_argument("--check", type=int, default=3, help="fields in the correctness check")
    ap.add_argument("--batches", default="32,128,512,1024")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds per batch size (it stops growing after)")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    out = {"bench": "hf_throughput", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "device": str(dev),
           "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
           "torch": torch.__version__, "triton": triton_version, "dtype": "float64",
           "setup": "24Mg, SLy4, no Coulomb, 10 x 20 x 0.8 fm, Omega <= 9/2, stencil 8, V0 = -683.344 MeV fm^3, "
                    "C = 0.625 MeV fm^-2, Broyden; family " + args.family, "runs": []}
    t0 = time.perf_counter()
    out["check"] = check(dev, args.family, args.check)
    print("check:", json.dumps(out["check"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if not out["check"].get("ok"):
        Path(args.out).write_text(json.dumps(out, indent=1))
        print("correctness check failed: nothing timed")
        return 2
    cpu_rate = out["check"]["cpu_single_samples_per_s"]
    for B in [int(x) for x in args.batches.split(",")]:
        _sync(dev)
        t1 = time.perf_counter()
        ds = generate_hf_densities("Mg24", potential=args.family, samples=B, batch=B, seed=1, device=dev, cuts=True)
        _sync(dev)
        wall = time.perf_counter() - t1
        row = {"batch": B, "samples": B, "wall_s": wall, "solve_s": ds.stats["solve_wall_s"],
               "samples_per_s": ds.stats["samples_per_s"], "vs_cpu_single": ds.stats["samples_per_s"] / cpu_rate,
               "converged": ds.stats["converged"], "kept": ds.stats["kept"],
               "mean_iterations": ds.stats["mean_iterations"], "eigh_ms": eigh_time(dev, B)}
        if dev.type == "cuda":
            row["max_memory_GiB"] = torch.cuda.max_memory_allocated(dev) / 2**30
        out["runs"].append(row)
        print(json.dumps(row), flush=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
        if wall > args.cap:
            break
    out["wall_s"] = time.perf_counter() - t0
    best = max(out["runs"], key=lambda r: r["samples_per_s"])
    out["summary"] = {"best_batch": best["batch"], "best_samples_per_s": best["samples_per_s"],
                      "cpu_single_samples_per_s": cpu_rate, "speedup": best["samples_per_s"] / cpu_rate}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("summary:", json.dumps(out["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
