"""Where phase8's training step spends its time on the GPU, beside the GPT baseline's (issue #15: the
tokens/s gap). Both compiled from their specs at the comparison's size (d 256, 4 layers, batch 32 × 512),
trained a few steps to warm up (Triton JIT, autotuning), then ``--steps`` steps under torch.profiler.
Writes JSON with the step time, the GPU-busy time per step, and the top CUDA kernels and CPU ops of each
model (self time per step), to ``--out``.

    python bench/phase8_profile.py --out $OUT/phase8_profile.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bkdsl  # noqa: E402
from bkdsl.train.reports import data_dependent_init  # noqa: E402

MODELS = {
    "phase8": ("phase8.bk", "phase8(d = 256, layers = 4, heads = 8, experts = 8, blk = 64, hidden = 136)"),
    "gpt": ("gpt_baseline.bk", "gpt_baseline(d = 256, layers = 4, heads = 8, max_len = 512)"),
}


def build(name: str, dev: torch.device) -> torch.nn.Module:
    spec, call = MODELS[name]
    return bkdsl.compile_file(ROOT / "specs" / spec, overrides={"train.model": call}).module.to(dev)


def step_fn(model, opt, x, y, autocast: bool):
    def step():
        with torch.autocast("cuda", torch.bfloat16, enabled=autocast):
            logits = model(x)["logits"]
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def profile(name: str, dev: torch.device, batch: int, seq: int, warm: int, steps: int, top: int) -> dict:
    import geoopt

    torch.manual_seed(0)
    model = build(name, dev)
    x = torch.randint(0, 256, (batch, seq), device=dev)
    y = torch.randint(0, 256, (batch, seq), device=dev)
    if name == "phase8":
        data_dependent_init(model, lambda m: m(x))
        opt = geoopt.optim.RiemannianAdam(model.parameters(), lr=3e-3)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    step = step_fn(model, opt, x, y, autocast=(name == "gpt"))
    for _ in range(warm):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / steps
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    ev = prof.key_averages()
    cuda = sorted((e for e in ev if e.self_device_time_total > 0), key=lambda e: -e.self_device_time_total)
    cpu = sorted(ev, key=lambda e: -e.self_cpu_time_total)
    busy = sum(e.self_device_time_total for e in ev) / steps / 1e3
    return {
        "step_ms": wall * 1e3, "tokens_per_s": batch * seq / wall, "gpu_busy_ms_per_step": busy,
        "gpu_busy_fraction": busy / (wall * 1e3),
        "top_cuda_kernels_us_per_step": [{"name": e.key[:90], "us": e.self_device_time_total / steps,
                                          "calls_per_step": e.count / steps} for e in cuda[:top]],
        "top_cpu_ops_us_per_step": [{"name": e.key[:90], "us": e.self_cpu_time_total / steps,
                                     "calls_per_step": e.count / steps} for e in cpu[:top]],
        "kernel_launches_per_step": sum(e.count for e in cuda) / steps,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--warm", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("phase8_profile: needs a CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    res = {"date": dt.date.today().isoformat(), "device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "batch": a.batch, "seq": a.seq, "steps": a.steps, "models": {k: v[1] for k, v in MODELS.items()}}
    for name in MODELS:
        res[name] = profile(name, dev, a.batch, a.seq, a.warm, a.steps, a.top)
        r = res[name]
        print(f"{name}: step {r['step_ms']:.2f} ms, {r['tokens_per_s']:.0f} tok/s, GPU busy {r['gpu_busy_ms_per_step']:.2f} ms "
              f"({100 * r['gpu_busy_fraction']:.0f} %), {r['kernel_launches_per_step']:.0f} launches/step", flush=True)
        for k in r["top_cuda_kernels_us_per_step"][:8]:
            print(f"   {k['us']:9.1f} us  x{k['calls_per_step']:<5.0f} {k['name']}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
