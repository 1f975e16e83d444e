"""The ²³⁶U comparison of thesis ch. 4 on bkdsl's generated data: MTL for d_z = 1, 2, 3 at α = 1e-3 fm⁻³
beside the energy-only E[ρ] (ResNet18), the density autoencoder and the multipole baseline E(Q20, Q30).

1. generate the data once (``nuclear_densities`` of the specs, cached under $BKDSL_CACHE; every spec
   declares the same source arguments, so they share one cache entry) and time it;
2. train the runs, each ``bkdsl train`` of its spec with ``--set`` overrides (samples, a wall-clock
   ``time_limit`` per run, epochs as an upper bound), ``--jobs`` of them at once on the one GPU
   (the model at batch 128 does not fill an H200, so concurrent runs raise the total throughput);
3. collect each run's final.json (test metrics with the best-validation weights) into one table:
   ``<out>/u236_experiment.json`` and ``<out>/u236_experiment.md``, plus every run's plots, final.json and
   metrics.jsonl packed into ``<out>/u236_runs.tar.gz``.

    python bench/u236_experiment.py --samples 20000 --time 420 --jobs 6 --device cuda --out $OUT
    python bench/u236_experiment.py --samples 256 --time 60 --jobs 2 --device cpu --width 8 --out /tmp/x   # smoke
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RUNS = [  # name, spec, model call ({w}: width), what the thesis reports for it
    ("mtl_dz1", "specs/u236_mtl.bk", "mtl(d_z = 1, width = {w})", "fig. 4.7 (α = 1e-3): MAE_E ≈ 0.4 MeV"),
    ("mtl_dz2", "specs/u236_mtl.bk", "mtl(d_z = 2, width = {w})", "table 4.2: MAE_E 0.113 MeV, MAE_ρ 9.24"),
    ("mtl_dz3", "specs/u236_mtl.bk", "mtl(d_z = 3, width = {w})", "table 4.2: MAE_E 0.104 MeV, MAE_ρ 7.67"),
    ("energy", "specs/u236_energy.bk", "energy(width = {w})", "table 4.1: MAE_E 0.0638 MeV"),
    ("autoencoder_dz2", "specs/u236_autoencoder.bk", "autoencoder(d_z = 2, width = {w})", "fig. 4.5: MAE_ρ ≈ 9"),
    ("multipole", "specs/u236_multipole.bk", "multipole()", "fig. 4.6: MAE_E ≈ 2 MeV (random guess 5.0)"),
    ("autoencoder_dz1", "specs/u236_autoencoder.bk", "autoencoder(d_z = 1, width = {w})", "fig. 4.5"),
    ("autoencoder_dz3", "specs/u236_autoencoder.bk", "autoencoder(d_z = 3, width = {w})", "fig. 4.5"),
]


def generate(samples: int, device: str, extra: list[str]) -> dict:
    """Populate the dataset cache once (timed); returns sizes and the std of E."""
    import bkdsl
    from bkdsl.train.plan import data_plan

    ov = {"data.samples": str(samples), **dict(kv.split("=", 1) for kv in extra)}
    c = bkdsl.compile_file(str(ROOT / "specs/u236_mtl.bk"), overrides=ov)
    t = time.perf_counter()
    dp = data_plan(c.data_block("u236"), 0, str(ROOT / "specs"))
    wall = time.perf_counter() - t
    ds = dp.dataset
    E = ds.fields["E"].double().flatten()
    return {"samples": len(ds), "load_or_generate_s": round(wall, 2), "fields": {k: list(v.shape) for k, v in ds.fields.items()},
            "units": {k: i.unit for k, i in ds.info.items()}, "E_std_MeV": float(E.std()), "E_min": float(E.min()),
            "E_max": float(E.max()), "E_mean_abs_dev_MeV": float((E - E.mean()).abs().mean()),
            "E_random_guess_mae_MeV": _random_guess(E)}


def _random_guess(E) -> float:
    """The thesis' 'random guess' MAE: a prediction drawn uniformly from the energy range (exact: E|u − e|)."""
    import torch

    lo, hi = float(E.min()), float(E.max())
    u = torch.linspace(lo, hi, 2001, dtype=torch.float64)
    return float((u[None, :] - E[:, None]).abs().mean())


