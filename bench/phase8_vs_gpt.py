"""phase8 against the plain GPT baseline, both compiled from their specs, on the same bytes and batch.

One process, one training loop and one evaluation for both models (measured the same way):

  (a) equal steps   — both trained for ``--steps`` optimizer steps (cosine over the steps);
  (b) equal time    — both trained for ``--budget-s`` seconds of training (cosine over the time budget;
                      warm-up steps, i.e. compilation, are timed apart and not counted);
  ablations         — phase8 at ``--ablation-s`` each: as is, without the Green features (features = 0),
                      without pruning (τ → 0), with a Euclidean MoE;
  MoE               — per layer: load max/min share over the test batches, distance the centroids
                      travelled (Poincaré) since k-means;
  τ sweep           — on the phase8 of (b): τ at quantiles of the block products S̃_I·S̃_J, giving
                      (fraction of causal block pairs skipped, test bits per byte); then random block
                      dropping (the same number of pairs per sequence) and a sliding window (the nearest
                      skip fraction) — all three through one masked block-attention reference, so only
                      the rule differs.

Correctness first: both models are checked causal on a test batch (perturb byte j, logits before j
must not move) and the masked reference of the physics rule is compared with the module's own path.
Every test bits-per-byte figure is over the held-out *test files* (whole files, split by seed).

Writes ``<out>/phase8_vs_gpt.json`` after every part (a timeout keeps what was done) and
``<out>/phase8_vs_gpt.png``. ``--tiny``: a CPU-sized run for testing the script itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import geoopt
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bkdsl  # noqa: E402
from bkdsl.nn.hyperbolic_moe import HyperbolicMoE  # noqa: E402
from bkdsl.nn.scattering_attention import (ScatteringAttention, block_keep_mask, block_leading_score,  # noqa: E402
                                           scattering_score)
from bkdsl.train.data import split_indices  # noqa: E402
from bkdsl.train.reports import data_dependent_init  # noqa: E402
from bkdsl.components.data_sources import text_bytes_dataset  # noqa: E402

LN2 = math.log(2.0)


# ------------------------------------------------------------------------------ set-up
def compile_model(spec: str, model: str) -> torch.nn.Module:
    return bkdsl.compile_file(ROOT / "specs" / spec, overrides={"train.model": model}).module


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


class Data:
    """Windows of seq_len + 1 bytes, split by file (train / val / test = 0.9 / 0.05 / 0.05, seed 0)."""

    def __init__(self, seq_len: int, max_bytes: int, test_windows: int, dev: torch.device):
        ds = text_bytes_dataset(seq_len, max_bytes, seed=0)
        tok = torch.cat([ds.fields["tokens"], ds.fields["targets"][:, -1:]], 1)
        parts = split_indices(len(tok), [0.9, 0.05, 0.05], seed=0, groups=ds.groups)
        self.train = tok[parts["train"]]
        g = torch.Generator().manual_seed(1)
        test = tok[parts["test"]]
        self.test = test[torch.randperm(len(test), generator=g)[:test_windows]].to(dev)
        self.meta = {"files": ds.meta["files"], "bytes": ds.meta["bytes"], "train_windows": len(self.train),
                     "test_windows_total": len(test), "test_windows_used": len(self.test),
                     "train_files": int(ds.groups[parts["train"]].unique().numel()),
                     "test_files": int(ds.groups[parts["test"]].unique().numel())}
        self.dev = dev

    def batches(self, batch: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        while True:
            for idx in torch.randperm(len(self.train), generator=g).split(batch):
                if len(idx) == batch:
                    yield self.train[idx].to(self.dev, non_blocking=True)


@torch.no_grad()
def test_bpb(model: torch.nn.Module, data: Data, batch: int, autocast: bool, limit: int | None = None) -> float:
    """Mean cross-entropy over every test byte (of the first ``limit`` test windows), in bits."""
    model.eval()
    tot, n = 0.0, 0
    for w in data.test[:limit].split(batch):
        with torch.autocast(data.dev.type, torch.bfloat16, enabled=autocast):
            logits = model(w[:, :-1])["logits"]
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum")
        tot, n = tot + float(ce), n + w[:, 1:].numel()
    model.train()
    bpb = tot / n / LN2
    if not math.isfinite(bpb):
        raise FloatingPointError(f"test bits per byte is {bpb}")
    return bpb


# ------------------------------------------------------------------------------ training
def make_optimizer(kind: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    if kind == "phase8":  # the spec's optimizer: Riemannian Adam (Adam on the Euclidean parameters)
        return geoopt.optim.RiemannianAdam(model.parameters(), lr=lr)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))


def train(kind: str, model: torch.nn.Module, data: Data, *, batch: int, lr: float, steps: int | None,
          budget_s: float | None, autocast: bool, warmup_steps: int, warm: int, eval_every_s: float | None,
          eval_batch: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Train by steps (cosine over ``steps``) or by time (cosine over ``budget_s``); returns the run's
    record: steps, training seconds (warm-up apart), tokens/s, peak memory, test bpb, curve."""
    dev = data.dev
    it = data.batches(batch, seed=0)
    first = next(it)
    data_dependent_init(model, lambda m: m(first[:, :-1]))  # k-means centroids (phase8); no-op for the GPT
    opt = make_optimizer(kind, model, lr)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seq = first.shape[1] - 1

    def step(w: torch.Tensor, frac: float, k: int) -> float:
        scale = min(1.0, (k + 1) / warmup_steps) * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        for gr in opt.param_groups:
            gr["lr"] = lr * scale
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, torch.bfloat16, enabled=autocast):
            logits = model(w[:, :-1])["logits"]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        return loss.detach()

    # warm-up: compilation and autotuning, timed apart (their lr is the schedule's first)
    t0 = time.perf_counter()
    for k in range(warm):
        step(first if k == 0 else next(it), 0.0, k)
    sync(dev)
    warmup_s = time.perf_counter() - t0
    k, train_s, curve, last_eval = warm, 0.0, [], 0.0
    loss = torch.zeros(())
    while True:
        frac = (k / steps) if steps else (train_s / budget_s)
        if frac >= 1.0:
            break
        t = time.perf_counter()
        loss = step(next(it), frac, k)
        k += 1
        if k % 10 == 0 or budget_s:
            sync(dev)
        train_s += time.perf_counter() - t
        if eval_every_s and train_s - last_eval >= eval_every_s:
            last_eval = train_s
            curve.append({"step": k, "train_s": round(train_s, 3), "train_loss": float(loss),
                          "test_bpb_first128": test_bpb(model, data, eval_batch, autocast, limit=128)})
    sync(dev)
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"{kind}: training loss is {float(loss)}")
    done = k - warm
    rec = {"steps": k, "timed_steps": done, "train_s": train_s, "warmup_s": warmup_s,
           "tokens_per_s": done * batch * seq / max(train_s, 1e-9),
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
           "final_train_loss": float(loss), "test_bpb": test_bpb(model, data, eval_batch, autocast), "curve": curve}
    log(f"  {kind}: {k} steps, {train_s:.1f} s, {rec['tokens_per_s']:.0f} tok/s, test bpb {rec['test_bpb']:.4f}")
    return rec


