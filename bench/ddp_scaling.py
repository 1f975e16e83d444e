"""Data-parallel scaling: the same spec on 1, 2, 4 … processes (torchrun, DDP), steady state only.

For each process count k the script runs ``bkdsl train`` (k = 1) or ``torchrun --standalone
--nproc-per-node k -m bkdsl train`` with the **same per-process batch** (the runner's ``batch`` is the
global batch, so it is set to k × per_gpu_batch), then reads the run's ``final.json``:

* ``samples_per_s`` — the trainer's steady-state rate: it leaves out each process's first step at every
  batch size (Triton JIT, autotuning, cuDNN search), whose time it reports alone as ``warmup_s``;
* ``tokens_per_s = samples_per_s × seq_len`` for sequence data (``--seq-len``);
* scaling efficiency ``η_k = rate_k / (k · rate_1)``;
* time to the same validation loss: the loss every run reached (the largest of the runs' best
  ``val.loss``) and, per run, the ``elapsed_s`` of the first epoch record at or below it. The runner
  evaluates at epoch ends only, so this time is as coarse as an epoch.

The 2026-11-22 figure (79 → 190 samples/s, "2.40×") averaged the JIT warm-up into a 150-step run and had
one cold and one warm cache; it overstated scaling and is withdrawn. This script is the replacement; it
needs a machine with k GPUs (``bench/gpu_ddp.sh``). On the CPU (``--device cpu``, gloo) it checks the
plumbing, not the speed.

    python bench/ddp_scaling.py --spec specs/u236_mtl.bk --gpus 1,2,4 --steps 300 --per-gpu-batch 128 \
        --out bench/results/YYYY-MM-DD-ddp_scaling-u236.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def train_command(k: int, spec: str, sets: list[str], rundir: Path, device: str) -> list[str]:
    """The command line of one run on ``k`` processes."""
    if k == 1:
        head = [sys.executable, "-m", "bkdsl", "train"]
    else:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={k}",
                "-m", "bkdsl", "train"]
    cmd = head + [spec, "--device", device, "--quiet", "--out", str(rundir)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def read_run(rundir: Path) -> dict:
    """final.json plus the epoch records (elapsed_s, val.loss) of metrics.jsonl."""
    final = json.loads((rundir / "final.json").read_text(encoding="utf-8"))
    epochs = []
    mfile = rundir / "metrics.jsonl"
    if mfile.exists():
        for line in mfile.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r.get("event") == "epoch" and r.get("val.loss") is not None:
                epochs.append({"elapsed_s": r.get("elapsed_s"), "val.loss": r["val.loss"],
                               "global_step": r.get("global_step")})
    return {"final": final, "epochs": epochs}


def efficiency(rates: dict[int, float]) -> dict[int, float]:
    """η_k = rate_k / (k · rate_1); an empty dict when the one-process rate is missing or zero."""
    r1 = rates.get(1)
    if not r1:
        return {}
    return {k: r / (k * r1) for k, r in rates.items()}


def time_to_loss(epochs: list[dict], target: float) -> float | None:
    """Wall time of the first epoch record whose val.loss ≤ target (None when never reached)."""
    for e in epochs:
        if e["val.loss"] <= target:
            return e["elapsed_s"]
    return None


def summarise(runs: dict[int, dict], seq_len: int | None) -> dict:
    rates = {k: r["final"]["samples_per_s"] for k, r in runs.items()}
    eff = efficiency(rates)
    bests = [min(e["val.loss"] for e in r["epochs"]) for r in runs.values() if r["epochs"]]
    target = max(bests) if bests else None
    rows = {}
    for k, r in sorted(runs.items()):
        f = r["final"]
        rows[str(k)] = {
            "world_size": f.get("world_size"), "status": f.get("status"), "global_step": f.get("global_step"),
            "samples_per_s": f["samples_per_s"],
            "tokens_per_s": None if seq_len is None else round(f["samples_per_s"] * seq_len, 1),
            "warmup_s": f.get("warmup_s"), "first_step_s": f.get("first_step_s"), "wall_time_s": f.get("wall_time_s"),
            "efficiency": None if k not in eff else round(eff[k], 4),
            "time_to_val_loss_s": None if target is None else time_to_loss(r["epochs"], target),
            "device_name": f.get("device_name"),
        }
    return {"runs": rows, "val_loss_target": target}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--gpus", default="1,2", help="process counts, e.g. 1,2,4")
    ap.add_argument("--per-gpu-batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=None,
                    help="optimizer steps per run (≥ 200 for a steady state); default: the spec's own length")
    ap.add_argument("--seq-len", type=int, default=None, help="tokens per sample, for tokens/s")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="extra --set for every run")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument("--keep", default=None, help="keep the run directories under this folder")
    a = ap.parse_args(argv)
    counts = sorted({int(x) for x in a.gpus.split(",") if x.strip()})
    if a.device == "cuda":
        import torch

        have = torch.cuda.device_count()
        if max(counts) > have:
            print(f"ddp_scaling: {max(counts)} processes asked for, {have} GPUs visible", file=sys.stderr)
            return 2
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="ddp_scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NCCL_NVLS_ENABLE="0")  # NVLink multicast off (device notes)
    runs: dict[int, dict] = {}
    logs: dict[str, str] = {}
    try:
        for k in counts:
            rundir = work / f"k{k}"
            sets = [f"train.batch={a.per_gpu_batch * k}"] + ([f"train.steps={a.steps}"] if a.steps else []) + a.sets
            cmd = train_command(k, a.spec, sets, rundir, a.device)
            print("$", " ".join(cmd), flush=True)
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            logs[str(k)] = (p.stdout + p.stderr)[-4000:]
            if p.returncode != 0:
                print(logs[str(k)], file=sys.stderr)
                print(f"ddp_scaling: the {k}-process run failed (exit {p.returncode})", file=sys.stderr)
                return 1
            runs[k] = read_run(rundir)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    res = {"date": dt.date.today().isoformat(), "spec": a.spec, "device": a.device,
           "per_gpu_batch": a.per_gpu_batch, "steps": a.steps, "seq_len": a.seq_len, "sets": a.sets,
           **summarise(runs, a.seq_len),
           "versions": next(iter(runs.values()))["final"].get("versions") if runs else None}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(json.dumps(res["runs"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
