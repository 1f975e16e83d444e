"""Time-reversed training (source 000 §4): data efficiency on a learned pendulum, CPU.

What is measured. specs/time_reversal.bk learns the pendulum's 0.6-time-unit map with a plain
residual network x′ = x + g_θ(x) under three losses / data pipelines, all taken from the spec:

* ``fit``        — mse(x_next);
* ``consistent`` — mse(x_next) + λ·mse(R f(R f(x)), x), the bidirectional consistency loss;
* ``augmented``  — mse(x_next) on pairs time-reversed with p = 0.5 ((x, x′) → (R x′, R x)).

Each is trained at the full data (2048 pairs, 80 % for training) and at 1/4 of it (512 pairs), for
three seeds, and at 1/16 (128 pairs: 1/4 of the 1/4), with the same number of optimizer steps (Adam 3e-3, cosine to 1 %, batch 64) so that only
the amount of data differs. The model, the loss program (the spec's own loss expression, evaluated by
bkdsl's interpreter) and the augmentation come from ``plan_from_compiled``; the loop here is a lean
copy of the runner's step (no checkpoints, no per-epoch evaluation) because the machine is shared.

Error = on 4096 fresh pairs from other initial states (seed 99): the one-step RMSE of x′, and the
RMSE after a 20-step rollout (12 time units) against the true flow. Also the consistency residual
RMS(R f R f(x) − x) on those states: how time-reversible the learned map is.

    python bench/time_reversal.py                 # ~15-20 min on a shared 2-core CPU
    python bench/time_reversal.py --steps 200     # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from structure_common import write  # noqa: E402

from bkdsl.api import compile_file  # noqa: E402
from bkdsl.components.synthetic_data import pendulum_pairs  # noqa: E402
from bkdsl.nn.hamiltonians import PendulumPotential, QuadraticKinetic, SeparableHamiltonian  # noqa: E402
from bkdsl.nn.integrators import Integrator  # noqa: E402
from bkdsl.train.augment import apply_all  # noqa: E402
from bkdsl.train.data import split_indices  # noqa: E402
from bkdsl.train.plan import plan_from_compiled  # noqa: E402
from bkdsl.train.reversal import LAYOUTS  # noqa: E402

SPEC = ROOT / "specs" / "time_reversal.bk"
DT = 0.6
R = LAYOUTS["hamiltonian_trajectories"].reverse_state


def true_flow(x: torch.Tensor, steps: int) -> torch.Tensor:
    """The pendulum (k = m = 1) advanced ``steps`` × DT by a fine Yoshida-4 (1000 substeps per DT)."""
    H = SeparableHamiltonian(QuadraticKinetic(1.0), PendulumPotential(1.0), dim=1)
    fine = Integrator(H, "yoshida4", 1.0, 1)
    q, p = x[:, :1].double(), x[:, 1:].double()
    with torch.no_grad():
        for _ in range(steps * 1000):
            q, p = fine.step(q, p, dt=DT / 1000)
    return torch.cat([q, p], 1)


def train_one(c, train: str, samples: int, seed: int, steps: int) -> torch.nn.Module:
    plan = plan_from_compiled(c, train, overrides={}, seed=seed)
    dp = plan.data
    # the spec's source at `samples` pairs (same generator, same seed as the spec: a prefix-like subset)
    ds = dp.dataset
    if samples < len(ds):
        ds = ds.subset(torch.arange(samples))
    idx = split_indices(len(ds), dp.split, dp.seed, ds.groups)["train"]
    data = {k: v[idx] for k, v in ds.fields.items()}
    torch.manual_seed(seed)
    model = plan.build_model()
    loss_fn = plan.loss
    loss_fn.bind_model(model, plan.inputs)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    n = len(idx)
    g = torch.Generator().manual_seed(seed)
    batch = 64
    for s in range(steps):
        if s % max(1, n // batch) == 0:
            perm = torch.randperm(n, generator=g)
        b = (s % max(1, n // batch)) * batch
        sel = perm[b:b + batch]
        raw = apply_all(dp.augment, {k: v[sel] for k, v in data.items()}, ds.info, dp.seed, s // max(1, n // batch), s)
        for gr in opt.param_groups:  # cosine from 1 to 0.01
            gr["lr"] = 3e-3 * (0.01 + 0.99 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / steps)).item()))
        out = model(x=raw["x"])
        loss, _ = loss_fn(out, raw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


def evaluate(model, x: torch.Tensor, x1: torch.Tensor, x20: torch.Tensor) -> dict:
    with torch.no_grad():
        f = lambda s: model(x=s.float())["x_next"].double()  # noqa: E731
        one = (f(x) - x1).pow(2).sum(1).mean().sqrt()
        s = x
        for _ in range(20):
            s = f(s)
        roll = (s - x20).pow(2).sum(1).mean().sqrt()
        cyc = (R(f(R(f(x)))) - x).pow(2).sum(1).mean().sqrt()
    return {"rmse_1step": float(one), "rmse_20step": float(roll), "cycle_residual": float(cyc)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sizes", default="2048,512,128", help="pairs per dataset; each next one is 1/4 of the last")
    args = ap.parse_args()
    torch.set_num_threads(1)
    c = compile_file(SPEC)
    test = pendulum_pairs(4096, DT, seed=99)
    x = test["x"].double()
    x1, x20 = true_flow(x, 1), true_flow(x, 20)
    if not (torch.isfinite(x1).all() and torch.isfinite(x20).all()):
        raise SystemExit("reference flow is not finite")
    sizes = [int(v) for v in args.sizes.split(",")]
    rows = []
    for samples in sizes:
        for train in ("fit", "consistent", "augmented"):
            for seed in range(args.seeds):
                t = time.perf_counter()
                model = train_one(c, train, samples, seed, args.steps)
                r = evaluate(model, x, x1, x20)
                if not all(map(lambda v: v == v and abs(v) != float("inf"), r.values())):
                    raise SystemExit(f"non-finite result {r} for {train} {samples} {seed}")
                rows.append({"train": train, "samples": samples, "seed": seed, **r,
                             "seconds": round(time.perf_counter() - t, 2)})
                print(f"{train:11s} {samples:5d} seed {seed}: 1-step {r['rmse_1step']:.4g}  20-step "
                      f"{r['rmse_20step']:.4g}  cycle {r['cycle_residual']:.3g}  ({rows[-1]['seconds']} s)", flush=True)
    summary = {}
    for samples in sizes:
        for train in ("fit", "consistent", "augmented"):
            rs = [r for r in rows if r["samples"] == samples and r["train"] == train]
            summary[f"{train}@{samples}"] = {k: {"mean": statistics.mean(r[k] for r in rs),
                                                  "min": min(r[k] for r in rs), "max": max(r[k] for r in rs)}
                                             for k in ("rmse_1step", "rmse_20step", "cycle_residual")}
    verdict = {}
    for full, quarter in zip(sizes, sizes[1:]):
        for k in ("consistent", "augmented"):
            for m in ("rmse_1step", "rmse_20step", "cycle_residual"):
                verdict[f"{k}/fit@{quarter}.{m}"] = (summary[f"{k}@{quarter}"][m]["mean"]
                                                    / summary[f"fit@{quarter}"][m]["mean"])
        verdict[f"fit@{quarter}/fit@{full}.rmse_1step"] = (summary[f"fit@{quarter}"]["rmse_1step"]["mean"]
                                                          / summary[f"fit@{full}"]["rmse_1step"]["mean"])
    print("ratios (< 1: better than the task loss alone):", verdict)
    write("time_reversal", {"setup": {"spec": "specs/time_reversal.bk", "dt": DT, "steps": args.steps, "batch": 64,
                                      "optimizer": "adam 3e-3, cosine to 1 %", "lambda": 1.0,
                                      "test": "4096 fresh pairs (seed 99); 20-step rollout vs the true flow",
                                      "pairs": sizes, "train_fraction": 0.8},
                            "rows": rows, "summary": summary, "ratios": verdict})


if __name__ == "__main__":
    main()