def launch(name: str, spec: str, model: str, args, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bkdsl.train.cli", str(ROOT / spec), "--out", str(out / name), "--device", args.device,
           "--precision", args.precision, "--quiet",
           "--set", f"train.model={model}", "--set", f"data.samples={args.samples}",
           "--set", f"train.epochs={args.epochs}", "--set", f"train.time_limit={args.time}"]
    if args.compile:
        cmd += ["--set", "train.compile=true"]
    for kv in args.set:
        cmd += ["--set", kv]
    log = open(out / f"{name}.log", "w")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--time", type=float, default=420.0, help="wall-clock limit per run (s), data loading included")
    ap.add_argument("--epochs", type=int, default=1000, help="upper bound; the time limit usually ends a run")
    ap.add_argument("--jobs", type=int, default=6, help="runs at once")
    ap.add_argument("--runs", default="mtl_dz1,mtl_dz2,mtl_dz3,energy,autoencoder_dz2,multipole")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="extra overrides for every run (key=value)")
    ap.add_argument("--gen-set", action="append", default=[], help="overrides for the data block (data.key=value)")
    ap.add_argument("--gen-batch", type=int, default=0, help="the generator's lock-step batch (0: its default)")
    ap.add_argument("--gen-budget", type=float, default=0.0, help="seconds the generation may take (0: no probe)")
    ap.add_argument("--out", default="runs/u236_experiment")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.set = list(args.set) + list(args.gen_set)
    res: dict = {"name": "u236_experiment", "date": dt.date.today().isoformat(), "argv": sys.argv[1:],
                 "samples": args.samples, "time_per_run_s": args.time, "jobs": args.jobs, "device": args.device,
                 "precision": args.precision, "compile": args.compile, "width": args.width}
    try:
        import torch

        res["device_name"] = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        res["torch"] = torch.__version__
    except Exception:
        pass
    t0 = time.perf_counter()
    if args.gen_budget:
        # probe the generator: a first small call pays the set-up (CUDA context, Coulomb kernel), a second
        # one gives the marginal rate at the batch the real generation uses; then size the real generation
        # to fit the budget (at most --samples; the JSON says when it is fewer)
        from bkdsl.physics.dataset import generate_nuclear_densities

        t = time.perf_counter()
        generate_nuclear_densities(samples=64, seed=12345, device=args.device, batch=64)
        t_setup = time.perf_counter() - t
        gb = args.gen_batch or 128
        t = time.perf_counter()
        probe = generate_nuclear_densities(samples=gb, seed=12346, device=args.device, batch=gb)
        rate = gb / (time.perf_counter() - t)
        fit = int(rate * args.gen_budget) // 500 * 500
        res["generator_probe"] = {"setup_call_s": t_setup, "samples": gb, "batch": gb, "kept": len(probe),
                                  "samples_per_s": rate, "stats": probe.stats}
        print(f"generator: set-up call {t_setup:.1f} s, then {rate:.1f} samples/s at batch {gb}", flush=True)
        if fit < args.samples:
            print(f"{args.samples} samples would not fit {args.gen_budget:.0f} s: generating {max(fit, 500)}", flush=True)
            res["samples_requested"] = args.samples
            args.samples = max(fit, 500)
            res["samples"] = args.samples
    if args.gen_batch:
        args.gen_set = list(args.gen_set) + [f"data.batch={args.gen_batch}"]
        args.set = list(args.set) + [f"data.batch={args.gen_batch}"]
    res["data"] = generate(args.samples, args.device, args.gen_set and [kv for kv in args.gen_set])
    print("data:", json.dumps(res["data"]), flush=True)
    (out / "u236_experiment.json").write_text(json.dumps(res, indent=2) + "\n")
    wanted = [r for r in RUNS if r[0] in args.runs.split(",")]
    queue, running, finished = list(wanted), [], {}
    while queue or running:
        while queue and len(running) < args.jobs:
            name, spec, model, ref = queue.pop(0)
            running.append((name, launch(name, spec, model.format(w=args.width), args, out)))
            print("started", name, flush=True)
        time.sleep(2)
        for item in list(running):
            if item[1].poll() is not None:
                running.remove(item)
                finished[item[0]] = item[1].returncode
                print("finished", item[0], "rc", item[1].returncode, round(time.perf_counter() - t0), "s", flush=True)
    table = {}
    for name, spec, model, ref in wanted:
        f = out / name / "final.json"
        if not f.exists():
            table[name] = {"rc": finished.get(name), "error": "no final.json (see the log)"}
            continue
        fin = json.loads(f.read_text())
        test = fin.get("test", {})
        table[name] = {"rc": finished.get(name), "spec": spec, "model": model.format(w=args.width), "thesis": ref,
                       "status": fin.get("status"), "epochs": fin.get("epochs"), "best": fin.get("best"),
                       "samples_per_s": fin.get("samples_per_s"), "wall_time_s": fin.get("wall_time_s"),
                       "MAE_E_MeV": test.get("test.mae_E"), "MAE_rho": test.get("test.l1_integral_rho"),
                       "M_E_MeV": test.get("test.parity_mae_E"), "M_rho": test.get("test.parity_l1_integral_rho"),
                       "test": test}
    res["runs"] = table
    res["total_wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "u236_experiment.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "u236_experiment.md").write_text(markdown(res))
    print(markdown(res))
    with tarfile.open(out / "u236_runs.tar.gz", "w:gz") as tar:
        tar.add(out / "u236_experiment.md", arcname="u236_experiment.md")
        for name, *_ in wanted:
            d = out / name
            for rel in ("final.json", "metrics.jsonl", "train.log"):
                if (d / rel).exists():
                    tar.add(d / rel, arcname=f"{name}/{rel}")
            if (d / "plots").exists():
                for p in sorted((d / "plots").glob("*.png")):
                    tar.add(p, arcname=f"{name}/plots/{p.name}")
            if (out / f"{name}.log").exists():
                tar.add(out / f"{name}.log", arcname=f"{name}/stdout.log")


def markdown(res: dict) -> str:
    def f(v, nd=4):
        return "–" if v is None else f"{v:.{nd}g}"

    d = res.get("data", {})
    lines = [f"{res.get('samples')} samples ({d.get('samples')} after the generator's filters), split 90/5/5; "
             f"σ(E) = {f(d.get('E_std_MeV'))} MeV, random-guess MAE_E = {f(d.get('E_random_guess_mae_MeV'))} MeV; "
             f"{res.get('precision')}, {res.get('time_per_run_s')} s per run, {res.get('jobs')} runs at once on "
             f"{res.get('device_name', res.get('device'))}.", "",
             "| run | model | epochs | MAE_E / MeV | MAE_ρ | M_E / MeV | M_ρ | samples/s | thesis |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in res.get("runs", {}).items():
        if "error" in r:
            lines.append(f"| {name} | – | – | – | – | – | – | – | {r['error']} |")
            continue
        lines.append(f"| {name} | `{r['model']}` | {r['epochs']} | {f(r['MAE_E_MeV'])} | {f(r['MAE_rho'])} | "
                     f"{f(r['M_E_MeV'])} | {f(r['M_rho'])} | {f(r['samples_per_s'], 5)} | {r['thesis']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
