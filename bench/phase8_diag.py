"""CPU diagnosis of why causal phase8 plateaus (issue #15): train a small model for a few hundred steps
and log, every ``--every`` steps, the train loss, the residual stream's ball norm ‖x‖ after the embedding
and after each layer, the attention output's share of the layer update, the fraction of attention
tokens active, the MoE load, and the gradient norm per parameter group.

  OMP_NUM_THREADS=1 .venv/bin/python bench/phase8_diag.py --model "phase8()" --steps 300
  OMP_NUM_THREADS=1 .venv/bin/python bench/phase8_diag.py --kind gpt --model "gpt_baseline()" --steps 300

Same data, batch, schedule (linear warm-up 20 steps, cosine) and optimizer code as
bench/phase8_vs_gpt.py (``--opt radam`` forces Riemannian Adam on either model).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import geoopt
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from phase8_vs_gpt import Data, compile_model, make_optimizer, test_bpb  # noqa: E402

from bkdsl.nn.hyperbolic_moe import HyperbolicMoE  # noqa: E402
from bkdsl.nn.scattering_attention import ScatteringAttention  # noqa: E402
from bkdsl.train.reports import data_dependent_init  # noqa: E402


def group(name: str) -> str:
    for key in ("embedding", "g_hamiltonian", "green_features", ".a.", "hyperbolic_moe", "attn", "mlp", "logits"):
        if key in name:
            return key.strip(".")
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="phase8", choices=["phase8", "gpt"])
    ap.add_argument("--model", default="phase8()")
    ap.add_argument("--opt", default=None, choices=[None, "radam", "adamw"])
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--max-bytes", type=int, default=2_000_000)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device("cpu")
    data = Data(a.seq_len, a.max_bytes, 128, dev)
    model = compile_model("phase8.bk" if a.kind == "phase8" else "gpt_baseline.bk", a.model)
    it = data.batches(a.batch, seed=0)
    first = next(it)
    data_dependent_init(model, lambda m: m(first[:, :-1]))
    opt_kind = {"radam": "phase8", "adamw": "gpt", None: a.kind}[a.opt]
    opt = make_optimizer(opt_kind, model, a.lr)

    stats: dict[str, float] = {}

    def norm_hook(name):
        def hook(mod, args, out):
            x = out if torch.is_tensor(out) else None
            if x is not None:
                stats[f"|x| {name}"] = float(x.detach().norm(dim=-1).mean())
                stats[f"max|x| {name}"] = float(x.detach().norm(dim=-1).max())
        return hook

    def att_hook(name):
        def hook(mod, args, out):
            st = mod.last_stats
            stats[f"active {name}"] = float(st.active_fraction.mean())
            stats[f"skipped {name}"] = float(st.skipped_fraction.mean())
            stats[f"|att| {name}"] = float(out.detach().norm(dim=-1).mean())
        return hook

    def moe_hook(name):
        def hook(mod, args, out):
            stats[f"moe load {name}"] = [round(float(v), 3) for v in mod.load]
        return hook

    for n, m in model.named_modules():
        if type(m).__name__ == "BkLayer" or n == "embedding":
            m.register_forward_hook(norm_hook(n or "root"))
        if isinstance(m, ScatteringAttention):
            m.register_forward_hook(att_hook(n))
        if isinstance(m, HyperbolicMoE):
            m.register_forward_hook(moe_hook(n))

    rows = []
    t0 = time.time()
    for k in range(a.steps):
        w = first if k == 0 else next(it)
        scale = min(1.0, (k + 1) / 20) * 0.5 * (1.0 + math.cos(math.pi * k / a.steps))
        for gr in opt.param_groups:
            gr["lr"] = a.lr * scale
        opt.zero_grad(set_to_none=True)
        logits = model(w[:, :-1])["logits"]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        loss.backward()
        if k % a.every == 0 or k == a.steps - 1:
            g2 = defaultdict(float)
            for n, p in model.named_parameters():
                if p.grad is not None:
                    g2[group(n)] += float(p.grad.detach().float().pow(2).sum())
            row = {"step": k, "loss": round(float(loss.detach()), 4), "t": round(time.time() - t0, 1),
                   "grad": {g: float(f"{math.sqrt(v):.3g}") for g, v in g2.items()}}
            row.update({kk: (round(v, 4) if isinstance(v, float) else v) for kk, v in stats.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
        opt.step()
    bpb = test_bpb(model, data, 32, False)
    print(json.dumps({"final_test_bpb": round(bpb, 4), "final_loss": round(float(loss.detach()), 4),
                      "model": a.model, "lr": a.lr, "opt": opt_kind, "steps": a.steps}), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows, "test_bpb": bpb}, indent=1))


if __name__ == "__main__":
    main()
