"""Angular-spectrum propagation: correctness against the Gaussian-beam closed form and against PADO,
then time per propagation at 1024² and 4096² (issue #17 item 4).

Checks first, fail closed: bkdsl's band-limited ASM must match the paraxial Gaussian beam over three
Rayleigh lengths to ≤ 1e-6 (complex128) and ≤ 1e-3 (complex64) relative L2 error, and every timed
contender is compared with it on the same field at every timed size (a NaN or a missing result is an
error, never a pass). PADO (``pado-optics`` on PyPI, ``pado.propagator.Propagator("ASM")``) is used
when importable; when it is not, the JSON says why.

Contenders (complex64 fields [1, N, N], ×2 zero padding, z = z_R of a Gaussian of waist 6 pitches):

* ``bkdsl_asm``       — :class:`bkdsl.nn.optics.TransferPropagator`: H precomputed (complex128 phase,
                        cast once), per call pad → fft2 → ·H → ifft2 → crop;
* ``bkdsl_asm_fresh`` — :func:`bkdsl.nn.optics.angular_spectrum`: H rebuilt in float64 every call;
* ``pado_bl_asm``     — PADO's band-limited ASM (it rebuilds H every call, phase in float32);
* ``pado_asm``        — PADO's plain ASM (no band limit).

On CUDA every contender is timed by ``triton.testing.do_bench`` in this process; on the CPU by the
median of ``--reps`` wall-clock runs (do_bench needs CUDA events).

    python bench/optics_asm.py --device cpu --sizes 1024 4096 --out bench/results/optics_asm_cpu.json
    python bench/optics_asm.py --device cuda --sizes 1024 4096 --out $OUT/optics_asm_h200.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

try:  # the staged package of bench/gpu_optics.sh, or an installed bkdsl
    from bkdsl.nn import optics as O
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bkdsl.nn import optics as O

LAM, PITCH = 0.5e-6, 50e-6
W0_PX = 6
TOL = {"complex128": 1e-6, "complex64": 1e-3}


def _pado():
    """(Propagator, Light) from PADO, or the reason it cannot be used."""
    try:
        from pado.light import Light
        from pado.propagator import Propagator
        import importlib.metadata as md

        return (Propagator, Light, md.version("pado-optics")), None
    except Exception as e:  # the reason goes to the JSON
        return None, f"{type(e).__name__}: {e}"


def rel(u, ref) -> float:
    u = u.reshape(ref.shape).to(torch.complex128)
    r = float((u - ref.to(u.device)).norm() / ref.to(u.device).norm())
    return r


def rel_phase_free(u, ref) -> float:
    """The relative error after removing the best global phase e^{iθ} (θ = arg⟨ref, u⟩): separates a
    constant phase error (the carrier kz rounded in float32) from a wrong beam shape."""
    u = u.reshape(ref.shape).to(torch.complex128).cpu()
    ip = (ref.conj() * u).sum()
    return rel(u * torch.exp(-1j * torch.angle(ip)), ref)


def gaussian_case(n: int, zr_mult: float, device: str, dtype=torch.complex128):
    w0 = W0_PX * PITCH
    zr = math.pi * w0 ** 2 / LAM
    z = zr_mult * zr
    u0 = O.gaussian_beam(n, PITCH, LAM, w0, 0.0, dtype).to(device)
    ref = O.gaussian_beam(n, PITCH, LAM, w0, z, torch.complex128)
    return u0, ref, z


def pado_call(pado, u, z, band_limit: bool):
    Propagator, Light, _ = pado
    n = u.shape[-1]
    light = Light((1, 1, n, n), pitch=PITCH, wvl=LAM, field=u.reshape(1, 1, n, n), device=str(u.device))
    prop = Propagator("ASM")
    return lambda: prop.forward(light, z, linear=True, band_limit=band_limit).field


def check_closed_form(device: str, pado) -> dict:
    """bkdsl ASM (and PADO) against the Gaussian beam at 256², z = 0.5 … 3 z_R."""
    out = {"n": 256, "cases": []}
    for zr_mult in (0.5, 1.0, 2.0, 3.0):
        for dt in (torch.complex128, torch.complex64):
            u0, ref, z = gaussian_case(256, zr_mult, device, dt)
            row = {"z_over_zR": zr_mult, "dtype": str(dt).split(".")[-1]}
            row["bkdsl_asm"] = rel(O.angular_spectrum(u0, PITCH, LAM, z).cpu(), ref)
            if pado is not None:
                for name, bl in (("pado_bl_asm", True), ("pado_asm", False)):
                    try:
                        y = pado_call(pado, u0, z, bl)().cpu()
                        row[name] = rel(y, ref)
                        row[name + "_up_to_global_phase"] = rel_phase_free(y, ref)
                    except Exception as e:  # recorded, and PADO is not timed
                        row[name] = f"{type(e).__name__}: {e}"
            out["cases"].append(row)
    bad = [c for c in out["cases"] if not c["bkdsl_asm"] <= TOL[c["dtype"]]]  # NaN fails
    out["ok"] = not bad
    if bad:
        out["failed"] = bad
    return out


def check_near_field(device: str, pado) -> dict:
    """bkdsl against PADO where float32 can hold the phase: 256² at 2 µm pitch, z = 1 mm
    (kz = 1.3e4 rad, a float32 ulp there is ~1e-3 rad), a Gaussian of waist 12 µm. ASM against ASM: the
    paraxial closed form does not apply at w0 = 24 λ, the two implementations are compared directly."""
    n, dx, z, w0 = 256, 2e-6, 1e-3, 12e-6
    u0 = O.gaussian_beam(n, dx, LAM, w0, 0.0, torch.complex64).to(device)
    ours = O.angular_spectrum(u0.to(torch.complex128), dx, LAM, z).cpu()
    out = {"n": n, "pitch_m": dx, "z_m": z, "w0_m": w0}
    if pado is None:
        return out
    Propagator, Light, _ = pado
    for name, bl in (("pado_bl_asm", True), ("pado_asm", False)):
        try:
            light = Light((1, 1, n, n), pitch=dx, wvl=LAM, field=u0.reshape(1, 1, n, n), device=str(u0.device))
            y = Propagator("ASM").forward(light, z, linear=True, band_limit=bl).field.cpu()
            out[name + "_rel_diff_vs_bkdsl"] = rel(y, ours)
        except Exception as e:
            out[name + "_rel_diff_vs_bkdsl"] = f"{type(e).__name__}: {e}"
    return out


def time_cpu(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def time_cuda(fn) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=200))


def bench_size(n: int, device: str, pado, reps: int) -> dict:
    u0, ref, z = gaussian_case(n, 1.0, device, torch.complex64)
    rep = O.SamplingReport(LAM, z, PITCH, n * PITCH, n)
    mod = O.TransferPropagator(O.asm_transfer(n, PITCH, LAM, z)).to(device)
    contenders = {
        "bkdsl_asm": lambda: mod(u0),
        "bkdsl_asm_fresh": lambda: O.angular_spectrum(u0, PITCH, LAM, z),
    }
    if pado is not None:
        contenders["pado_bl_asm"] = pado_call(pado, u0, z, True)
        contenders["pado_asm"] = pado_call(pado, u0, z, False)
    row = {"n": n, "z_m": z, "sampling_ok": rep.sampling_ok, "band_ok": rep.band_ok, "dtype": "complex64",
           "contenders": {}}
    with torch.no_grad():
        base = mod(u0)
        for name, fn in contenders.items():
            c: dict = {}
            try:
                y = fn()
                c["rel_err_vs_closed_form"] = rel(y.cpu(), ref)
                c["rel_err_up_to_global_phase"] = rel_phase_free(y, ref)
                c["rel_diff_vs_bkdsl"] = rel(y.reshape(base.shape), base.to(torch.complex128))
                if device == "cuda":
                    torch.cuda.synchronize()
                    c["ms"] = time_cuda(fn)
                else:
                    c["ms"] = time_cpu(fn, reps)
            except Exception as e:  # recorded; the run goes on to the other contenders
                c["error"] = f"{type(e).__name__}: {e}"
            row["contenders"][name] = c
            if device == "cuda":
                torch.cuda.empty_cache()
    b = row["contenders"]["bkdsl_asm"]
    row["ok"] = "ms" in b and b["rel_err_vs_closed_form"] <= TOL["complex64"]
    for name, c in row["contenders"].items():
        if "ms" in c and "ms" in b:
            c["ratio_to_bkdsl"] = c["ms"] / b["ms"]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--reps", type=int, default=5, help="CPU timing repetitions (median)")
    ap.add_argument("--out", default=None, help="JSON path (default: bench/results/<date>-optics_asm-<device>.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    pado, why = _pado()
    result = {
        "bench": "optics_asm", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": args.device, "device_name": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "triton": _version("triton"), "pado": pado[2] if pado else None, "pado_unavailable": why,
        "wavelength_m": LAM, "pitch_m": PITCH, "w0_px": W0_PX, "tolerances": TOL,
    }
    result["closed_form"] = check_closed_form(args.device, pado)
    print(f"closed form (256², z = 0.5…3 z_R): {'ok' if result['closed_form']['ok'] else 'FAILED'}")
    for c in result["closed_form"]["cases"]:
        print("  ", {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in c.items()})
    result["near_field_vs_pado"] = check_near_field(args.device, pado)
    print("near field (z = 1 mm) bkdsl vs PADO:", result["near_field_vs_pado"])
    result["sizes"] = []
    if result["closed_form"]["ok"]:
        for n in args.sizes:
            row = bench_size(n, args.device, pado, args.reps)
            result["sizes"].append(row)
            print(f"N = {n}: " + ", ".join(f"{k} {v.get('ms', float('nan')):.2f} ms (err {v.get('rel_err_vs_closed_form', float('nan')):.1e})"
                                            for k, v in row["contenders"].items()))
    result["ok"] = result["closed_form"]["ok"] and all(r["ok"] for r in result["sizes"]) and bool(result["sizes"])
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / \
        f"{datetime.date.today().isoformat()}-optics_asm-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}; ok = {result['ok']}")
    return 0 if result["ok"] else 1


def _version(mod: str):
    try:
        return __import__(mod).__version__
    except Exception:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
