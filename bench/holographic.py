"""Holographic compression of a GPT's key/value cache (issue 16 item 3): memory kept vs reconstruction
error vs the bits-per-byte it costs, at 2×, 4× and 8×.

specs/gpt_baseline.bk (d = 64, 2 layers, 4 heads, byte-level) is trained briefly on the CPU (a small
model: its absolute bits-per-byte are far from a converged GPT's; the *cost* of compression is what is
measured). Then every attention layer's cached keys and values k, v ∈ ℝ^64 are kept as boundary
values Wᵀk ∈ ℝ^d (d = 32, 16, 8) and decoded as W Wᵀ k before attention, for two points W of the
Stiefel manifold St(64, d):

* ``ads``: the polar factor of the discretised AdS₂ bulk-to-boundary kernel (the component's
  initialisation, no data);
* ``pca``: the top-d principal subspace of the layer's keys (values) on training batches — for a
  fixed d the smallest possible reconstruction error of any W (Eckart–Young), so the best any trained
  holographic code could do.

Reported per ratio: memory kept (d/64 of the K/V cache), relative reconstruction error ‖k − WWᵀk‖/‖k‖
on validation tokens, validation bits-per-byte and its increase over the uncompressed cache.

    OMP_NUM_THREADS=1 python bench/holographic.py --steps 300 [--out results.json]

Correctness first: W = I (no compression) must reproduce the model's own logits exactly.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_physics_common import Task, write  # noqa: E402

from bkdsl.components.transformer import SelfAttention  # noqa: E402
from bkdsl.nn.holographic import ads_stiefel, fit_stiefel_pca  # noqa: E402


class CacheCodec:
    """Patches every SelfAttention: keys/values pass through W Wᵀ (per layer) and are recorded."""

    def __init__(self, model: torch.nn.Module):
        self.layers = [m for m in model.modules() if isinstance(m, SelfAttention)]
        self.w: dict[int, tuple[torch.Tensor, torch.Tensor] | None] = {i: None for i in range(len(self.layers))}
        self.record: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] | None = None
        for i, m in enumerate(self.layers):
            m.forward = self._forward(i, m)

    def _forward(self, i: int, m: SelfAttention):
        def forward(x):
            b, n, d = x.shape
            q, k, v = m.qkv(x).view(b, n, 3, d).unbind(2)
            if self.record is not None:
                self.record.setdefault(i, []).append((k.detach().reshape(-1, d), v.detach().reshape(-1, d)))
            if self.w[i] is not None:
                wk, wv = self.w[i]
                k = (k @ wk) @ wk.T           # keep Wᵀk (d numbers), decode W(Wᵀk)
                v = (v @ wv) @ wv.T
            h, dh = m.heads, d // m.heads
            q, k, v = (t.view(b, n, h, dh).transpose(1, 2) for t in (q, k, v))
            o = F.scaled_dot_product_attention(q, k, v, is_causal=m.causal)
            return m.out(o.transpose(1, 2).reshape(b, n, d))
        return forward


def bpb(task: Task, model, batches) -> float:
    tot, n = 0.0, 0
    with torch.no_grad():
        for b in batches:
            logits = task.forward(model, b)["logits"]
            tot += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["targets"].reshape(-1), reduction="sum"))
            n += b["targets"].numel()
    return tot / n / math.log(2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--max-bytes", default="400000")
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    task = Task("gpt_baseline.bk", {"data.max_bytes": a.max_bytes})
    model = task.model(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    t0 = time.perf_counter()
    for i, b in enumerate(task.batches(0)):
        if i >= a.steps:
            break
        opt.zero_grad(set_to_none=True)
        task.loss(model, b).backward()
        opt.step()
    train_s = time.perf_counter() - t0
    model.eval()
    nv = next(iter(task.val.values())).shape[0]
    bs = task.batch
    val = [{k: v[s:s + bs] for k, v in task.val.items()} for s in range(0, min(nv, a.val_batches * bs), bs)]
    train_b = [b for _, b in zip(range(4), task.batches(1))]

    with torch.no_grad():
        ref_logits = task.forward(model, val[0])["logits"]
    codec = CacheCodec(model)
    d = codec.layers[0].d
    eye = torch.eye(d)
    codec.w = {i: (eye, eye) for i in codec.w}
    with torch.no_grad():
        same = task.forward(model, val[0])["logits"]
    if not torch.allclose(same, ref_logits, atol=1e-5, rtol=1e-5):
        print("FAIL: the patched attention with W = I does not reproduce the model", file=sys.stderr)
        return 1
    base_bpb = bpb(task, model, val)
    # the caches: training batches fit the PCA frames, validation batches measure the error
    codec.w = {i: None for i in codec.w}
    codec.record = {}
    with torch.no_grad():
        for b in train_b:
            task.forward(model, b)
    train_cache = {i: (torch.cat([k for k, _ in r]), torch.cat([v for _, v in r])) for i, r in codec.record.items()}
    codec.record = {}
    with torch.no_grad():
        for b in val:
            task.forward(model, b)
    val_cache = {i: (torch.cat([k for k, _ in r]), torch.cat([v for _, v in r])) for i, r in codec.record.items()}
    codec.record = None

    rows = []
    for ratio in (2, 4, 8):
        dd = d // ratio
        for kind in ("ads", "pca"):
            if kind == "ads":
                w0 = ads_stiefel(d, dd).float()
                codec.w = {i: (w0, w0) for i in codec.w}
            else:
                codec.w = {i: (fit_stiefel_pca(k, dd).float(), fit_stiefel_pca(v, dd).float())
                           for i, (k, v) in train_cache.items()}
            errs = {}
            for i, (k, v) in val_cache.items():
                wk, wv = codec.w[i]
                errs[f"layer{i}.k"] = float((k - (k @ wk) @ wk.T).norm() / k.norm())
                errs[f"layer{i}.v"] = float((v - (v @ wv) @ wv.T).norm() / v.norm())
            b_ = bpb(task, model, val)
            rows.append({"ratio": ratio, "kept": dd / d, "boundary": dd, "frame": kind,
                         "rel_error": errs, "mean_rel_error": sum(errs.values()) / len(errs),
                         "bpb": b_, "delta_bpb": b_ - base_bpb})
            print(f"{ratio}× ({kind}): keep {dd}/{d}, mean rel. error {rows[-1]['mean_rel_error']:.3f}, "
                  f"bpb {b_:.4f} (+{b_ - base_bpb:.4f})", flush=True)
    write("holographic", {"spec": "specs/gpt_baseline.bk", "model": "gpt_baseline(d = 64, layers = 2, heads = 4)",
                          "trained": {"steps": a.steps, "optimizer": "AdamW(lr=3e-3, wd=0.1)", "train_s": round(train_s, 1),
                                      "max_bytes": a.max_bytes, "note": "small CPU-trained model"},
                          "val_tokens": sum(b["targets"].numel() for b in val), "bpb_uncompressed": base_bpb,
                          "correctness": "W = I reproduces the model's logits (allclose 1e-5)",
                          "rows": rows}, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
