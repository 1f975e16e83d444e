"""AdS/CFT network through the runner: `bkdsl train specs/ads_bulk.bk` (its defaults) on three metrics × 3 seeds.

Each run is the spec's train block `ads` (20 layers on the geometric grid, L-BFGS, c = 1e-2, 40 steps,
float32 runner, 1600/200/200 split) with `data.metric` and the seeds (`data.seed`, `train.ads.seed`)
set; nothing else changes. Beside each run's `test.rel_l2_h` (relative RMS of h over the layer
midpoints) it records the loss of the true metric on the same 2000 samples (the data source's floor:
1 % noise gives 1e-4) and the run's test loss term.

    python bench/ads_train.py                        # 9 runs, 5–10 s each (L-BFGS stops early)
    python bench/ads_train.py --cases horizon_series deformed_bh --name ads_train_extra
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from structure_common import write  # noqa: E402

from bkdsl.api import compile_file  # noqa: E402
from bkdsl.train.loop import run  # noqa: E402
from bkdsl.train.plan import plan_from_compiled  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "ads_bulk.bk"
CASES = {"ads_d3": "ads_schwarzschild(d = 3)", "ads_d4": "ads_schwarzschild(d = 4)",
         "rn_ads_d3_q1.5": "reissner_nordstrom_ads(d = 3, q = 1.5)",
         "horizon_series": "horizon_series(coeffs = [0.0, 2.0, -0.5])",
         "deformed_bh": "deformed_bh(d = 3, a = -2.0, center = 0.5, width = 0.12)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["ads_d3", "ads_d4", "rn_ads_d3_q1.5"], choices=list(CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--name", default="ads_train", help="result file bench/results/DATE-NAME.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for key in a.cases:
        for seed in a.seeds:
            over = {"data.metric": CASES[key], "data.seed": str(seed), "train.ads.seed": str(seed)}
            t = time.perf_counter()
            c = compile_file(SPEC, over)
            plan = plan_from_compiled(c, "ads", overrides=over)
            floor = plan.data.dataset.meta["true_metric_loss"]
            with tempfile.TemporaryDirectory() as d:
                final = run(plan, d, quiet=True)
            test = final["test"]
            loss_key = next(k for k in test if k.startswith("test.asinh_mse"))
            rows.append({"case": key, "metric": CASES[key], "seed": seed, "status": final["status"],
                         "rel_l2_h": test.get("test.rel_l2_h"), "mae_h": test.get("test.mae_h"),
                         "test_asinh_mse": test[loss_key], "true_metric_loss": floor,
                         "epochs": final["epochs"], "seconds": time.perf_counter() - t, "test": test})
            print(f"{key:16s} seed {seed}: rel_l2_h {rows[-1]['rel_l2_h']:.4f}  test asinh_mse "
                  f"{rows[-1]['test_asinh_mse']:.3e}  true metric {floor:.3e}  ({rows[-1]['seconds']:.0f} s)",
                  flush=True)
    summary = {}
    for key in a.cases:
        v = [r["rel_l2_h"] for r in rows if r["case"] == key]
        summary[key] = {"rel_l2_h": v, "max": max(v), "mean": statistics.fmean(v)}
        print(f"{key:16s} rel_l2_h max {max(v):.4f} mean {statistics.fmean(v):.4f}")
    write(a.name, {"setup": {"spec": "specs/ads_bulk.bk", "train": "ads", "overrides": "data.metric, "
                                  "data.seed, train.ads.seed", "true_metric_loss": "asinh squared error of the "
                                  "20-layer network with the true h on all 2000 samples"},
                        "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
