"""Training throughput of the ²³⁶U multi-task model (thesis ch. 4): bkdsl-compiled vs plain eager PyTorch.

The model is `mtl(d_z = 2)` of specs/u236_mtl.bk (ResNet18 encoder without the max-pool, ResNet18-like
nearest-upsampling density decoder, 6-layer MLP energy decoder; stdlib/nets.bk). The contender is the
same architecture written here by hand in plain PyTorch (:class:`EagerMTL`). Both are timed in the same
process, on the same inputs, with the same optimizer (Adam, lr 1e-4; fused on CUDA) and the same loss
L = mse(E) + α ∫d³r (ρ_pred − ρ)² (α = 1e-3 fm⁻³, cylindrical measure on the 0.4 fm grid).

Inputs are **random tensors** of the right shape (batch 128 × 1 × 48 × 128, min–max-like values in
[0, 1]): this measures training throughput, not learning; nothing here is physics.

Before timing, the bkdsl model gets the eager model's weights (same parameter order and shapes, checked)
and both are run on one input in eval mode: the max |difference| of the outputs is recorded
(``max_error``), so the two contenders are the same function.

Configurations per contender: fp32 (NCHW), bf16 autocast + channels-last, the same + torch.compile
(default mode), the same + torch.compile(mode="max-autotune-no-cudagraphs") when asked, and + CUDA
graphs (mode="reduce-overhead"). Each: warm-up steps, then `--repeat` timed windows of `--steps`
training steps between CUDA events; the median window gives samples/s.

Then: FLOPs of one training step (torch.utils.flop_counter: forward + backward), the achieved TFLOP/s,
the time for the thesis' run (1000 epochs × 163 000 training samples) next to its 50 GPU-hours
(≈ 906 samples/s implied), and a torch.profiler table of the fastest bkdsl configuration.

    python bench/u236_throughput.py                     # CUDA: writes bench/results/<date>-u236_throughput.json
    python bench/u236_throughput.py --device cpu --steps 2 --repeat 1 --batch 8 --configs fp32   # a CPU smoke
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THESIS_TRAIN_SAMPLES = 163_000   # 90 % of the 181 134 kept samples
THESIS_EPOCHS = 1000
THESIS_GPU_HOURS = 50.0          # one MTL run on an RTX 3090 Ti (thesis §4.3.3)
DR = 0.4                         # fm
ALPHA = 1e-3                     # fm^-3


# ------------------------------------------------------------------------------ the eager model
def conv(cin: int, cout: int, k: int, s: int = 1, bias: bool = False) -> nn.Conv2d:
    p = k // 2 if k % 2 else (k - s) // 2    # the same padding rule as bkdsl's conv2d
    return nn.Conv2d(cin, cout, k, s, p, bias=bias)


class Basic(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1, self.b1, self.c2, self.b2 = conv(c, c, 3), nn.BatchNorm2d(c), conv(c, c, 3), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + x)


class Down(nn.Module):
    def __init__(self, cin: int, c: int, k: int = 3, sk: int = 1):
        super().__init__()
        self.c1, self.b1 = conv(cin, c, k, 2), nn.BatchNorm2d(c)
        self.c2, self.b2 = conv(c, c, 3), nn.BatchNorm2d(c)
        self.cs, self.bs = conv(cin, c, sk, 2), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + self.bs(self.cs(x)))


class Up(nn.Module):
    def __init__(self, cin: int, c: int):
        super().__init__()
        self.c1, self.b1 = conv(cin, c, 3), nn.BatchNorm2d(c)
        self.c2, self.b2 = conv(c, c, 3), nn.BatchNorm2d(c)
        self.cs, self.bs = conv(cin, c, 1), nn.BatchNorm2d(c)

    def forward(self, x):
        u = F.interpolate(x, scale_factor=2, mode="nearest")
        y = F.relu(self.b1(self.c1(u)))
        return F.relu(self.b2(self.c2(y)) + self.bs(self.cs(u)))


class Encoder(nn.Module):
    """ResNet18 without the max-pool, 1 input channel, d_z outputs (thesis §4.3.1)."""

    def __init__(self, d_z: int, w: int = 64, stem_k: int = 7, k: int = 3, sk: int = 1):
        super().__init__()
        self.stem, self.stem_bn = conv(1, w, stem_k, 2), nn.BatchNorm2d(w)
        self.body = nn.Sequential(Basic(w), Basic(w), Down(w, 2 * w, k, sk), Basic(2 * w),
                                  Down(2 * w, 4 * w, k, sk), Basic(4 * w), Down(4 * w, 8 * w, k, sk), Basic(8 * w))
        self.fc = nn.Linear(8 * w, d_z)

    def forward(self, x):
        x = self.body(F.relu(self.stem_bn(self.stem(x))))
        return self.fc(x.mean(dim=(-2, -1)))


class Decoder(nn.Module):
    """ResNet18-like density decoder with nearest ×2 upsampling: [B, d_z] → [B, 1, 48, 128]."""

    def __init__(self, d_z: int, w: int = 64, h0: int = 3, w0: int = 8):
        super().__init__()
        self.shape = (8 * w, h0, w0)
        self.fc = nn.Linear(d_z, 8 * w * h0 * w0)
        self.body = nn.Sequential(Basic(8 * w), Basic(8 * w), Up(8 * w, 4 * w), Basic(4 * w), Up(4 * w, 2 * w),
                                  Basic(2 * w), Up(2 * w, w), Basic(w))
        self.head1, self.head_bn = conv(w, w // 2, 3), nn.BatchNorm2d(w // 2)
        self.head2 = conv(w // 2, 1, 3, bias=True)

    def forward(self, z):
        x = F.relu(self.fc(z).reshape(z.shape[0], *self.shape))
        x = self.body(x)
        x = F.relu(self.head_bn(self.head1(F.interpolate(x, scale_factor=2, mode="nearest"))))
        return self.head2(x)


class EagerMTL(nn.Module):
    """The thesis' multi-task model (eq. 4.10) in plain PyTorch: z = E[ρ], E = D_E(z), ρ = D_ρ(z)."""

    def __init__(self, d_z: int = 2, w: int = 64, hidden: int = 128, depth: int = 6):
        super().__init__()
        self.enc = Encoder(d_z, w)
        layers: list[nn.Module] = []
        d = d_z
        for _ in range(depth - 1):
            layers += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        layers.append(nn.Linear(d, 1))
        self.dec_E = nn.Sequential(*layers)
        self.dec_rho = Decoder(d_z, w)

    def forward(self, rho):
        z = self.enc(rho)
        return {"z": z, "E": self.dec_E(z), "rho": self.dec_rho(z)}


