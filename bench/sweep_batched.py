"""The thesis' 9-run grid (d_z × α) of the ²³⁶U multi-task model, batched three ways, against one run alone.

Model: ``mtl(d_z)`` of specs/u236_mtl.bk compiled by bkdsl (ResNet18 encoder, ResNet18-like density
decoder, 6-layer MLP energy decoder), loss L = mse(E) + α ∫d³r (ρ_pred − ρ)² on the cylindrical 0.4 fm
grid, Adam (lr 1e-4, fused on CUDA), batch 128 per run — the recipe of bench/u236_throughput.py. Grid:
d_z ∈ {1, 2, 3} × α ∈ {1e-4, 1e-3, 1e-2} fm⁻³, each run its own seed and its own mini-batch.

Contenders, all in this process, on random inputs of the thesis' shapes (throughput, not physics); bf16
autocast, channels-last on CUDA unless said otherwise; one iteration = one training step of every run:

single run (128 samples / iteration)
* ``single_eager``        bkdsl's model, eager (bkdsl train's default path)
* ``single_cudagraphs``   the same under torch.compile(mode="reduce-overhead") (inductor + CUDA graphs)
* ``single_graph_step``   torch.compile (default mode) forward, and the WHOLE step — forward, backward and a
                          fused capturable Adam — captured as one CUDA graph (no host work per step)
* ``single_max_autotune``  torch.compile(mode="max-autotune"): inductor's autotuned convolution/matmul
                          templates against cuDNN, with CUDA graphs (last: minutes of autotuning)
* ``peer_cudagraphs``     the hand-written PyTorch model of bench/u236_throughput.py (EagerMTL) under
                          torch.compile(mode="reduce-overhead"), same inputs, same optimizer; its weights
                          are bkdsl's (eval outputs compared first, ``peer_max_error``)

the 9-run grid (9 × 128 samples / iteration), runs grouped by d_z (3 groups of 3 runs)
* ``grid_sequential``     the 9 runs stepped one after another (eager): what ``--sweep-mode sequential`` does
* ``grid_sequential_graph``  the same, the 9 steps captured as one CUDA graph (no host work): the sequential
                          strategy at its best without torch.compile
* ``grid_concurrent_graph``  the 9 runs' steps on 9 CUDA streams in one CUDA graph (each run computed exactly
                          as alone; the GPU overlaps their kernels)
* ``grid_vmap``           bkdsl/train/batched.py's StackedModels: stacked parameters under
                          vmap(functional_call), per-run fused Adam over each run's aliases (NCHW: the
                          channels-last stack fails under vmap on CUDA)
* ``grid_grouped``        bkdsl/train/grouped.py's GroupedModels: each layer holds its group's runs (grouped
                          convolution with groups = R, batch norm over R·C channels, baddbmm for linear
                          layers), one fused Adam per group (= R Adams: elementwise, tested)
* ``grid_grouped_graph``  grid_grouped with the whole grid step (3 groups) captured as one CUDA graph
* ``grid_grouped_padded``  the 9 runs in ONE grouped module: the linear layers d_z sizes padded to 3 under a
                          mask (exact: GroupedLinear), whole-step CUDA graph — what ``bkdsl train --sweep``
                          does with this grid (the padding costs 0.2 % of the parameters)
* ``grid_grouped_padded_eager``  the same without the CUDA graph (the step ``bkdsl train --sweep`` takes:
                          its batched loop is eager)
* ``grid_grouped_padded_compiled``  the same under torch.compile (default mode), whole-step CUDA graph
* ``grid_grouped_compiled``  each group's module under torch.compile (default mode: inductor fuses batch
                          norm, ReLU and the adds), the whole grid step captured as one CUDA graph
* ``grid_grouped_same_shape``  the 9 runs of one d_z in ONE grouped module, whole-step CUDA graph (what
                          zero-padding d_z to 3 would give: the upper bound of grouping by shape)

Correctness first (fp32, TF32 off), fails closed: for each batching strategy (grouped, vmap) and each
d_z group, the batched step against the same runs stepped one at a time (the spec's module, per-run Adam)
from identical weights: the first step's gradients norm-wise per run (‖g_batched − g_alone‖/‖g_alone‖ ≤
1e-2), the losses of ``--check-steps`` steps (the first, a pure forward, within 1e-4 relative, later ones
within 1e-3). A NaN, an Inf, an exception or an error over tolerance fails the check: no aggregate is
reported for that strategy and the script exits 1 when the grouped check fails. Weights after the steps
are recorded, not gated (Adam's first steps are lr·sign(g): an element whose gradient is round-off moves
by ±lr either way).

Timing: ``triton.testing.do_bench`` (median, L2 flushed) on CUDA after three untimed steps (cuDNN's
algorithm search); a perf_counter median on the CPU (smoke test only). Every contender runs in
try/except (its error recorded in the JSON); the JSON is rewritten after each contender; a contender whose
rough cost exceeds what is left of ``--budget-s`` is recorded as skipped.

    python bench/sweep_batched.py --budget-s 240 --out $OUT/sweep_batched.json            # H200
    python bench/sweep_batched.py --device cpu --width 8 --hidden 16 --batch 4 --dz 1,2 --alpha 1e-3,1e-2 \\
        --contenders single_eager,grid_grouped,grid_vmap --out /tmp/sweep_smoke.json       # CPU smoke
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import platform
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bkdsl  # noqa: E402
from bkdsl.train.batched import StackedModels, auto_strategy  # noqa: E402
from bkdsl.train.grouped import GroupedModels  # noqa: E402

DR = 0.4          # fm, the grid step of specs/u236_mtl.bk
LR = 1e-4         # the thesis' Adam rate
TARGET_AGGREGATE = 45_000
TARGET_SINGLE = 15_000
SINGLES = ("single_eager", "single_cudagraphs", "single_graph_step", "single_max_autotune", "peer_cudagraphs")
GRIDS = ("grid_sequential", "grid_sequential_graph", "grid_concurrent_graph", "grid_vmap", "grid_grouped",
         "grid_grouped_graph", "grid_grouped_padded", "grid_grouped_padded_eager", "grid_grouped_compiled",
         "grid_grouped_padded_compiled",
         "grid_grouped_same_shape")
CONTENDERS = SINGLES + GRIDS
DEFAULT = ("single_eager,grid_grouped_padded,grid_grouped_padded_eager,grid_sequential_graph,grid_vmap,"
           "single_cudagraphs,peer_cudagraphs,single_graph_step,grid_concurrent_graph,grid_grouped_graph,"
           "grid_grouped_same_shape,grid_grouped_padded_compiled,grid_grouped,grid_sequential,grid_grouped_compiled,"
           "single_max_autotune")
# rough cost in seconds (compilation included) of each contender on an H200, for the budget
COST = {"single_cudagraphs": 60, "peer_cudagraphs": 50, "single_graph_step": 60, "grid_grouped_compiled": 120,
        "grid_sequential": 20, "grid_vmap": 25, "grid_grouped": 15, "grid_grouped_graph": 15,
        "grid_grouped_same_shape": 15, "single_eager": 10, "grid_sequential_graph": 20, "grid_concurrent_graph": 20,
        "grid_grouped_padded": 15, "grid_grouped_padded_eager": 15, "grid_grouped_padded_compiled": 90,
        "single_max_autotune": 240}


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


def adam(params, device, capturable: bool = False, fused: bool = True) -> torch.optim.Optimizer:
    """Adam lr 1e-4; fused on CUDA unless ``fused=False`` (the check: a padded run's parameters are strided
    slices of the grouped storage, which the multi-tensor foreach path handles and the trainer uses)."""
    cuda = device.type == "cuda"
    return torch.optim.Adam(params, lr=LR, fused=cuda and fused, foreach=None if cuda and fused else False,
                            capturable=capturable and cuda)


def autocast(device, bf16: bool, cache: bool = True):
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return torch.autocast(device.type, enabled=False)


# ------------------------------------------------------------------------------------------ groups
class Group:
    """R runs of one d_z with their α, batched by ``strategy`` (``grouped``: GroupedModels; ``vmap``:
    StackedModels); ``one_adam``: one Adam over the grouped parameters (grouped only), else one per run."""

    def __init__(self, models: list[torch.nn.Module], alphas: list[float], device, strategy: str,
                 channels_last: bool = False, one_adam: bool = False, capturable: bool = False, fused: bool = True):
        self.models = [m.to(device).train() for m in models]
        self.alphas = alphas
        self.strategy = strategy
        if strategy == "grouped":
            self.stack = GroupedModels(self.models, channels_last=channels_last)
            # output sizes per run (z is cut to each run's d_z) and the grouped forward against each run
            # alone (eval mode, fp32): a grouped form that computes something else raises here
            g = torch.Generator().manual_seed(3)
            self.stack.calibrate([{"rho": torch.rand(2, 1, 48, 128, generator=g).to(device)} for _ in self.models])
        else:
            self.stack = StackedModels(self.models, channels_last=False)
        self.one_adam = one_adam and strategy == "grouped"
        self.opts = ([adam(self.stack.module.parameters(), device, capturable, fused)] if self.one_adam
                     else [adam(m.parameters(), device, capturable, fused) for m in self.models])
        self.fwd = self.stack

    def compile(self) -> None:
        mod = torch.compile(self.stack.module)
        self.fwd = lambda inputs: {k: self.stack.ungroup(v) for k, v in mod(**inputs).items()}

    def losses(self, x: torch.Tensor, e: torch.Tensor, w: torch.Tensor, bf16: bool, cache: bool = True) -> list:
        with autocast(x.device, bf16, cache):
            out = self.fwd({"rho": x})
        rho = self.per_run_input(x)
        return [mtl_loss({k: self.stack.run_output(out, k, r) for k in out}, rho[r], e[r], a, w)
                for r, a in enumerate(self.alphas)]

    def per_run_input(self, x: torch.Tensor) -> torch.Tensor:
        """The stacked input as [R, B, 1, H, W] (a view)."""
        return self.stack.ungroup(x) if self.strategy == "grouped" else x

    def backward(self, x, e, w, bf16: bool, cache: bool = True) -> list:
        losses = self.losses(x, e, w, bf16, cache)
        torch.stack(losses).sum().backward()
        if not self.one_adam:
            self.stack.grads_to_models()
        return losses

    def step(self, x, e, w, bf16: bool, cache: bool = True, zero: bool = True) -> list:
        """One training step of every run (backward, then Adam); the per-run losses."""
        losses = self.backward(x, e, w, bf16, cache)
        for o in self.opts:
            o.step()
            if zero:
                o.zero_grad(set_to_none=True)
        return losses


def single_step(model, opt, x, e, alpha, w, bf16: bool, cache: bool = True, zero: bool = True):
    with autocast(x.device, bf16, cache):
        out = model(rho=x)
    loss = mtl_loss(out, x, e, alpha, w)
    if zero:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def cuda_graph(step, opts) -> callable:
    """Capture ``step`` (forward, backward, optimizer step on static tensors) as one CUDA graph after
    three eager warm-up steps on a side stream (cuDNN's algorithm search, the optimizers' state); returns
    the replay. The gradients of the captured backward live in the graph's pool and are overwritten by
    each replay (no zeroing inside the graph)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            for o in opts:
                o.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(s)
    for o in opts:
        o.zero_grad(set_to_none=True)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    return g.replay


