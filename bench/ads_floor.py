"""AdS/CFT network: the data's own discretisation floor — the loss of the network with the *true* metric.

For each metric: 2000 noise-free boundary samples (2000-step RK4 in the true metric, h exact at every
stage); a network of N layers whose weights are the true h at its layer midpoints; the asinh squared
error of its horizon residual against the data, on the paper's equal-width grid and on the geometric
grid (bkdsl/nn/ads.py). A fit whose loss is below this floor has absorbed discretisation bias into h;
with 1 % noise (the specs' default) the noise floor is 1e-4.

    python bench/ads_floor.py            # ≈ 1 min on one core
"""

from __future__ import annotations

import sys

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from structure_common import write  # noqa: E402

from bkdsl.nn.ads import metric, true_metric_loss  # noqa: E402
from bkdsl.nn.ads_data import generate_response  # noqa: E402

CASES = {"ads_d3": ("ads_schwarzschild", {"d": 3}), "ads_d4": ("ads_schwarzschild", {"d": 4}),
         "rn_ads_d3_q1.5": ("reissner_nordstrom_ads", {"d": 3, "q": 1.5}),
         "horizon_series": ("horizon_series", {"coeffs": [0.0, 2.0, -0.5]}),
         "deformed_bh": ("deformed_bh", {"d": 3, "a": -2.0, "center": 0.5, "width": 0.12})}
LAYERS = (10, 20, 40, 80)


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for key, (name, kw) in CASES.items():
        h = metric(name, **kw)
        d = generate_response(h, 2000, seed=0)
        for grid in ("uniform", "log"):
            for n in LAYERS:
                for sub in (1, 4):
                    f = true_metric_loss(h, d["x"], d["y"], n, grid=grid, substeps=sub)
                    rows.append({"case": key, "grid": grid, "layers": n, "substeps": sub, "floor": f})
        line = "  ".join(f"{g[0]}{n}:{next(r['floor'] for r in rows if r['case'] == key and r['grid'] == g and r['layers'] == n and r['substeps'] == 1):.1e}"
                         for g in ("uniform", "log") for n in LAYERS)
        print(f"{key:16s} {line}", flush=True)
    write("ads_floor", {"setup": {"samples": 2000, "data_solver": "RK4, 2000 steps, h exact at each stage",
                                  "noise": 0.0, "loss": "mean (asinh F_net − asinh F_data)^2",
                                  "weights": "true h at the layer midpoints"}, "rows": rows})


if __name__ == "__main__":
    main()