# ------------------------------------------------------------------------------ the bkdsl model
def bkdsl_model(d_z: int = 2, spec: str = "specs/u236_mtl.bk") -> nn.Module:
    import bkdsl

    c = bkdsl.compile_file(str(ROOT / spec), overrides={"train.model": f"mtl(d_z = {d_z})"})
    return c.build_model(c.train_block().get("model"))


def copy_weights(src: nn.Module, dst: nn.Module) -> int:
    """Copy parameters and buffers in registration order; shapes must match one to one."""
    s, d = list(src.state_dict().values()), dst.state_dict()
    if len(s) != len(d):
        raise ValueError(f"{len(s)} tensors vs {len(d)}")
    new = {}
    for (k, v), w in zip(d.items(), s):
        if v.shape != w.shape:
            raise ValueError(f"{k}: {tuple(v.shape)} vs {tuple(w.shape)}")
        new[k] = w.clone()
    dst.load_state_dict(new)
    return len(new)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------ timing
def cyl_weights(nr: int, nz: int, device) -> torch.Tensor:
    r = (torch.arange(nr, device=device, dtype=torch.float64) + 0.5) * DR
    return (2 * math.pi * r * DR * DR)[:, None].expand(nr, nz).float().contiguous()


def make_step(model: nn.Module, opt, w: torch.Tensor, bf16: bool, device):
    def step(x, e):
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
        with ctx:
            out = model(rho=x)
        rp, ep = out["rho"].float(), out["E"].float()
        loss = F.mse_loss(ep.reshape(e.shape), e) + ALPHA * (((rp - x.float()) ** 2) * w).flatten(1).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def time_config(model: nn.Module, cfg: str, x: torch.Tensor, e: torch.Tensor, steps: int, repeat: int, warmup: int,
                device) -> dict:
    bf16 = "bf16" in cfg
    cl = "cl" in cfg.split("_")
    if cl:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    run = model
    t_compile = 0.0
    if "compile" in cfg or "cudagraphs" in cfg or "autotune" in cfg:
        mode = {"cudagraphs": "reduce-overhead", "autotune": "max-autotune-no-cudagraphs"}.get(cfg.split("_")[-1])
        run = torch.compile(model, mode=mode)
    fused = device.type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused)
    w = cyl_weights(x.shape[-2], x.shape[-1], device)
    step = make_step(run, opt, w, bf16, device)
    t0 = time.perf_counter()
    for i in range(warmup):
        loss = step(x, e)
        if i == 0:
            sync(device)
            t_compile = time.perf_counter() - t0
    sync(device)
    rates = []
    for _ in range(repeat):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(steps):
                loss = step(x, e)
            b.record()
            torch.cuda.synchronize()
            dt_s = a.elapsed_time(b) / 1e3
        else:
            t = time.perf_counter()
            for _ in range(steps):
                loss = step(x, e)
            dt_s = time.perf_counter() - t
        rates.append(steps * x.shape[0] / dt_s)
    return {"samples_per_s": statistics.median(rates), "windows": rates, "first_step_s": round(t_compile, 3),
            "loss_finite": bool(torch.isfinite(loss).item()), "step_ms": 1e3 * x.shape[0] / statistics.median(rates)}


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step_flops(model: nn.Module, x: torch.Tensor, e: torch.Tensor, device) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    w = cyl_weights(x.shape[-2], x.shape[-1], device)
    fc = FlopCounterMode(display=False)
    with fc:
        out = model(rho=x)
        loss = F.mse_loss(out["E"].reshape(e.shape), e) + ALPHA * (((out["rho"] - x) ** 2) * w).flatten(1).sum(1).mean()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(fc.get_total_flops())