# ------------------------------------------------------------------------------------------ check
def check(models: Models, grid: list[tuple[int, float, int]], batch: int, steps: int, device, strategy: str) -> dict:
    """Each d_z group's batched step (``strategy``) against its runs stepped one at a time, fp32 (TF32 off)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator().manual_seed(1)
    w = cyl_weights(48, 128, device)
    res = {"strategy": strategy, "steps": steps, "batch": batch, "groups": {},
           "tolerance": {"loss_first_rel": 1e-4, "loss_rel": 1e-3, "grad_rel_norm": 1e-2}}
    ok = True
    try:
        if strategy == "grouped_padded":      # all runs in one module, d_z padded
            sets = {"all": [(d, a, s) for d, a, s in grid]}
        else:
            sets = {str(d_z): [(d, a, s) for d, a, s in grid if d == d_z] for d_z in sorted({d for d, _, _ in grid})}
        for label, members in sets.items():
            runs = [(a, s) for _, a, s in members]
            ref = [models.build(d, s).to(device).train() for d, _, s in members]
            init = [[p.detach().clone() for p in m.parameters()] for m in ref]
            bat = Group([copy.deepcopy(m) for m in ref], [a for a, _ in runs], device, strategy.split("_")[0],
                        channels_last=device.type == "cuda" and strategy != "vmap", fused=False)
            ref_opts = [adam(m.parameters(), device, fused=False) for m in ref]
            xs = [torch.rand(batch, 1, 48, 128, generator=g).to(device) for _ in runs]
            x = bat.stack.stack_inputs(xs)
            e = torch.rand(len(runs), batch, 1, generator=g).to(device)
            bat.backward(x, e, w, bf16=False)
            gerr = 0.0
            for r, (mb, mr) in enumerate(zip(bat.models, ref)):
                mr.zero_grad(set_to_none=True)
                mtl_loss(mr(rho=xs[r]), xs[r], e[r], runs[r][0], w).backward()
                gb = torch.cat([p.grad.flatten() for p in mb.parameters()])
                gr = torch.cat([p.grad.flatten() for p in mr.parameters()])
                gerr = max(gerr, _finite(float((gb - gr).norm() / gr.norm())))
                mb.zero_grad(set_to_none=True)
                mr.zero_grad(set_to_none=True)
            # the probe's forwards moved the BatchNorm statistics of both sides once: equal again
            loss_err, first_err = 0.0, 0.0
            for k in range(steps):
                lb = torch.stack(bat.step(x, e, w, bf16=False)).detach()
                lr_ = torch.stack([single_step(m, o, xs[r], e[r], runs[r][0], w, False).detach()
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
            res["groups"][label] = {"runs": len(runs), "loss_first_step_max_rel_error": first_err,
                                       "loss_max_rel_error": loss_err, "grad_max_rel_error": gerr,
                                       "weights_max_abs_error_info": werr, "update_max_rel_error_info": uerr,
                                       "pass": good}
            del ref, bat, ref_opts
    except Exception as ex:  # a check that cannot run is a failed check
        ok = False
        res["error"] = f"{type(ex).__name__}: {ex}"[:500]
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    res["pass"] = ok and bool(res["groups"])
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


def peer_model(d_z: int, width: int, hidden: int, src: torch.nn.Module, device) -> tuple[torch.nn.Module, float]:
    """bench/u236_throughput.py's hand-written EagerMTL with ``src``'s weights; (model, max |Δ| of the eval
    outputs against ``src`` on one random input) — a peer that computes something else fails here."""
    from u236_throughput import EagerMTL, copy_weights

    peer = EagerMTL(d_z, width, hidden).to(device)
    copy_weights(src, peer)
    x = torch.rand(4, 1, 48, 128, device=device)
    src.eval(), peer.eval()
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            a, b = src(rho=x), peer(x)
            err = max(float((a[k].float() - b[k].float()).abs().max()) for k in ("E", "rho", "z"))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    src.train(), peer.train()
    if not math.isfinite(err) or err > 1e-3:
        raise RuntimeError(f"the peer computes another function: max |Δ| = {err:g}")
    return peer, err


def contender(name: str, models: Models, grid, args, device, res: dict) -> tuple[float, int]:
    """(ms per iteration, samples per iteration)."""
    g = torch.Generator().manual_seed(2)
    w = cyl_weights(48, 128, device)
    B = args.batch
    cuda = device.type == "cuda"
    if name in SINGLES:
        m = models.build(2, 0).to(device).train()
        x = torch.rand(B, 1, 48, 128, generator=g).to(device)
        e = torch.rand(B, 1, generator=g).to(device)
        if name == "peer_cudagraphs":
            m, res["peer_max_error"] = peer_model(2, args.width, args.hidden, m, device)
        if cuda:
            m = m.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        if name == "single_graph_step":
            if not cuda:
                raise RuntimeError("CUDA graphs need CUDA")
            run = torch.compile(m)
            opt = adam(m.parameters(), device, capturable=True)
            fn = cuda_graph(lambda: single_step(run, opt, x, e, 1e-3, w, args.bf16, cache=False, zero=False), [opt])
            return time_ms(fn, device, args.rep_ms), B
        if name == "peer_cudagraphs":
            run = torch.compile(m, mode="reduce-overhead")
            opt = adam(m.parameters(), device)
            return time_ms(lambda: single_step(lambda rho: run(rho), opt, x, e, 1e-3, w, args.bf16), device,
                           args.rep_ms), B
        mode = {"single_cudagraphs": "reduce-overhead", "single_max_autotune": "max-autotune"}.get(name)
        run = torch.compile(m, mode=mode) if mode else m
        opt = adam(m.parameters(), device)
        return time_ms(lambda: single_step(run, opt, x, e, 1e-3, w, args.bf16), device, args.rep_ms), B
    if name.startswith(("grid_sequential", "grid_concurrent")):
        graphed = name.endswith("_graph")
        if graphed and not cuda:
            raise RuntimeError("CUDA graphs need CUDA")
        ms = [models.build(d, s).to(device).train() for d, _, s in grid]
        if cuda:
            ms = [m.to(memory_format=torch.channels_last) for m in ms]
        opts = [adam(m.parameters(), device, capturable=graphed) for m in ms]
        xs = [torch.rand(B, 1, 48, 128, generator=g).to(device) for _ in ms]
        xs = [x.contiguous(memory_format=torch.channels_last) for x in xs] if cuda else xs
        es = [torch.rand(B, 1, generator=g).to(device) for _ in ms]
        runs = list(zip([a for _, a, _ in grid], ms, opts, xs, es))
        if name == "grid_sequential":
            def fn():
                for a, m, o, x, e in runs:
                    single_step(m, o, x, e, a, w, args.bf16)
        elif name == "grid_sequential_graph":
            fn = cuda_graph(lambda: [single_step(m, o, x, e, a, w, args.bf16, cache=False, zero=False)
                                     for a, m, o, x, e in runs], opts)
        else:
            streams = [torch.cuda.Stream() for _ in runs]

            def forked():
                cur = torch.cuda.current_stream()
                for st, (a, m, o, x, e) in zip(streams, runs):
                    st.wait_stream(cur)
                    with torch.cuda.stream(st):
                        single_step(m, o, x, e, a, w, args.bf16, cache=False, zero=False)
                for st in streams:
                    cur.wait_stream(st)
            fn = cuda_graph(forked, opts)
        return time_ms(fn, device, args.rep_ms), B * len(ms)
    strategy = "vmap" if name == "grid_vmap" else "grouped"
    graphed = name not in ("grid_vmap", "grid_grouped", "grid_grouped_padded_eager")
    if graphed and not cuda:
        raise RuntimeError("CUDA graphs need CUDA")
    if name == "grid_grouped_same_shape":
        sets = [[(2, a, s) for _, a, s in grid]]
    elif name.startswith("grid_grouped_padded"):
        sets = [list(grid)]
    else:
        sets = [[(d, a, s) for d, a, s in grid if d == d_z] for d_z in dict.fromkeys(d for d, _, _ in grid)]
    groups = [Group([models.build(d, s) for d, _, s in runs], [a for _, a, _ in runs], device, strategy,
                    channels_last=cuda and strategy == "grouped", one_adam=True, capturable=graphed)
              for runs in sets]
    res.setdefault("groups_per_contender", {})[name] = [len(gr.models) for gr in groups]
    if name.endswith("_compiled"):
        for gr in groups:
            gr.compile()
    data = [(gr.stack.stack_inputs([torch.rand(B, 1, 48, 128, generator=g).to(device) for _ in gr.models]),
             torch.rand(len(gr.models), B, 1, generator=g).to(device)) for gr in groups]
    if graphed:
        fn = cuda_graph(lambda: [gr.step(x, e, w, args.bf16, cache=False, zero=False) for gr, (x, e) in zip(groups, data)],
                        [o for gr in groups for o in gr.opts])
    else:
        def fn():
            for gr, (x, e) in zip(groups, data):
                gr.step(x, e, w, args.bf16)
    return time_ms(fn, device, args.rep_ms), B * sum(len(gr.models) for gr in groups)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dz", default="1,2,3")
    ap.add_argument("--alpha", default="1e-4,1e-3,1e-2", help="fm^-3")
    ap.add_argument("--contenders", default=DEFAULT, help=f"comma-separated, run in this order; known: {', '.join(CONTENDERS)}")
    ap.add_argument("--compile", action="store_true", help="(kept for old drivers: the compiled contenders are in the default list)")
    ap.add_argument("--check-steps", type=int, default=2)
    ap.add_argument("--check-batch", type=int, default=16)
    ap.add_argument("--rep-ms", type=int, default=1000, help="do_bench's timing window per contender")
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--budget-s", "--budget", dest="budget", type=float, default=240.0,
                    help="seconds in all; a contender whose rough cost exceeds what is left is skipped")
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
    names = [c for c in args.contenders.split(",") if c]
    unknown = [c for c in names if c not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contenders {unknown}; known: {', '.join(CONTENDERS)}")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{dt.date.today().isoformat()}-sweep_batched.json"
    models = Models(args.width, args.hidden)
    res = {
        "name": "sweep_batched", "date": dt.date.today().isoformat(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "triton": _triton_version(), "python": platform.python_version(),
        "inputs": "random tensors of the thesis' shapes (throughput only; no physics)",
        "model": f"specs/u236_mtl.bk mtl(d_z, width = {args.width}, hidden = {args.hidden})",
        "batch_per_run": args.batch, "grid": {"d_z": dzs, "alpha_fm^-3": alphas, "runs": len(grid)},
        "precision": "bf16 autocast" if args.bf16 else "fp32", "optimizer": f"Adam lr {LR} (fused on CUDA)",
        "timing": ("triton.testing.do_bench median, L2 flushed" if device.type == "cuda" else "perf_counter median")
                  + "; one iteration = one training step of every run in the contender",
        "targets": {"aggregate_samples_per_s": TARGET_AGGREGATE, "single_samples_per_s": TARGET_SINGLE},
        "budget_s": args.budget, "contenders": {},
    }
    try:
        res["auto_choice"] = auto_strategy(models.build(dzs[0], 0), device)
    except Exception as ex:
        res["auto_choice"] = {"error": f"{type(ex).__name__}: {ex}"[:300]}
    res["check"] = {}
    wanted = {"grouped": any(n.startswith("grid_grouped") and "padded" not in n for n in names),
              "grouped_padded": any("padded" in n for n in names), "vmap": "grid_vmap" in names}
    for strategy in [k for k, v in wanted.items() if v]:
        left = args.budget - (time.perf_counter() - t_start)
        if left < 10:
            res["check"][strategy] = {"pass": False, "skipped": f"budget: {left:.0f} s left"}
            continue
        res["check"][strategy] = check(models, grid, args.check_batch, args.check_steps, device, strategy)
        print("check", strategy, json.dumps(res["check"][strategy]), flush=True)
        _write(out, res)
    for name in names:
        left = args.budget - (time.perf_counter() - t_start)
        if left < COST.get(name, 25) * (1 if device.type == "cuda" else 0.2):
            res["contenders"][name] = {"skipped": f"budget: {left:.0f} s left"}
            print(name, "skipped (budget)", flush=True)
            _write(out, res)
            continue
        t0 = time.perf_counter()
        cap = int(max(30, min(left - 5, 3 * COST.get(name, 25))))
        try:
            signal.signal(signal.SIGALRM, _too_long)
            signal.alarm(cap)       # a contender stuck in Python (a compilation) is stopped and recorded
            ms, n = contender(name, models, grid, args, device, res)
            signal.alarm(0)
            r = {"ms_per_iteration": ms, "samples_per_iteration": n, "samples_per_s": n / (ms / 1e3)}
            if not (math.isfinite(ms) and ms > 0):
                r = {"error": f"timing {ms!r} ms"}
        except Exception as ex:  # a failing contender is recorded, not fatal
            signal.alarm(0)
            r = {"error": f"{type(ex).__name__}: {ex}"[:500], "where": traceback.format_exc().splitlines()[-3][:200]}
        r["wall_s"] = round(time.perf_counter() - t0, 1)
        res["contenders"][name] = r
        res["summary"] = summarize(res)     # after every contender: a killed run still has one
        print(name, json.dumps(r), flush=True)
        _write(out, res)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        torch._dynamo.reset()
    res["summary"] = summarize(res)
    _write(out, res)
    print("summary", json.dumps(res["summary"]), flush=True)
    print("wrote", out)
    ok = all(c.get("pass") for c in res["check"].values()) if res["check"] else True
    return 0 if ok else 1


class ContenderTimeout(Exception):
    pass


def _too_long(signum, frame):
    raise ContenderTimeout("stopped after its time cap (3x its rough cost, within the budget)")


def summarize(res: dict) -> dict:
    """The headline numbers: a grid contender counts only when its strategy's check passed."""
    sps = {k: v["samples_per_s"] for k, v in res["contenders"].items() if v.get("samples_per_s")}
    passed = {s for s, c in res["check"].items() if c.get("pass")}

    def strategy(k: str) -> str:
        return ("vmap" if k == "grid_vmap" else "sequential" if k.startswith("grid_sequential")
                else "concurrent" if k.startswith("grid_concurrent") else "grouped")

    def checked(k: str) -> str:
        return "grouped_padded" if "padded" in k else strategy(k)

    valid = {k: v for k, v in sps.items() if k in SINGLES or checked(k) in passed | {"sequential", "concurrent"}}
    single = {k: v for k, v in valid.items() if k in SINGLES and k != "peer_cudagraphs"}
    grid9 = {k: v for k, v in valid.items() if k in GRIDS and k != "grid_grouped_same_shape"}
    s_best = max(single, key=single.get, default=None)
    g_best = max(grid9, key=grid9.get, default=None)
    by_strategy = {}
    for k, v in grid9.items():
        st = strategy(k)
        if v > by_strategy.get(st, {}).get("samples_per_s", 0):
            by_strategy[st] = {"contender": k, "samples_per_s": v}
    auto = res.get("auto_choice") or {}
    auto_st = auto.get("strategy") if isinstance(auto, dict) else None
    # the contender that is what `bkdsl train --sweep` (auto) does: its batched loop is eager, and it
    # merges this grid's d_z groups into one padded module (padding 0.2 % of the parameters)
    auto_c = {"grouped": "grid_grouped_padded_eager", "vmap": "grid_vmap", "sequential": "grid_sequential"}.get(auto_st)
    return {
        "checks_pass": {s: c.get("pass") for s, c in res["check"].items()},
        "single_samples_per_s": single.get(s_best), "single_best": s_best,
        "peer_samples_per_s": sps.get("peer_cudagraphs"),
        "ratio_single_over_peer": (single[s_best] / sps["peer_cudagraphs"]) if s_best and sps.get("peer_cudagraphs") else None,
        "aggregate_samples_per_s": grid9.get(g_best), "aggregate_best": g_best,
        "aggregate_by_strategy": by_strategy,
        "auto_strategy": auto_st, "auto_contender": auto_c,
        "auto_samples_per_s": valid.get(auto_c) if auto_c else None,
        "auto_strategy_is_fastest": (auto_st == strategy(g_best)) if auto_st and g_best else None,
        "same_shape_samples_per_s": valid.get("grid_grouped_same_shape"),
        "ratio_aggregate_over_single": (grid9[g_best] / single[s_best]) if g_best and s_best else None,
        "aggregate_target_met": bool(g_best and grid9[g_best] >= TARGET_AGGREGATE),
        "single_target_met": bool(s_best and single[s_best] >= TARGET_SINGLE),
        "train_step_gflop_per_sample_info": 12.37,
        "note": "aggregate ≥ 45 000 samples/s needs ≥ 557 TFLOP/s of training arithmetic (12.37 GFLOP per "
                "sample, bench/results/2026-11-22-u236_throughput.json)",
        "wall_s": round(sum(v.get("wall_s", 0) for v in res["contenders"].values()), 1),
    }


def _write(path: Path, res: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.replace(path)


def _triton_version() -> str | None:
    try:
        import triton

        return triton.__version__
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
