"""docs/figures/run_*.png: the figures `bkdsl train` draws, from short real CPU runs.

    python docs/figures/make_run_figures.py [--samples 48] [--out docs/figures] [--skip-u236] [--skip-tiny]

1. specs/tiny_regression.bk, 30 epochs with ``eval_every = 6`` and ``log_every = 3``: ``run_tiny_loss.png``
   and ``run_tiny_val_mae_rho.png`` — the raw validation values faint under the smoothed line, against the
   optimizer step, the metric in fm^-3.
2. specs/u236_autoencoder.bk on ``--samples`` freshly generated ²³⁶U densities (the Skyrme-ETF generator,
   cached under .bkdsl-cache/), a narrow network (width 8, d_z = 3 and d_z = 2) for a few epochs:
   ``run_u236_latent_dz3.png``, ``run_u236_latent_dz2.png`` and ``run_u236_decode_line.png`` — readable
   latent ticks, colour bars in MeV / b / b^1.5, decoded densities with r and z in fm, clipped at 0 with
   the share of negative model output stated in the title.

These are figures of barely trained models (a CPU minute): they show how the plots look, not what the
thesis' models learn (see docs/u236.md for the H200 runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def train(spec: str, out: Path, *sets: str) -> Path:
    cmd = [sys.executable, "-m", "bkdsl.train.cli", str(ROOT / "specs" / spec), "--out", str(out), "--device", "cpu",
           "--quiet"]  # --quiet: no progress bar; the data generator's progress lines still go to train.log
    for s in sets:
        cmd += ["--set", s]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2")))
    print(f"trained {spec} in {time.perf_counter() - t:.0f} s → {out}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48, help="236U densities to generate (before the filters)")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=str(Path(__file__).parent))
    ap.add_argument("--work", default=str(ROOT / "runs" / "figures"))
    ap.add_argument("--skip-u236", action="store_true")
    ap.add_argument("--skip-tiny", action="store_true")
    a = ap.parse_args()
    out, work = Path(a.out), Path(a.work)
    if work.exists():
        shutil.rmtree(work)
    copies = []
    if not a.skip_tiny:
        tiny = train("tiny_regression.bk", work / "tiny", "train.epochs=30", "train.eval_every=6", "train.log_every=3")
        copies += [(tiny / "plots" / "loss.png", "run_tiny_loss.png"),
                   (tiny / "plots" / "val_mae_rho.png", "run_tiny_val_mae_rho.png")]
    if not a.skip_u236:
        # flatten = false keeps every converged density (the thesis' histogram flattening would keep ~1 in 6
        # of a small draw); split 0.5/0.25/0.25 gives the latent plot (val + test) enough points
        common = [f"data.samples={a.samples}", "data.flatten=false", "data.split=[0.5, 0.25, 0.25]",
                  f"train.epochs={a.epochs}",
                  "train.batch=16", "train.channels_last=false", "train.resident=false", "train.eval_every=4",
                  "train.optimizer=adam(lr = 3e-3)",
                  # every split in the latent plot: a small draw leaves few validation/test points
                  "train.plots=[curve(val.l1_integral_rho), latent(z, color = [E, Q20, Q30], "
                  "splits = [train, val, test]), decode_line(z, rho, n = 12)]"]
        for dz in (2, 3):
            r = train("u236_autoencoder.bk", work / f"u236_dz{dz}", *common,
                      f"train.model=autoencoder(d_z = {dz}, width = 8)")
            copies.append((r / "plots" / "latent.png", f"run_u236_latent_dz{dz}.png"))
            if dz == 2:
                copies.append((r / "plots" / "decode_line.png", "run_u236_decode_line.png"))
                copies.append((r / "plots" / "val_l1_integral_rho.png", "run_u236_val_l1_integral_rho.png"))
    for src, name in copies:
        shutil.copy(src, out / name)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