def profile_table(model: nn.Module, x: torch.Tensor, e: torch.Tensor, device, bf16: bool, steps: int = 5) -> str:
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    step = make_step(model, opt, cyl_weights(x.shape[-2], x.shape[-1], device), bf16, device)
    for _ in range(3):
        step(x, e)
    sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step(x, e)
        sync(device)
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    try:
        return prof.key_averages().table(sort_by=key, row_limit=30)
    except Exception:  # key names moved between torch versions
        return prof.key_averages().table(sort_by="self_" + ("device" if device.type == "cuda" else "cpu") + "_time_total",
                                         row_limit=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--d_z", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--configs", default="fp32,bf16_cl,bf16_cl_compile,bf16_cl_cudagraphs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--runner", type=int, default=0, help="also time `bkdsl train` itself on this many synthetic samples")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 48, 128, generator=g).to(device)
    e = torch.rand(args.batch, 1, generator=g).to(device)

    torch.manual_seed(0)
    eager = EagerMTL(args.d_z).to(device)
    ours = bkdsl_model(args.d_z).to(device)
    n_copied = copy_weights(eager, ours)
    eager.eval(), ours.eval()
    with torch.no_grad():
        a, b = eager(x[:8]), ours(rho=x[:8])
    max_err = max(float((a[k] - b[k]).abs().max()) for k in ("z", "E", "rho"))
    eager.train(), ours.train()
    flops = train_step_flops(ours, x, e, device)
    res: dict = {
        "name": "u236_throughput", "date": dt.date.today().isoformat(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "triton": _triton_version(), "python": platform.python_version(),
        "inputs": "random tensors of the thesis' shapes (throughput only; no physics)",
        "batch": args.batch, "image": [1, 48, 128], "d_z": args.d_z,
        "params": {"bkdsl": n_params(ours), "eager": n_params(eager)}, "tensors_copied": n_copied,
        "max_error_eval_outputs": max_err,
        "train_step_flops_per_sample": flops / args.batch,
        "steps_per_window": args.steps, "windows": args.repeat, "contenders": {},
    }
    print(json.dumps({k: res[k] for k in ("device", "params", "max_error_eval_outputs", "train_step_flops_per_sample")}))
    for cfg in [c for c in args.configs.split(",") if c]:
        for name, factory in (("bkdsl", lambda: bkdsl_model(args.d_z)), ("eager", lambda: EagerMTL(args.d_z))):
            torch.manual_seed(0)
            m = factory().to(device)
            try:
                r = time_config(m, cfg, x.clone(), e.clone(), args.steps, args.repeat, args.warmup, device)
                r["tflops"] = r["samples_per_s"] * res["train_step_flops_per_sample"] / 1e12
            except Exception as ex:  # a failing configuration is recorded, not fatal
                r = {"error": f"{type(ex).__name__}: {ex}"[:500]}
            res["contenders"].setdefault(cfg, {})[name] = r
            print(cfg, name, json.dumps({k: v for k, v in r.items() if k != "windows"}), flush=True)
            _write(args.out, res)
            del m
            if device.type == "cuda":
                torch.cuda.empty_cache()
            torch._dynamo.reset()
        c = res["contenders"][cfg]
        if "samples_per_s" in c.get("bkdsl", {}) and "samples_per_s" in c.get("eager", {}):
            c["ratio_bkdsl_over_eager"] = c["bkdsl"]["samples_per_s"] / c["eager"]["samples_per_s"]
    best_cfg, best = None, 0.0
    for cfg, c in res["contenders"].items():
        s = c.get("bkdsl", {}).get("samples_per_s", 0.0)
        if s > best:
            best_cfg, best = cfg, s
    res["best"] = {"config": best_cfg, "samples_per_s": best}
    if best:
        total = THESIS_TRAIN_SAMPLES * THESIS_EPOCHS
        res["thesis_run"] = {
            "samples": total, "thesis_gpu_hours": THESIS_GPU_HOURS,
            "thesis_implied_samples_per_s": total / (THESIS_GPU_HOURS * 3600),
            "ours_hours": total / best / 3600, "speedup_vs_thesis": best / (total / (THESIS_GPU_HOURS * 3600)),
            "target_samples_per_s": 15000, "target_met": best >= 15000,
        }
    if args.runner:
        for label, extra in (("bf16_cl_resident", {}), ("bf16_cl_resident_compile", {"train.compile": "true"})):
            try:
                res.setdefault("runner", {})[label] = runner_throughput(args.runner, device, extra)
            except Exception as ex:
                res.setdefault("runner", {})[label] = {"error": f"{type(ex).__name__}: {ex}"[:500]}
            print("runner", label, json.dumps(res["runner"][label]), flush=True)
            _write(args.out, res)
    out = Path(args.out)
    path = _write(args.out, res)
    print("wrote", path)
    if not args.no_profile and best_cfg is not None:
        bf16 = "bf16" in best_cfg
        torch.manual_seed(0)
        m = bkdsl_model(args.d_z).to(device)
        xx = x
        if "cl" in best_cfg.split("_"):
            m = m.to(memory_format=torch.channels_last)
            xx = x.contiguous(memory_format=torch.channels_last)
        # the eager-mode table (compiled graphs hide the per-op breakdown behind fused kernels)
        table = profile_table(m, xx, e, device, bf16)
        (out / f"{res['date']}-u236_throughput-profile.txt").write_text(
            f"torch.profiler, bkdsl mtl(d_z = {args.d_z}), batch {args.batch}, config {best_cfg} without compile, "
            f"{res['device']}\n\n" + table + "\n")
        res["profile"] = str(out / f"{res['date']}-u236_throughput-profile.txt")
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(table)


def _write(out: str, res: dict) -> Path:
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    path = o / f"{res['date']}-u236_throughput.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    return path


def runner_throughput(n: int, device, extra: dict) -> dict:
    """`bkdsl train specs/u236_mtl.bk` itself (data gathering, flip augmentation, normalisation, loss, the
    finite-loss check, evaluation with the parity metrics) on n synthetic stand-in samples
    (tests/u236/synthetic.py: shapes of the real data, no physics), bf16, channels-last, resident data."""
    import tempfile

    import bkdsl
    from bkdsl.components import data_sources as T
    from bkdsl.train.loop import run
    from bkdsl.train.plan import plan_from_compiled

    sys.path.insert(0, str(ROOT))
    from tests.u236 import synthetic

    T.NuclearDensitiesSource.load = lambda self, seed, base_dir=None: T.name_grid_axes(synthetic.make(n, seed))
    ov = {"train.epochs": "3", "data.samples": str(n), **extra}
    c = bkdsl.compile_file(str(ROOT / "specs/u236_mtl.bk"), overrides=ov)
    plan = plan_from_compiled(c, overrides=ov, device=device.type, precision="bf16")
    plan.config.model_plots = []
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        fin = run(plan, d, quiet=True)
        wall = time.perf_counter() - t
        recs = [json.loads(x) for x in (Path(d) / "metrics.jsonl").read_text().splitlines() if x.strip()]
    ep = [r for r in recs if r.get("event") == "epoch"]
    return {"samples": n, "epochs": len(ep), "samples_per_s_training_steps": fin["samples_per_s"], "wall_s": round(wall, 2),
            "epoch_elapsed_s": [r["elapsed_s"] for r in ep], "data": "synthetic stand-in (tests/u236/synthetic.py)",
            "overrides": ov}


def _triton_version() -> str | None:
    try:
        import triton

        return triton.__version__
    except Exception:
        return None


if __name__ == "__main__":
    main()
