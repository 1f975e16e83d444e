"""Gradient teleportation vs plain backprop where vanishing gradients bite (issue 16 item 2).

specs/teleport_deep.bk: a 64-layer plain tanh MLP (no residuals, no normalisation) on the Woods–Saxon
profiles of tiny_regression. For each seed, the same initial weights and batches are trained with the
spec's optimizer twice — teleport strength 0 (plain backpropagation, bit-identical to no hook: tested in
tests/train/test_teleport.py) and strength λ — and we record the validation loss curve, the steps and
optimizer wall-clock to a target validation loss, and the gradient norms per layer at initialisation.

    OMP_NUM_THREADS=1 python bench/teleport.py --steps 1500 --seeds 0 1 2 [--out results.json]

Correctness first: before timing, one backward with λ = 0 must reproduce plain backprop's gradients
exactly, else the script exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_physics_common import Task, train_run, write  # noqa: E402

from bkdsl.components.teleport import DysonTeleport  # noqa: E402
from bkdsl.train.teleport import attach_teleport  # noqa: E402


def grads(task, model, batch):
    model.zero_grad(set_to_none=True)
    task.loss(model, batch).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def layer_grad_norms(task, model, batch) -> list[float]:
    g = grads(task, model, batch)
    # weights of the input layer, the 64 stack layers and the read-out, in parameter order
    return [float(x.norm()) for x, (n, _) in zip(g, model.named_parameters()) if n.endswith("weight")]


def forward_input_dependence(task, model) -> dict[str, float]:
    """How much each layer's output still depends on the input at initialisation: the standard deviation
    over validation samples, averaged over features (float32 round-off is ~1e-8 of |h|)."""
    acts = {}
    names = ["dense"] + [f"dense_{k}" for k in range(1, 64)]
    hs = [getattr(model, n).register_forward_hook(lambda mod, a, o, n=n: acts.__setitem__(n, o.detach()))
          for n in names]
    with torch.no_grad():
        task.forward(model, task.val)
    for h in hs:
        h.remove()
    return {n: float(acts[n].std(0).mean()) for n in names}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0053, 0.02])
    ap.add_argument("--mass", type=float, default=0.03)
    ap.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    ap.add_argument("--target", type=float, default=None, help="validation loss to reach (default: 2× the best plain run's final loss is not used; see below)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--forward-probe", action="store_true", help="only the forward input-dependence per layer")
    a = ap.parse_args()
    torch.set_num_threads(1)
    task = Task("teleport_deep.bk")
    if a.forward_probe:
        dep = {seed: forward_input_dependence(task, task.model(seed)) for seed in a.seeds}
        for seed, d in dep.items():
            print(f"seed {seed}: std over samples of layer 1 / 8 / 16 / 32 / 64 outputs: "
                  + " / ".join(f"{d[n]:.1e}" for n in ("dense", "dense_7", "dense_15", "dense_31", "dense_63")))
        write("teleport-forward", {"spec": "specs/teleport_deep.bk", "what": "std over validation samples of each "
                                   "stack layer's output at initialisation, mean over features", "per_seed": dep}, a.out)
        return 0
    batch0 = next(task.batches(0))

    def comp(strength):
        return DysonTeleport.from_args({"over": "dense", "strength": strength, "mass": a.mass})

    # correctness: λ = 0 is plain backprop, exactly
    m = task.model(0)
    plain = grads(task, m, batch0)
    hook = attach_teleport(m, comp(0.0))
    zero = grads(task, m, batch0)
    hook.detach()
    if not all(torch.equal(x, y) for x, y in zip(plain, zero)):
        print("FAIL: strength 0 does not reproduce backprop", file=sys.stderr)
        return 1
    hook = attach_teleport(m, comp(a.strengths[0]))
    tele_norms = layer_grad_norms(task, m, batch0)
    hook.detach()
    plain_norms = layer_grad_norms(task, m, batch0)

    runs = []
    for seed in a.seeds:
        for oname in a.optimizers:
            for strength in (0.0, *a.strengths):
                model = task.model(seed)
                hook = attach_teleport(model, comp(strength)) if strength > 0 else None
                opt = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if oname == "sgd"
                       else torch.optim.Adam(model.parameters(), lr=1e-3))

                def step(b, model=model, opt=opt):
                    opt.zero_grad(set_to_none=True)
                    task.loss(model, b).backward()
                    opt.step()

                r = train_run(task, model, opt, step, seed=seed, max_steps=a.steps, eval_every=25)
                if hook is not None:
                    hook.detach()
                r.update(seed=seed, optimizer=oname, strength=strength)
                runs.append(r)
                print(f"seed {seed} {oname:4s} λ={strength:<4} final val {r['final_val']:.5f} "
                      f"({r['steps']} steps, {r['train_s']:.1f} s)", flush=True)

    # targets: per optimizer, the best final validation loss that *every* plain run reached — time to it
    # for each run (the plain runs' own times included), read from the curves
    summary = {}
    for oname in a.optimizers:
        plain_final = [r["final_val"] for r in runs if r["optimizer"] == oname and r["strength"] == 0]
        target = a.target if a.target is not None else max(plain_final)
        rows = []
        for r in runs:
            if r["optimizer"] != oname:
                continue
            hit = next(((s, t) for s, t, v in r["curve"] if v <= target), None)
            rows.append({"seed": r["seed"], "strength": r["strength"], "final_val": r["final_val"],
                         "steps_to_target": hit[0] if hit else None, "train_s_to_target": hit[1] if hit else None,
                         "s_per_step": r["train_s"] / max(r["steps"], 1)})
        summary[oname] = {"target_val_loss": target, "runs": rows}
        for st in (0.0, *a.strengths):
            sel = [x for x in rows if x["strength"] == st]
            print(f"{oname} λ={st}: target {target:.5f}: steps {[x['steps_to_target'] for x in sel]}, "
                  f"s {[x['train_s_to_target'] for x in sel]}, final {[round(x['final_val'], 5) for x in sel]}")
    write("teleport", {"spec": "specs/teleport_deep.bk", "depth": 64, "width": 32, "strengths": a.strengths,
                       "mass": a.mass, "steps": a.steps, "seeds": a.seeds,
                       "optimizers": {"sgd": "SGD(lr=0.05, momentum=0.9)", "adam": "Adam(lr=1e-3)"},
                       "grad_norm_per_weight_at_init": {"plain": plain_norms, "teleport": tele_norms},
                       "correctness": "strength 0 reproduces backprop gradients bit-for-bit",
                       "summary": summary, "runs": runs}, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
