"""The tables of docs/training_physics.md from the committed JSON (prints markdown)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

R = Path(__file__).parent / "results"


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def teleport(path: Path) -> None:
    d = json.loads(path.read_text())
    print(f"**Gradient teleportation** — `{d['spec']}` (64 × 32 plain tanh), {d['steps']} steps, seeds {d['seeds']}, "
          f"mass {d['mass']}; target: validation loss ≤ target (the mean-predictor plateau is ≈ 0.035)\n")
    print("| optimizer | λ | target | reached (seeds) | steps to target | CPU s to target | final val loss (per seed) | CPU s / step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for oname, s in d["summary"].items():
        for lam in sorted({r["strength"] for r in s["runs"]}):
            rows = [r for r in s["runs"] if r["strength"] == lam]
            hit = [r for r in rows if r["steps_to_target"] is not None]
            print(f"| {oname} | {lam:g} | {s['target_val_loss']:.4f} | {len(hit)}/{len(rows)} | "
                  f"{', '.join(_fmt(r['steps_to_target'], 'd') for r in rows)} | "
                  f"{', '.join(_fmt(r['train_s_to_target'], '.1f') for r in rows)} | "
                  f"{', '.join(_fmt(r['final_val'], '.5f') for r in rows)} | "
                  f"{statistics.mean(r['s_per_step'] for r in rows) * 1e3:.1f} ms |")
    g = d["grad_norm_per_weight_at_init"]
    print(f"\nGradient norm of the weights at initialisation (input layer / stack layer 32 / last stack layer): "
          f"plain {g['plain'][0]:.1e} / {g['plain'][33]:.1e} / {g['plain'][-2]:.1e}; "
          f"teleport {g['teleport'][0]:.1e} / {g['teleport'][33]:.1e} / {g['teleport'][-2]:.1e}\n")


def holographic(path: Path) -> None:
    d = json.loads(path.read_text())
    print(f"**Holographic compression of the K/V cache** — `{d['model']}`, {d['trained']['steps']} AdamW steps on the "
          f"CPU (a small model), {d['val_tokens']} validation bytes; uncompressed {d['bpb_uncompressed']:.4f} bits/byte\n")
    print("| compression | cache kept | frame W | mean rel. error ‖k − WWᵀk‖/‖k‖ (K and V, 2 layers) | bits/byte | Δ bits/byte |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in d["rows"]:
        print(f"| {r['ratio']}× | {r['boundary']}/64 ({r['kept']:.1%}) | {r['frame']} | {r['mean_rel_error']:.3f} | "
              f"{r['bpb']:.4f} | {r['delta_bpb']:+.4f} |")
    print()


def superposition(path: Path) -> None:
    d = json.loads(path.read_text())
    for tname, t in d["tasks"].items():
        print(f"**Superposition optimizers, {tname}** — {d['budget_s']} s of optimizer CPU time per run, seeds "
              f"{d['seeds']}, {t['n_train']} training samples, batch {t['batch']}\n")
        print("| optimizer | final val loss (per seed) | mean | × Adam | steps in the budget |")
        print("| --- | --- | --- | --- | --- |")
        for name, s in t["summary"].items():
            print(f"| {name} | {', '.join(f'{v:.3g}' for v in s['final_val'])} | {s['mean']:.3g} | "
                  f"{s.get('ratio_to_adam', float('nan')):.2f} | {', '.join(map(str, s['steps']))} |")
        # the same runs at equal *steps*: per seed, the largest evaluated step every contender reached
        runs = t["runs"]
        names = list(t["summary"])
        print("\nThe same runs at equal steps (per seed: the last evaluation step every optimizer reached), "
              "and CPU ms per step:\n")
        print("| optimizer | step (per seed) | val loss at that step | mean × Adam | CPU ms / step |")
        print("| --- | --- | --- | --- | --- |")
        seeds = sorted({r["seed"] for r in runs})
        common = {sd: max(set.intersection(*[{c[0] for c in r["curve"]} for r in runs if r["seed"] == sd]))
                  for sd in seeds}
        at = {}
        for name in names:
            vals, cost = [], []
            for sd in seeds:
                r = next(r for r in runs if r["seed"] == sd and r["optimizer"] == name)
                vals.append(next(c[2] for c in r["curve"] if c[0] == common[sd]))
                cost.append(1e3 * r["train_s"] / max(r["steps"], 1))
            at[name] = vals
        ref = statistics.mean(at["adam"]) if "adam" in at else None
        for name in names:
            r_ = statistics.mean(at[name]) / ref if ref else float("nan")
            cost = [1e3 * r["train_s"] / max(r["steps"], 1) for r in runs if r["optimizer"] == name]
            print(f"| {name} | {', '.join(str(common[sd]) for sd in seeds)} | {', '.join(f'{v:.3g}' for v in at[name])} | "
                  f"{r_:.2f} | {statistics.mean(cost):.1f} |")
        print()


if __name__ == "__main__":
    day = sys.argv[1] if len(sys.argv) > 1 else "2026-12-03"
    for name, fn in (("teleport", teleport), ("holographic", holographic), ("superposition", superposition),
                     ("superposition-u236", superposition)):
        p = R / f"{day}-{name}.json"
        if p.exists():
            fn(p)
