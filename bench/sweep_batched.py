"""The thesis' 9-run grid (d_z × α) of the ²³⁶U multi-task model as batched steps, against one run alone.

Model: ``mtl(d_z)`` of specs/u236_mtl.bk compiled by bkdsl (ResNet18 encoder, ResNet18-like density
decoder, 6-layer MLP energy decoder), loss L = mse(E) + α ∫d³r (ρ_pred − ρ)² on the cylindrical 0.4 fm
grid, Adam (lr 1e-4, fused on CUDA), batch 128 per run — the recipe of bench/u236_throughput.py. Grid:
d_z ∈ {1, 2, 3} × α ∈ {1e-4, 1e-3, 1e-2} fm⁻³, each run its own seed.

Contenders, all in this process, on random inputs of the thesis' shapes (throughput, not physics):

* ``single_eager``      one run, bf16 autocast, channels-last, eager (bkdsl train's default path)
* ``single_cudagraphs`` one run, the same under torch.compile(mode="reduce-overhead") (the best single
                         run of bench/u236_throughput.py, 14 033 samples/s on 2026-11-22)
* ``grid_grouped``      the 9 runs as bkdsl/train/batched.py trains them: one batched group per d_z
                         (3 groups of 3 runs, :class:`bkdsl.train.batched.StackedModels`: stacked parameters,
                         vmap(functional_call)), a per-run fused Adam over each run's aliases, bf16 autocast;
                         one iteration = one step of every group (9 × 128 samples); NCHW
* ``grid_grouped_cl``   the same with the channels-last layout of StackedModels (what ``bkdsl train --sweep``
                         does on CUDA for u236_mtl.bk, whose train block sets ``channels_last = true``)
* ``grid_same_shape_cl`` 9 runs of one d_z in ONE group (what zero-padding d_z to 3 would give): the
                         upper bound of the grouping decision
* ``grid_grouped_compiled_cl``  grid_grouped_cl with each group's vmapped forward under torch.compile
                         (with ``--compile``, last, when the budget allows)

Correctness first (fp32, TF32 off): each group's batched step against the same runs stepped one at a
time (plain module call, per-run Adam) from identical weights on one batch: the gradients of the first
step per run (norm-wise ‖g_batched − g_alone‖/‖g_alone‖ ≤ 1e-2: measured 8e-6 for d_z = 2, and 2.9e-3 for
d_z = 1 at the CPU smoke size, where the density decoder's BatchNorm sees channels that vary only through
one latent scalar over 4 samples and divides round-off by a small variance), and the losses of ``--check-steps``
steps (the first, a pure forward, within 1e-4 relative — cuDNN's grouped and ungrouped convolutions
round differently — later ones within 1e-3). The check fails closed: a NaN, an Inf, an exception or an
error over tolerance marks it failed, no aggregate is reported and the script exits 1. The weights
after the steps are recorded but not gated: Adam's first steps are lr·sign(g), so an element whose
gradient is pure round-off moves by ±lr either way (a wrong rate, α or batch moves the losses by far more).

Timing: ``triton.testing.do_bench`` (median, L2 flushed) on CUDA after three untimed steps (cuDNN's
algorithm search); a perf_counter median on the CPU (smoke test only).

    python bench/sweep_batched.py --out /tmp/out/sweep_batched.json            # H200
    python bench/sweep_batched.py --device cpu --width 8 --hidden 16 --batch 4 --dz 1,2 --alpha 1e-3,1e-2 \\
        --contenders single_eager,grid_grouped --out /tmp/sweep_smoke.json      # CPU smoke (seconds)
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bkdsl  # noqa: E402
from bkdsl.train.batched import StackedModels  # noqa: E402

DR = 0.4          # fm, the grid step of specs/u236_mtl.bk
LR = 1e-4         # the thesis' Adam rate
TARGET_AGGREGATE = 45_000
TARGET_SINGLE = 15_000
CONTENDERS = ("single_eager", "single_cudagraphs", "grid_grouped", "grid_grouped_cl", "grid_same_shape",
              "grid_same_shape_cl", "grid_grouped_compiled", "grid_grouped_compiled_cl")


def cyl_weights(nr: int, nz: int, device) -> torch.Tensor:
    """w_ij = 2π r_i Δr Δz (fm³): ∫d³r f ≈ Σ_ij f_ij w_ij on the axial (r, z) grid, r_i = (i + ½) Δr."""
    r = (torch.arange(nr, device=device, dtype=torch.float64) + 0.5) * DR
    return (2 * math.pi * r * DR * DR)[:, None].expand(nr, nz).float().contiguous()


def mtl_loss(out: dict, rho: torch.Tensor, e: torch.Tensor, alpha: float, w: torch.Tensor) -> torch.Tensor:
    """L = mean (E_pred − E)² + α · mean_b Σ_ij (ρ_pred − ρ)²_ij w_ij   (thesis eqs. 4.11–4.13)."""
    rp, ep = out["rho"].float(), out["E"].float()
    return F.mse_loss(ep.reshape(e.shape), e) + alpha * (((rp - rho.float()) ** 2) * w).flatten(1).sum(1).mean()


class Models:
    """bkdsl-compiled ``mtl(d_z, width, hidden)`` models, one compilation per d_z."""

    def __init__(self, width: int, hidden: int):
        self.width, self.hidden, self.compiled = width, hidden, {}

    def build(self, d_z: int, seed: int) -> torch.nn.Module:
        if d_z not in self.compiled:
            call = f"mtl(d_z = {d_z}, width = {self.width}, hidden = {self.hidden})"
            self.compiled[d_z] = bkdsl.compile_file(str(ROOT / "specs" / "u236_mtl.bk"), overrides={"train.model": call})
        c = self.compiled[d_z]
        torch.manual_seed(seed)
        return c.build_model(c.train_block().get("model"))


def adam(model: torch.nn.Module, device) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=LR, fused=device.type == "cuda")


# ------------------------------------------------------------------------------------------ steps
class Group:
    """One batched group: R runs of one d_z with their α, stacked; a per-run Adam over the aliases."""

    def __init__(self, models: list[torch.nn.Module], alphas: list[float], device, compile_fwd: bool = False,
                 channels_last: bool = False):
        self.models = [m.to(device).train() for m in models]
        self.alphas = alphas
        self.stack = StackedModels(self.models, channels_last=channels_last)
        self.opts = [adam(m, device) for m in self.models]
        self.fwd = torch.compile(self.stack.__call__) if compile_fwd else self.stack

    def backward(self, x: torch.Tensor, e: torch.Tensor, w: torch.Tensor, bf16: bool) -> list[torch.Tensor]:
        """x: [R, B, 1, 48, 128], e: [R, B, 1]; every run's loss, and its gradient in its own parameters."""
        ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(x.device.type, enabled=False)
        with ctx:
            out = self.fwd({"rho": x})
        losses = [mtl_loss({k: v[r] for k, v in out.items()}, x[r], e[r], a, w) for r, a in enumerate(self.alphas)]
        torch.stack(losses).sum().backward()
        self.stack.grads_to_models()
        return losses

    def step(self, x: torch.Tensor, e: torch.Tensor, w: torch.Tensor, bf16: bool) -> list[torch.Tensor]:
        """One training step of every run (backward, then each run's Adam); the per-run losses."""
        losses = self.backward(x, e, w, bf16)
        for o in self.opts:
            o.step()
            o.zero_grad(set_to_none=True)
        return losses


