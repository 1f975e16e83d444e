"""Generation rate of the default 236U random-potential data set (bkdsl.physics).

    python bench/physics_gen.py [--samples 1000] [--batch 128] [--device cpu|cuda] [--threads N]
                                [--save PATH] [--compile auto|on|off]

Writes bench/results/<YYYY-MM-DD>-physics_gen-<device>.json with the device name, torch version,
sizes, wall time, samples/s (generated potentials per second of solving) and the drop counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bkdsl.physics.dataset import generate_nuclear_densities  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="also torch.save the data set here")
    ap.add_argument("--out", default=None)
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="torch.compile the energy (auto: on CUDA)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = f"{platform.processor() or platform.machine()} cpu x{torch.get_num_threads()} threads"

    def progress(p):
        print(f"  {p['done']}/{p['samples']} solved, {p['wall_s']:.1f} s", flush=True)

    ds = generate_nuclear_densities(samples=a.samples, batch=a.batch, device=dev, seed=a.seed,
                                    progress=progress, chunk=max(a.batch * 4, 512),
                                    compile={"auto": "auto", "on": True, "off": False}[a.compile])
    st = ds.stats
    res = {
        "benchmark": "physics_gen", "date": dt.date.today().isoformat(), "device": str(dev),
        "device_name": name, "torch": torch.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "config": ds.config, "stats": st,
        "samples_generated": st["generated"], "samples_kept": st["kept"],
        "wall_s": st["wall_s"], "solve_wall_s": st["solve_wall_s"],
        "samples_per_s": st["samples_per_s"], "kept_per_s": st["kept_per_s"],
    }
    out = Path(a.out) if a.out else (Path(__file__).parent / "results" /
                                     f"{res['date']}-physics_gen-{dev.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps({k: res[k] for k in ("device_name", "samples_generated", "samples_kept", "wall_s",
                                         "samples_per_s", "kept_per_s")}, indent=2))
    print(json.dumps(st, indent=2, default=str))
    if a.save:
        torch.save({"fields": ds.fields, "units": ds.units, "stats": ds.stats, "config": ds.config}, a.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
