"""Superposition optimizers vs Adam at equal wall-clock (issue 16 item 4).

For each task (specs/tiny_regression.bk; a small specs/u236_multipole.bk when its dataset is in the
cache or --u236-samples asks to generate it) and each seed, every optimizer starts from the same
initial weights and sees the same batch stream for the same optimizer time (evaluation excluded);
the score is the validation loss at the end of the budget. Optimizers are built through the registry
(the components a spec names) and stepped as the runner steps them (``step_with`` for the functional
ones).

    OMP_NUM_THREADS=1 python bench/superposition.py --budget 20 --seeds 0 1 2 [--out results.json]

Correctness first: pi2(particles = 1, sigma = 0) must reproduce its base Adam step and
natural_gradient(fisher = identity, damping = 0) the SGD step, bit for bit, on the task's first batch;
otherwise the script exits non-zero.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_physics_common import Task, train_run, write  # noqa: E402

from bkdsl import registry  # noqa: E402
from bkdsl.train.superposition import FunctionalModel  # noqa: E402

CONTENDERS = {
    "adam": ("adam", {"lr": 3e-3}),
    "pi2": ("pi2", {"lr": 3e-3, "particles": 8, "sigma": 1e-3, "temperature": 10.0, "base": "adam"}),
    "pi2_zeroth_order": ("pi2", {"lr": 0.0, "particles": 32, "sigma": 3e-3, "temperature": 10.0}),
    "natural_gradient": ("natural_gradient", {"lr": 0.02, "damping": 1e-2, "fisher": "empirical", "momentum": 0.9}),
    "ensemble_distill": ("ensemble_distill", {"lr": 3e-3, "particles": 4, "sigma": 1e-3, "beta": 1.0}),
}


def build(name: str, model: torch.nn.Module, **override):
    comp_name, kw = CONTENDERS.get(name, (name, {}))
    comp = registry.lookup(comp_name, "optimizer").from_args({**kw, **override})
    return comp.build([p for p in model.parameters() if p.requires_grad])


def stepper(task: Task, model, opt):
    fm = FunctionalModel(model, task.plan.inputs, task.plan.loss)

    def step(b):
        opt.zero_grad(set_to_none=True)
        task.loss(model, b).backward()
        if getattr(opt, "functional_step", False):
            opt.step_with(fm, b)
        else:
            opt.step()
    return step


def check_references(task: Task) -> None:
    b = next(task.batches(0))
    for name, kw, ref_name, ref_kw in [("pi2", {"lr": 3e-3, "particles": 1, "sigma": 0.0}, "adam", {"lr": 3e-3}),
                                      ("natural_gradient", {"lr": 0.02, "fisher": "identity", "damping": 0.0},
                                       "sgd", {"lr": 0.02})]:
        m = task.model(0)
        r = copy.deepcopy(m)
        stepper(task, m, build(name, m, **kw))(b)
        stepper(task, r, registry.lookup(ref_name, "optimizer").from_args(ref_kw).build(list(r.parameters())))(b)
        if not all(torch.equal(p, q) for p, q in zip(m.parameters(), r.parameters())):
            raise SystemExit(f"FAIL: {name}{kw} does not reproduce {ref_name}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=20.0, help="optimizer seconds per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--tasks", nargs="+", default=["tiny_regression", "u236_multipole"])
    ap.add_argument("--u236-samples", default="384")
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tasks = {}
    for t in a.tasks:
        ov = {"data.samples": a.u236_samples, "train.batch": "32",
              "train.model": "multipole(hidden = 32)"} if t == "u236_multipole" else None
        tasks[t] = Task(f"{t}.bk", ov)
        check_references(tasks[t])
    results = {}
    for tname, task in tasks.items():
        runs = []
        for seed in a.seeds:
            for name in a.contenders:
                model = task.model(seed)
                opt = build(name, model)
                r = train_run(task, model, opt, stepper(task, model, opt), seed=seed, max_steps=10 ** 9,
                              time_budget=a.budget, eval_every=50)
                r.update(seed=seed, optimizer=name)
                runs.append(r)
                print(f"{tname} seed {seed} {name:18s} val {r['final_val']:.5g} after {r['steps']} steps "
                      f"({r['train_s']:.1f} s)", flush=True)
        summary = {}
        for name in a.contenders:
            vals = [r["final_val"] for r in runs if r["optimizer"] == name]
            steps = [r["steps"] for r in runs if r["optimizer"] == name]
            summary[name] = {"final_val": vals, "mean": sum(vals) / len(vals), "steps": steps}
        base = summary.get("adam", {}).get("mean")
        for name, s in summary.items():
            if base:
                s["ratio_to_adam"] = s["mean"] / base
            print(f"{tname}: {name:18s} mean val {s['mean']:.5g}" + (f"  ({s['mean'] / base:.2f}× Adam)" if base else ""))
        results[tname] = {"summary": summary, "runs": runs, "n_train": task.n_train, "batch": task.batch}
    write("superposition", {"budget_s": a.budget, "seeds": a.seeds,
                            "contenders": {k: {"component": v[0], "params": v[1]} for k, v in CONTENDERS.items()
                                           if k in a.contenders},
                            "correctness": "pi2(K=1, σ=0) ≡ adam step; natural_gradient(identity, δ=0) ≡ sgd step "
                                           "(bit-for-bit, checked before timing)",
                            "u236": {"samples_requested": a.u236_samples, "model": "multipole(hidden = 32)", "batch": 32},
                            "tasks": results}, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