def single_step(model, opt, x, e, alpha, w, bf16: bool):
    ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(x.device.type, enabled=False)
    with ctx:
        out = model(rho=x)
    loss = mtl_loss(out, x, e, alpha, w)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


# ------------------------------------------------------------------------------------------ check
def check(models: Models, grid: list[tuple[int, float, int]], batch: int, steps: int, device) -> dict:
    """Each d_z group's batched step against its runs stepped one at a time, fp32 (TF32 off)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator().manual_seed(1)
    w = cyl_weights(48, 128, device)
    res = {"steps": steps, "batch": batch, "groups": {}, "channels_last_stack": False,
           "tolerance": {"loss_first_rel": 1e-4, "loss_rel": 1e-3, "grad_rel_norm": 1e-2},
           "info": "weights after the steps are reported, not gated: Adam's first steps are lr·sign(g), so an "
                   "element whose gradient is round-off moves by ±lr on either side"}
    ok = True
    try:
        for d_z in sorted({d for d, _, _ in grid}):
            runs = [(a, s) for d, a, s in grid if d == d_z]
            ref = [models.build(d_z, s).to(device).train() for _, s in runs]
            init = [[p.detach().clone() for p in m.parameters()] for m in ref]
            # the NCHW stack, the layout the trainer uses (the channels-last stack fails under vmap on CUDA)
            bat = Group([copy.deepcopy(m) for m in ref], [a for a, _ in runs], device, channels_last=False)
            ref_opts = [adam(m, device) for m in ref]
            x = bat.stack.stack_inputs([torch.rand(batch, 1, 48, 128, generator=g).to(device) for _ in runs])
            e = torch.rand(len(runs), batch, 1, generator=g).to(device)
            # the gradients of the first step, norm-wise per run: ‖g_batched − g_alone‖ / ‖g_alone‖
            bat.backward(x, e, w, bf16=False)
            gerr = 0.0
            for r, (mb, mr) in enumerate(zip(bat.models, ref)):
                mr.zero_grad(set_to_none=True)
                mtl_loss(mr(rho=x[r]), x[r], e[r], runs[r][0], w).backward()
                gb = torch.cat([p.grad.flatten() for p in mb.parameters()])
                gr = torch.cat([p.grad.flatten() for p in mr.parameters()])
                gerr = max(gerr, _finite(float((gb - gr).norm() / gr.norm())))
                mb.zero_grad(set_to_none=True)
                mr.zero_grad(set_to_none=True)
            loss_err, first_err = 0.0, 0.0
            for k in range(steps):
                lb = torch.stack(bat.step(x, e, w, bf16=False)).detach()
                lr_ = torch.stack([single_step(m, o, x[r], e[r], runs[r][0], w, False).detach()
                                   for r, (m, o) in enumerate(zip(ref, ref_opts))])
                rel = float(((lb - lr_).abs() / lr_.abs()).max())
                rel = rel if math.isfinite(rel) and bool(torch.isfinite(lb).all()) else float("inf")
                first_err = rel if k == 0 else first_err
                loss_err = max(loss_err, rel)
            werr, uerr = 0.0, 0.0
            for mb, mr, p0 in zip(bat.models, ref, init):
                pb = torch.cat([p.detach().flatten() for p in mb.parameters()])
                pr = torch.cat([p.detach().flatten() for p in mr.parameters()])
                d0 = pr - torch.cat([p.flatten() for p in p0])
                werr = max(werr, _finite(float((pb - pr).abs().max())))
                uerr = max(uerr, _finite(float((pb - pr).norm() / d0.norm())))
            good = (first_err <= 1e-4) and (loss_err <= 1e-3) and (gerr <= 1e-2)
            ok = ok and good
            res["groups"][str(d_z)] = {"runs": len(runs), "loss_first_step_max_rel_error": first_err,
                                       "loss_max_rel_error": loss_err, "grad_max_rel_error": gerr,
                                       "weights_max_abs_error_info": werr, "update_max_rel_error_info": uerr,
                                       "pass": good}
            del ref, bat, ref_opts
    except Exception as ex:  # a check that cannot run is a failed check
        ok = False
        res["error"] = f"{type(ex).__name__}: {ex}"[:500]
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    res["pass"] = ok
    return res


# ------------------------------------------------------------------------------------------ timing
def _finite(v: float) -> float:
    return v if math.isfinite(v) else float("inf")


def time_ms(fn, device, rep_ms: int) -> float:
    for _ in range(3):  # cuDNN's algorithm search and allocator warm-up, untimed
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=max(50, rep_ms // 5), rep=rep_ms, return_mode="median"))
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def contender(name: str, models: Models, grid, args, device) -> tuple[float, int]:
    """(ms per iteration, samples per iteration)."""
    g = torch.Generator().manual_seed(2)
    w = cyl_weights(48, 128, device)
    B = args.batch
    if name.startswith("single"):
        m = models.build(2, 0).to(device).train()
        x = torch.rand(B, 1, 48, 128, generator=g).to(device)
        e = torch.rand(B, 1, generator=g).to(device)
        if device.type == "cuda":
            m = m.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        run = torch.compile(m, mode="reduce-overhead") if name == "single_cudagraphs" else m
        opt = adam(m, device)
        return time_ms(lambda: single_step(run, opt, x, e, 1e-3, w, args.bf16), device, args.rep_ms), B
    cl = name.endswith("_cl") and device.type == "cuda"
    if name.startswith("grid_same_shape"):
        groups = [Group([models.build(2, s) for _, _, s in grid], [a for _, a, _ in grid], device, channels_last=cl)]
    else:
        by_dz: dict[int, list] = {}
        for d, a, s in grid:
            by_dz.setdefault(d, []).append((a, s))
        groups = [Group([models.build(d, s) for _, s in runs], [a for a, _ in runs], device,
                        compile_fwd="compiled" in name, channels_last=cl) for d, runs in by_dz.items()]
    data = [(gr.stack.stack_inputs([torch.rand(B, 1, 48, 128, generator=g).to(device) for _ in gr.models]),
             torch.rand(len(gr.models), B, 1, generator=g).to(device)) for gr in groups]

    def step():
        for gr, (x, e) in zip(groups, data):
            gr.step(x, e, w, args.bf16)
    return time_ms(step, device, args.rep_ms), B * sum(len(gr.models) for gr in groups)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dz", default="1,2,3")
    ap.add_argument("--alpha", default="1e-4,1e-3,1e-2", help="fm^-3")
    ap.add_argument("--contenders", default="single_eager,grid_grouped,grid_same_shape,single_cudagraphs,"
                                            "grid_grouped_cl")
    ap.add_argument("--compile", action="store_true", help="also grid_grouped_compiled_cl (last; skipped if the budget is short)")
    ap.add_argument("--check-steps", type=int, default=2)
    ap.add_argument("--check-batch", type=int, default=16)
    ap.add_argument("--rep-ms", type=int, default=1500, help="do_bench's timing window per contender")
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--budget", type=float, default=200.0, help="seconds; contenders that would not fit are skipped")
    ap.add_argument("--out", default=None, help="JSON file (default bench/results/<date>-sweep_batched.json)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dzs = [int(v) for v in args.dz.split(",")]
    alphas = [float(v) for v in args.alpha.split(",")]
    grid = [(d, a, 100 * i + j) for i, d in enumerate(dzs) for j, a in enumerate(alphas)]
    names = [c for c in args.contenders.split(",") if c] + (["grid_grouped_compiled_cl"] if args.compile else [])
    unknown = [c for c in names if c not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contenders {unknown}; known: {', '.join(CONTENDERS)}")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{dt.date.today().isoformat()}-sweep_batched.json"
    res = {
        "name": "sweep_batched", "date": dt.date.today().isoformat(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "triton": _triton_version(), "python": platform.python_version(),
        "inputs": "random tensors of the thesis' shapes (throughput only; no physics)",
        "model": f"specs/u236_mtl.bk mtl(d_z, width = {args.width}, hidden = {args.hidden})",
        "batch_per_run": args.batch, "grid": {"d_z": dzs, "alpha_fm^-3": alphas, "runs": len(grid)},
        "precision": "bf16 autocast" if args.bf16 else "fp32", "optimizer": f"Adam lr {LR} per run (fused on CUDA)",
        "timing": ("triton.testing.do_bench median, L2 flushed" if device.type == "cuda" else "perf_counter median")
                  + "; one iteration = one training step of every run in the contender",
        "targets": {"aggregate_samples_per_s": TARGET_AGGREGATE, "single_samples_per_s": TARGET_SINGLE},
        "contenders": {},
    }
    res["check"] = check(Models(args.width, args.hidden), grid, args.check_batch, args.check_steps, device)
    print("check", json.dumps(res["check"]), flush=True)
    _write(out, res)
    models = Models(args.width, args.hidden)
    cost = {"single_cudagraphs": 60, "grid_grouped_compiled": 120, "grid_grouped_compiled_cl": 120}  # rough s, compile incl.
    for name in names:
        left = args.budget - (time.perf_counter() - t_start)
        if left < cost.get(name, 25):
            res["contenders"][name] = {"skipped": f"budget: {left:.0f} s left"}
            print(name, "skipped (budget)", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            ms, n = contender(name, models, grid, args, device)
            r = {"ms_per_iteration": ms, "samples_per_iteration": n, "samples_per_s": n / (ms / 1e3)}
        except Exception as ex:  # a failing contender is recorded, not fatal
            r = {"error": f"{type(ex).__name__}: {ex}"[:500]}
        r["wall_s"] = round(time.perf_counter() - t0, 1)
        res["contenders"][name] = r
        print(name, json.dumps(r), flush=True)
        _write(out, res)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()
    sps = {k: v.get("samples_per_s") for k, v in res["contenders"].items() if v.get("samples_per_s")}
    single = max((v for k, v in sps.items() if k.startswith("single")), default=None)
    grouped = max((v for k, v in sps.items() if k.startswith("grid_grouped")), default=None)
    same = max((v for k, v in sps.items() if k.startswith("grid_same_shape")), default=None)
    res["summary"] = {
        "check_pass": res["check"]["pass"],
        "single_samples_per_s": single, "single_best": max((k for k in sps if k.startswith("single")), key=sps.get, default=None),
        "aggregate_samples_per_s": grouped if res["check"]["pass"] else None,
        "aggregate_best": max((k for k in sps if k.startswith("grid_grouped")), key=sps.get, default=None),
        "same_shape_samples_per_s": same,
        "ratio_aggregate_over_single": (grouped / single) if grouped and single else None,
        "aggregate_target_met": bool(grouped and res["check"]["pass"] and grouped >= TARGET_AGGREGATE),
        "single_target_met": bool(single and single >= TARGET_SINGLE),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    _write(out, res)
    print("summary", json.dumps(res["summary"]), flush=True)
    print("wrote", out)
    return 0 if res["check"]["pass"] else 1


def _write(path: Path, res: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")


def _triton_version() -> str | None:
    try:
        import triton

        return triton.__version__
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
