"""AdS/CFT network, library fit: recover the bulk metric h(η) under the validation rule, 3 seeds.

For each metric and seed: 2000 boundary samples (φ, π) ∈ [0, 1.5] × [−0.2, 0.2] at η = 1, labels = the
horizon residual F at η = 0.1 from a 2000-step RK4 solve in the true metric with 1 % noise on asinh F;
20 % held out. For every (layers, c_reg) of the fixed grid (bkdsl/nn/ads_fit.py: layers ∈ {20, 40},
c_reg ∈ {1e-4, 1e-3, 1e-2, 1e-1}) an RK4 network on the geometric layer grid, h ≡ 1 at the start,
full-batch L-BFGS (40 outer steps); the one-standard-error rule on the validation loss picks one. Reports,
for the chosen fit and for every candidate: relative RMS error of h over the layer midpoints, the
validation loss and its standard error, and the loss of the *true* metric on the same validation data
(the floor: noise² = 1e-4 plus discretisation). Also the spec's fixed default (20 layers, c = 1e-2),
which is one of the candidates.

    python bench/structure_ads.py                     # 3 metrics × 3 seeds × 8 fits (≈ 10 min, one core)
    python bench/structure_ads.py --metrics horizon_series deformed_bh --name structure_ads_extra
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from structure_common import write  # noqa: E402

from bkdsl.nn.ads import metric  # noqa: E402
from bkdsl.nn.ads_fit import C_GRID, LAYER_GRID, select_and_fit  # noqa: E402

CASES = {
    "ads_d3": ("ads_schwarzschild", {"d": 3}),
    "ads_d4": ("ads_schwarzschild", {"d": 4}),
    "rn_ads_d3_q1.5": ("reissner_nordstrom_ads", {"d": 3, "q": 1.5}),
    "horizon_series": ("horizon_series", {"coeffs": [0.0, 2.0, -0.5]}),
    "deformed_bh": ("deformed_bh", {"d": 3, "a": -2.0, "center": 0.5, "width": 0.12}),
}
DEFAULT = (20, 1e-2)  # specs/ads_bulk.bk
NOISE = 0.01


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", nargs="+", default=["ads_d3", "ads_d4", "rn_ads_d3_q1.5"], choices=list(CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--name", default="structure_ads", help="result file bench/results/DATE-NAME.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows, summary = [], {}
    for key in a.metrics:
        name, kw = CASES[key]
        for seed in a.seeds:
            t = time.perf_counter()
            s = select_and_fit(metric(name, **kw), samples=2000, seed=seed, noise=NOISE, epochs=a.epochs)
            c = s.chosen
            default = next(r for r in s.candidates if (r["layers"], r["c_reg"]) == DEFAULT)
            rows.append({"case": key, "metric": name, "params": kw, "seed": seed,
                         "chosen": {"layers": c.layers, "c_reg": c.c_reg, "rel_rms": c.rel_rms,
                                    "val_loss": c.val_loss, "val_se": c.val_se, "floor_val": c.floor_val,
                                    "floor_train": c.floor_train, "train_loss": c.final_loss,
                                    "eta": c.eta, "h_learned": c.h_learned, "h_true": c.h_true},
                         "default": default, "candidates": s.candidates,
                         "seconds": time.perf_counter() - t})
            print(f"{key:16s} seed {seed}: chosen layers {c.layers} c {c.c_reg:g}: rel RMS {c.rel_rms:.4f}, "
                  f"val {c.val_loss:.3e} ± {c.val_se:.1e}, true-metric val {c.floor_val:.3e} | default "
                  f"rel RMS {default['rel_rms']:.4f} ({rows[-1]['seconds']:.0f} s)", flush=True)
        mine = [r for r in rows if r["case"] == key]
        summary[key] = {"rule_rel_rms": [r["chosen"]["rel_rms"] for r in mine],
                        "rule_max": max(r["chosen"]["rel_rms"] for r in mine),
                        "rule_mean": statistics.fmean(r["chosen"]["rel_rms"] for r in mine),
                        "default_rel_rms": [r["default"]["rel_rms"] for r in mine],
                        "default_max": max(r["default"]["rel_rms"] for r in mine),
                        "chosen": [(r["chosen"]["layers"], r["chosen"]["c_reg"]) for r in mine],
                        "floor_val": [r["chosen"]["floor_val"] for r in mine],
                        "val_loss": [r["chosen"]["val_loss"] for r in mine]}
    for key, v in summary.items():
        print(f"{key:16s} rule: max {v['rule_max']:.4f} mean {v['rule_mean']:.4f} {v['chosen']}  "
              f"default (20, 1e-2): max {v['default_max']:.4f}")
    write(a.name, {"setup": {"samples": 2000, "val_frac": 0.2, "noise_asinh": NOISE, "layer": "rk4",
                                      "grid": "log", "optimizer": "lbfgs", "epochs": a.epochs, "init": 1.0,
                                      "m2": -1.0, "lam": 1.0, "eta_range": [0.1, 1.0], "label": "response",
                                      "layer_grid": list(LAYER_GRID), "c_grid": list(C_GRID),
                                      "rule": "one-standard-error: simplest (fewest layers, largest c) within "
                                              "one SE of the smallest validation loss", "default": DEFAULT},
                            "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
