"""The worked specs' experiments, each a structured model against its unstructured twin (CPU, minutes).

1. holographic weight synthesis (specs/holographic_weights.bk): 8 synthesised circulant layers learn to
   undo an all-pass channel; phasor binding vs plain circular convolution. Metric: test relative L2
   error, and the spread of the initial stack's per-bin gain (max/min), the gradient-scaling problem.
2. associative recall (specs/fast_weight_recall.bk): delta-rule vs additive fast weights, 24 pairs
   over 8 keys (rewrites). Metric: test accuracy of the recalled value.
3. Hamiltonian (specs/hamiltonian_leapfrog.bk): a pendulum learned as T(p) + V_θ(q), leapfrog vs rk4,
   dt = 0.3. Metrics: one-step test RMSE, and energy drift over a 3000-step (t = 900) rollout of the
   learned model — of the learned H_θ along its own trajectory, and of the true pendulum energy.

Same data, sizes, optimizer and epochs as the specs. ``python bench/structure_worked.py [holo|recall|ham]``
"""

from __future__ import annotations

import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from structure_common import write  # noqa: E402


def split(d: dict, n_train: int):
    return {k: v[:n_train] for k, v in d.items()}, {k: v[n_train:] for k, v in d.items()}


def train(model, data, loss_fn, epochs, batch, lr, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(next(iter(data.values())))
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            loss = loss_fn(model, {k: v[idx] for k, v in data.items()})
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def holo() -> dict:
    from bkdsl.components.synthetic_data import holographic_task
    from bkdsl.nn.binding import HolographicStack

    d = holographic_task(2048, 64, seed=0)
    tr, te = split(d, 1638)
    out = {}
    for b in ("phasor", "hrr"):
        torch.manual_seed(0)
        m = HolographicStack(64, 8, b)
        with torch.no_grad():
            gain = m.spectra().abs().prod(0)
        t = time.perf_counter()
        train(m, tr, lambda m, x: ((m(x["signal"]) - x["clean"]) ** 2).mean(), 30, 64, 1e-2)
        with torch.no_grad():
            pred = m(te["signal"])
            rel = float(((pred - te["clean"]).norm(dim=-1) / te["clean"].norm(dim=-1)).mean())
        out[b] = {"test_rel_l2": rel, "init_gain_max_over_min": float(gain.max() / gain.min()),
                  "seconds": time.perf_counter() - t}
        print("holo", b, out[b])
    return out


def recall() -> dict:
    from bkdsl.components.synthetic_data import associative_recall
    from bkdsl.nn.fast_weights import FastWeightRecall

    d = associative_recall(8192, 24, 8, 16, seed=0)
    tr, te = split(d, 6554)
    out = {}
    ce = torch.nn.functional.cross_entropy
    for rule in ("delta", "additive"):
        torch.manual_seed(0)
        m = FastWeightRecall(24, 64, 32, 1, rule, True, True)
        t = time.perf_counter()
        train(m, tr, lambda m, x: ce(m(x["tokens"])[:, -1], x["answer"]), 15, 128, 3e-3)
        with torch.no_grad():
            acc = float((m(te["tokens"])[:, -1].argmax(-1) == te["answer"]).float().mean())
        out[rule] = {"test_accuracy": acc, "chance": 1 / 16, "seconds": time.perf_counter() - t}
        print("recall", rule, out[rule])
    return out


def ham() -> dict:
    from bkdsl.components.synthetic_data import pendulum_pairs
    from bkdsl.nn.hamiltonians import MLPPotential, QuadraticKinetic, SeparableHamiltonian, pendulum_energy
    from bkdsl.nn.integrators import Integrator

    d = pendulum_pairs(2048, 0.3, seed=0)
    tr, te = split(d, 1638)
    out = {}
    for method in ("leapfrog", "rk4"):
        torch.manual_seed(0)
        H = SeparableHamiltonian(QuadraticKinetic(1.0), MLPPotential(1, 64, 2), dim=1)
        flow = Integrator(H, method, 0.3, 1)
        t = time.perf_counter()
        train(flow, tr, lambda m, x: ((m(x["x"]) - x["x_next"]) ** 2).mean(), 40, 64, 3e-3)
        fit_s = time.perf_counter() - t
        with torch.no_grad():
            rmse = float(((flow(te["x"]) - te["x_next"]) ** 2).mean().sqrt())
        H64 = H.double()
        f64 = Integrator(H64, method, 0.3, 1)
        x0 = te["x"][:16].double()
        with torch.no_grad():
            qs, ps = f64.trajectory(x0[:, :1], x0[:, 1:], 3000)
            Hl = H64.energy(qs, ps)  # [3001, 16]
            Et = pendulum_energy(qs, ps)
            scale = Et[0].abs().mean()
            drift_learned = float(((Hl - Hl[0]).abs().max(0).values).mean() / scale)
            drift_true = float(((Et - Et[0]).abs().max(0).values).mean() / scale)
            late = float(((Hl[-300:] - Hl[0]).abs().mean()) / scale)
            early = float(((Hl[1:301] - Hl[0]).abs().mean()) / scale)
        out[method] = {"one_step_test_rmse": rmse, "rollout_steps": 3000, "rollout_time": 900.0,
                       "energy_drift_learned_H_rel": drift_learned, "energy_drift_true_H_rel": drift_true,
                       "learned_H_error_first_300_steps": early, "learned_H_error_last_300_steps": late,
                       "train_seconds": fit_s}
        print("ham", method, out[method])
    return out


def main() -> None:
    which = sys.argv[1:] or ["holo", "recall", "ham"]
    res = {w: globals()[w]() for w in which}
    write("structure_worked" + ("" if len(which) == 3 else "_" + "_".join(which)), res)


if __name__ == "__main__":
    main()