# ------------------------------------------------------------------------------ checks
@torch.no_grad()
def causal_leak(model: torch.nn.Module, data: Data, autocast: bool) -> float:
    """Largest change of a logit before j when byte j changes (several j, one test batch); 0 if causal."""
    model.eval()
    x = data.test[:4, :-1].clone()
    n = x.shape[1]
    with torch.autocast(data.dev.type, torch.bfloat16, enabled=autocast):
        y0 = model(x)["logits"].float()
        worst = 0.0
        for j in sorted({1, n // 3, n // 2 + 1, n - 1}):
            x2 = x.clone()
            x2[:, j] = (x2[:, j] + 97) % 256
            dy = (model(x2)["logits"].float() - y0).abs()
            if not torch.isfinite(dy).all():  # NaN would pass a max() silently: refuse instead
                raise FloatingPointError("non-finite logits in the causality check")
            worst = max(worst, float(dy[:, :j].max()))
    model.train()
    return worst


def moe_report(model: torch.nn.Module, data: Data, batch: int) -> list[dict[str, Any]]:
    """Per MoE layer: load shares accumulated over the test batches, max/min, centroid travel."""
    layers = [m for m in model.modules() if isinstance(m, HyperbolicMoE)]
    acc = [torch.zeros(m.num_experts, device=data.dev) for m in layers]
    def counter(a: torch.Tensor):
        def hook(mod, args, out) -> None:  # returns None: the output is left as it is
            a.add_(mod.load)
        return hook

    hooks = [m.register_forward_hook(counter(a)) for m, a in zip(layers, acc)]
    try:
        test_bpb(model, data, batch, False)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for m, a in zip(layers, acc):
        share = (a / a.sum()).tolist()
        mx, mn = max(share), min(share)
        travel = m.centroid_travel().float().tolist()
        out.append({"metric": m.metric, "load_share": share, "load_max": mx, "load_min": mn,
                    "load_max_over_min": mx / mn if mn > 0 else None,  # None: an expert got no token
                    "idle_experts": sum(x == 0 for x in share),
                    "centroid_travel": travel, "centroid_travel_mean": sum(travel) / len(travel)})
    return out


# ------------------------------------------------------------------------------ τ sweep
def masked_block_forward(att: ScatteringAttention, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The attention of ``att`` with an explicit causal block mask keep [B, nb, nb] (the reference: token
    masks expanded from blocks). A query whose block keeps no key block takes the identity path (0)."""
    b, n, d = h.shape
    blk, heads = att.block, att.heads

    def split(x):
        return x.view(b, n, heads, d // heads).transpose(1, 2)

    q, k, v = split(att.w_q(h)), split(att.w_k(h)), split(att.w_v(h))
    tok = keep.repeat_interleave(blk, 1).repeat_interleave(blk, 2)[:, :n, :n]
    tok = tok & torch.ones(n, n, dtype=torch.bool, device=h.device).tril()
    active = tok.any(-1)
    tok = tok | ~active[:, :, None]
    logits = torch.einsum("bhid,bhjd->bhij", q.float(), k.float()) / math.sqrt(d // heads)
    p = torch.softmax(logits.masked_fill(~tok[:, None], float("-inf")), -1)
    o = torch.einsum("bhij,bhjd->bhid", p, v.float())
    o = torch.where(active[:, None, :, None], o, 0.0).to(h.dtype)
    return att.w_o(o.transpose(1, 2).reshape(b, n, d))


def physics_keep(att: ScatteringAttention, g: torch.Tensor, tau: float) -> torch.Tensor:
    s = block_leading_score(scattering_score(g, causal=True), att.block)
    return block_keep_mask(s, tau, att.block, causal=True)[0]


def allowed(nb: int, dev) -> torch.Tensor:
    return torch.ones(nb, nb, dtype=torch.bool, device=dev).tril()


def random_keep_like(keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per sequence, skip as many allowed (I, J ≤ I) pairs as ``keep`` does, chosen uniformly."""
    b, nb, _ = keep.shape
    al = allowed(nb, keep.device)
    idx = al.flatten().nonzero().flatten()
    out = torch.zeros_like(keep).flatten(1)
    kept = keep.flatten(1)[:, idx].sum(-1)
    for s in range(b):
        pick = idx[torch.randperm(len(idx), generator=gen)[: int(kept[s])].to(idx.device)]
        out[s, pick] = True
    return out.view_as(keep)


def window_keep(nb: int, w: int, b: int, dev) -> torch.Tensor:
    i = torch.arange(nb, device=dev)
    return ((i[:, None] - i[None, :] < w) & allowed(nb, dev)).expand(b, nb, nb)


def skipped(keep: torch.Tensor) -> float:
    nb = keep.shape[-1]
    return 1.0 - float(keep.sum()) / (keep.shape[0] * nb * (nb + 1) / 2)


def tau_sweep(model: torch.nn.Module, data: Data, batch: int, quantiles: list[float],
              log: Callable[[str], None]) -> dict[str, Any]:
    atts = [m for m in model.modules() if isinstance(m, ScatteringAttention)]
    if not atts:
        return {}
    # the block products S̃_I·S̃_J over allowed pairs, from one pass with the module's own rule
    prods: list[torch.Tensor] = []

    def grab(att, h, g):
        s = block_leading_score(scattering_score(g, causal=True), att.block)
        sig = s[:, ::att.block]
        pr = sig[:, :, None] * sig[:, None, :]
        prods.append(pr[:, allowed(sig.shape[1], sig.device)].flatten().float().cpu())
        return ScatteringAttention.forward(att, h, g)

    def run(rule) -> tuple[float, float]:
        """Test bpb and skipped fraction with every attention layer using ``rule(att, g) -> keep``."""
        fr: list[float] = []

        def fwd(att, h, g):
            keep = rule(att, g)
            fr.append(skipped(keep))
            return masked_block_forward(att, h, keep)
        for a in atts:
            a.forward = types.MethodType(fwd, a)
        try:
            bpb = test_bpb(model, data, batch, False)
        finally:
            for a in atts:
                del a.forward
        return bpb, sum(fr) / len(fr)

    for a in atts:
        a.forward = types.MethodType(grab, a)
    try:
        test_bpb(model, data, batch, False)
    finally:
        for a in atts:
            del a.forward
    allp = torch.cat(prods)
    # τ = 1e-9 keeps every block (the unpruned model); the quantiles spread the skip fractions
    taus = sorted({1e-9} | {max(float(torch.quantile(allp, q)), 1e-9) for q in quantiles})
    trained_tau = atts[0].tau
    # agreement of the masked reference with the module's own path at the trained τ
    with torch.no_grad():
        w = data.test[:2, :-1]
        outs = {}
        for name in ("module", "masked"):
            caught = []

            def hook(mod, args, out, caught=caught):
                caught.append(out.detach().float())
            if name == "masked":
                for a in atts:
                    a.forward = types.MethodType(lambda att, h, g: masked_block_forward(att, h, physics_keep(att, g, att.tau)), a)
            hs = [a.register_forward_hook(hook) for a in atts]
            try:
                model.eval()
                model(w)
            finally:
                for hh in hs:
                    hh.remove()
                for a in atts:
                    a.__dict__.pop("forward", None)
            outs[name] = caught
        ref_err = max(float((x - y).abs().max()) for x, y in zip(outs["module"], outs["masked"]))
    gen = torch.Generator().manual_seed(0)
    rows = []
    for tau in taus:
        bpb_p, sk_p = run(lambda att, g, tau=tau: physics_keep(att, g, tau))
        bpb_r, sk_r = run(lambda att, g, tau=tau: random_keep_like(physics_keep(att, g, tau), gen))
        nb = -(-data.test.shape[1] // atts[0].block)
        fracs = {w: skipped(window_keep(nb, w, 1, "cpu")) for w in range(1, nb + 1)}
        wbest = min(fracs, key=lambda w: abs(fracs[w] - sk_p))
        bpb_w, sk_w = run(lambda att, g, w=wbest: window_keep(nb, w, g.shape[0], g.device))
        rows.append({"tau": tau, "physics": {"skipped": sk_p, "test_bpb": bpb_p},
                     "random": {"skipped": sk_r, "test_bpb": bpb_r},
                     "window": {"blocks": wbest, "skipped": sk_w, "test_bpb": bpb_w}})
        log(f"  τ = {tau:.4g}: skip {sk_p:.3f} bpb physics {bpb_p:.4f} | random {bpb_r:.4f} | "
            f"window({wbest}) skip {sk_w:.3f} bpb {bpb_w:.4f}")
    for a in atts:
        a.tau = trained_tau
    return {"trained_tau": trained_tau, "masked_reference_max_abs_err": ref_err, "rows": rows}


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--tiny", action="store_true", help="CPU-sized run that tests the script")
    ap.add_argument("--device", default=None)
    ap.add_argument("--steps", type=int, default=200, help="(a) equal steps")
    ap.add_argument("--budget-s", type=float, default=90.0, help="(b) seconds of training per model")
    ap.add_argument("--ablation-s", type=float, default=15.0, help="seconds per ablation run")
    ap.add_argument("--deadline-s", type=float, default=480.0, help="skip parts that would not end before this")
    ap.add_argument("--max-bytes", type=int, default=40_000_000, help="cap on the corpus (default: all of it)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--compile-gpt", type=int, default=1, help="torch.compile the GPT (on CUDA)")
    ap.add_argument("--bf16-gpt", type=int, default=1, help="bf16 autocast for the GPT (on CUDA)")
    a = ap.parse_args()
    start = time.perf_counter()
    if a.tiny:
        a.device = a.device or "cpu"
        a.steps, a.budget_s, a.ablation_s, a.batch, a.seq_len = 6, 4.0, 2.0, 4, 64
        a.max_bytes = min(a.max_bytes, 300_000)
        p8 = "phase8(d = 32, layers = 1, heads = 2, experts = 4, blk = 16, hidden = 16)"
        gpt = "gpt_baseline(d = 32, layers = 1, heads = 2, max_len = 64)"
    else:
        p8 = "phase8(d = 256, layers = 4, heads = 8, experts = 8, blk = 64, hidden = 136)"
        gpt = f"gpt_baseline(d = 256, layers = 4, heads = 8, max_len = {a.seq_len})"
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    gpt_autocast = bool(a.bf16_gpt) and cuda
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "phase8_vs_gpt.json"
    import triton  # noqa: F401  (its version is part of the record)

    res: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "device": torch.cuda.get_device_name() if cuda else platform.processor(),
        "torch": torch.__version__, "triton": sys.modules["triton"].__version__, "tiny": a.tiny,
        "batch": a.batch, "seq_len": a.seq_len, "lr": a.lr,
        "models": {"phase8": p8, "gpt": gpt},
        "settings": {"phase8": "fp32, Riemannian Adam, bkdsl kernels (Triton on CUDA)",
                     "gpt": f"{'bf16 autocast' if gpt_autocast else 'fp32'}, AdamW(wd 0.1, β2 0.95)"
                            f"{', torch.compile' if a.compile_gpt and cuda else ''}"},
        "schedule": "linear warm-up 20 steps, cosine to 0 over the steps (a) or the time budget (b)",
        "parts_skipped": [],
    }

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    def save() -> None:
        path.write_text(json.dumps(res, indent=2, allow_nan=False) + "\n")

    def left() -> float:
        return a.deadline_s - (time.perf_counter() - start)

    data = Data(a.seq_len, a.max_bytes, 64 if a.tiny else 512, dev)
    res["data"] = data.meta
    log(f"data: {data.meta}")

    built: dict[tuple, tuple[torch.nn.Module, dict[str, torch.Tensor]]] = {}

    def build(kind: str, model: str) -> torch.nn.Module:
        """The model at its seed-0 initial weights. A model built before is reset to them (same
        weights, and torch.compile's graphs and Triton's kernels are not compiled twice)."""
        key = (kind, model, bool(a.compile_gpt and cuda and kind == "gpt"))
        if key in built:
            m, init = built[key]
            m.load_state_dict(init)
            return m
        torch.manual_seed(0)
        m = compile_model("phase8.bk" if kind == "phase8" else "gpt_baseline.bk", model).to(dev)
        init = {k: v.detach().clone() for k, v in m.state_dict().items()}
        if key[2]:
            m = torch.compile(m)
            init = {f"_orig_mod.{k}": v for k, v in init.items()}
        built[key] = (m, init)
        return m

    def run(kind: str, model: str, **kw) -> tuple[dict[str, Any], torch.nn.Module]:
        m = build(kind, model)
        autocast = gpt_autocast if kind == "gpt" else False

        def go(m):
            return train(kind, m, data, batch=a.batch, lr=a.lr, autocast=autocast, warmup_steps=20,
                         warm=2 if a.tiny else 3, eval_batch=a.batch, log=log, **kw)
        try:
            rec = go(m)
        except Exception as e:  # torch.compile fails lazily, at the first call: say so, run eager
            if not (kind == "gpt" and a.compile_gpt and cuda):
                raise
            res.setdefault("notes", []).append(f"torch.compile of the GPT failed, eager from here: {e!r}"[:2000])
            log(res["notes"][-1])
            a.compile_gpt = 0
            m = build(kind, model)
            rec = go(m)
        rec["compiled"] = bool(kind == "gpt" and a.compile_gpt and cuda)
        rec["params"] = n_params(m)
        rec["causal_leak"] = causal_leak(m, data, autocast)
        if rec["causal_leak"] > 0:
            raise AssertionError(f"{kind} is not causal: a logit before j moved by {rec['causal_leak']}")
        return rec, m

    res["params"] = {"phase8": n_params(compile_model("phase8.bk", p8)), "gpt": n_params(compile_model("gpt_baseline.bk", gpt))}
    log(f"parameters: {res['params']}")

    # (a) equal steps
    log(f"(a) equal steps: {a.steps}")
    res["equal_steps"] = {}
    for kind, model in (("gpt", gpt), ("phase8", p8)):
        res["equal_steps"][kind], _ = run(kind, model, steps=a.steps, budget_s=None, eval_every_s=None)
        save()
    if cuda and (a.compile_gpt or a.bf16_gpt):  # the GPT as phase8 runs: fp32, eager
        saved = (a.compile_gpt, gpt_autocast)
        a.compile_gpt, gpt_autocast = 0, False
        res["equal_steps"]["gpt_fp32_eager"], _ = run("gpt", gpt, steps=a.steps, budget_s=None, eval_every_s=None)
        a.compile_gpt, gpt_autocast = saved
        save()

    # (b) equal wall-clock
    log(f"(b) equal wall-clock: {a.budget_s} s each")
    res["equal_time"] = {}
    trained_p8 = None
    for kind, model in (("gpt", gpt), ("phase8", p8)):
        if left() < a.budget_s + 30:
            res["parts_skipped"].append(f"equal_time.{kind}")
            continue
        res["equal_time"][kind], m = run(kind, model, steps=None, budget_s=a.budget_s, eval_every_s=a.budget_s / 6)
        if kind == "phase8":
            trained_p8 = m
            res["equal_time"]["phase8"]["moe"] = moe_report(m, data, a.batch)
        save()

    # τ sweep on the trained phase8
    if trained_p8 is not None and left() > 20:
        log("τ sweep: physics gate vs random block dropping vs sliding window")
        res["tau_sweep"] = tau_sweep(trained_p8, data, a.batch, [0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9], log)
        save()
    else:
        res["parts_skipped"].append("tau_sweep")

    # ablations at a shorter budget
    abl = {"phase8": p8, "phase8_no_green_features": p8[:-1] + ", features = 0.0)",
           "phase8_no_pruning": p8[:-1] + ", tau = 1e-9)", "phase8_euclidean_moe": p8[:-1] + ", euclidean = true)"}
    res["ablations"] = {"budget_s": a.ablation_s}
    for name, model in abl.items():
        if left() < a.ablation_s + 15:
            res["parts_skipped"].append(f"ablations.{name}")
            continue
        rec, m = run("phase8", model, steps=None, budget_s=a.ablation_s, eval_every_s=None)
        rec.pop("curve")
        rec["moe"] = moe_report(m, data, a.batch)
        res["ablations"][name] = rec
        save()

    et = res.get("equal_time", {})
    if "gpt" in et and "phase8" in et:
        res["summary"] = {
            "equal_time_test_bpb": {k: et[k]["test_bpb"] for k in ("phase8", "gpt")},
            "equal_time_winner": min(("phase8", "gpt"), key=lambda k: et[k]["test_bpb"]),
            "tokens_per_s_ratio_gpt_over_phase8": et["gpt"]["tokens_per_s"] / et["phase8"]["tokens_per_s"],
        }
    res["wall_s"] = time.perf_counter() - start
    save()
    plot(res, out / "phase8_vs_gpt.png")
    log(f"wrote {path}")


def plot(res: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    for k, st in (("phase8", "o-"), ("gpt", "s-")):
        rec = res.get("equal_time", {}).get(k)
        if rec and rec["curve"]:
            ax.plot([c["train_s"] for c in rec["curve"]], [c["test_bpb_first128"] for c in rec["curve"]], st, label=k)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("test bits per byte")
    ax.set_title("equal wall-clock")
    ax.grid(alpha=0.3)
    ax.legend()
    ax = axes[1]
    rows = res.get("tau_sweep", {}).get("rows", [])
    for k, st in (("physics", "o-"), ("random", "x--"), ("window", "s:")):
        pts = sorted((r[k]["skipped"], r[k]["test_bpb"]) for r in rows)
        if pts:
            ax.plot(*zip(*pts), st, label={"physics": "scattering gate (τ sweep)", "random": "random blocks",
                                            "window": "sliding window"}[k])
    ax.set_xlabel("fraction of causal block pairs skipped")
    ax.set_ylabel("test bits per byte")
    ax.set_title("pruning the trained phase8")
    ax.grid(alpha=0.3)
    if rows:
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main()
