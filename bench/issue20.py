"""Issue #20 in one H200 call: every row (ours, the strongest peer, ratio, hardware floor) in one JSON.

    python bench/issue20.py --part routing   --json DIR/routing.json   --budget-s 80   # one part, one process
    python bench/issue20.py --collect DIR --out $OUT/issue20.json [--sweep-json DIR/sweep.json]
    python bench/issue20.py --table bench/results/<date>-issue20.json       # the README's table, from the JSON only
    TRITON_INTERPRET=1 python bench/issue20.py --part all --smoke --json /tmp/i20   # CPU: checks the script

bench/gpu_issue20.sh runs each part in a fresh process (a default tile must compile there, #20.3) under its
own ``timeout``, then ``--collect`` merges what the parts wrote (a part killed at its cap leaves the rows it
had: each part rewrites its JSON after every row) with the sweep's JSON (bench/sweep_batched.py).

Parts (each checks a contender against float64 — or against the eager op it replays — before timing it;
a contender that fails its check is recorded with its errors and not timed; NaN/Inf fail every check):

* ``routing`` (#20.4, #20.5): the custom op's forward + backward eager and as CUDA graphs
  (:class:`bkdsl.kernels.hyperbolic_routing.graphed.GraphedRoute`; outputs and gradients must equal the
  eager op's), with wall (do_bench), host µs to issue one call, and GPU-busy ms (torch.profiler) for
  each; the peer is the ``torch.compile``d one-matmul form, with its accuracy: the fraction of tokens
  whose chosen experts differ from the float64 answer (as a set, and the nearest one), on the bench's
  random inputs and on the hard inputs of bench/hyperbolic_routing.py.
* ``resolvent`` (#20.5): the segmented kernel's forward and forward + backward (checked, timed) first, then
  each PyTorch peer in its own process (``--peer``) under its own cap, strongest first: the
  ``torch.compile``d doubling scan (forward, then through autograd), then the ``torch.compile``d
  ``associative_scan`` over the Möbius maps (forward); a peer past its cap is killed and recorded as
  "timeout", its first-call (compile) seconds apart from its times. The dense ``torch.linalg.inv``
  (PyTorch has no banded or tridiagonal solver; O(N³) per chain) only with ``--dense-peer``, on one chain
  scaled to the batch. The strongest peer is the fastest that passes its check.
* ``delta`` (#20.2): the Triton delta rule vs fla's ``chunk_delta_rule`` at B4 H8 N4096 D128, bf16 then
  fp32, forward then forward + backward (the main rows first), both checked against one float64 truth
  (bench/delta_rule.py) at B1 H4 N1024; then the WY kernel's two inverse forms; each step's seconds logged.
* ``attention`` (#20.3): causal scattering attention at 50 % kept blocks vs FlexAttention, forward +
  backward, with the tile that ran (after any fallback) and the fallback warnings (one per tile and key).

Floors: HBM bytes / 4.8 TB/s (the H200's spec bandwidth; the measured copy bandwidth is recorded beside
it) or FLOPs / dense tensor-core peak (bf16 989.5 TFLOP/s, tf32 494.7), whichever is larger.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import sys
import time
import traceback
from pathlib import Path

if "--smoke" in sys.argv:                       # before triton is imported anywhere
    os.environ["TRITON_INTERPRET"] = "1"

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the per-op benches: their inputs and checks

HBM_BYTES_PER_S = 4.8e12        # H200 HBM3e spec
PEAK_FLOPS = {"bf16": 989.5e12, "tf32": 494.7e12}  # H200 SXM dense tensor-core peaks
PARTS = ("routing", "resolvent", "delta", "attention")


def hbm_floor_ms(nbytes: float) -> float:
    return nbytes / HBM_BYTES_PER_S * 1e3


def rows_ratio(ours: float | None, peer: float | None) -> float | None:
    ok = ours is not None and peer is not None and ours == ours and peer == peer and peer > 0
    return ours / peer if ok else None


class Part:
    """One part's record: rows, checks, times; rewritten to its JSON after every change (a part killed at
    its cap keeps what it had); ``left()`` says whether the part's budget still has ``need`` seconds."""

    def __init__(self, name: str, path: Path, budget_s: float, smoke: bool):
        self.t0, self.budget, self.smoke, self.path = time.time(), budget_s, smoke, path
        self.res = {"part": name, "smoke": smoke, "date": _dt.date.today().isoformat(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and not smoke else "cpu (smoke)",
                    "torch": torch.__version__, "triton": __import__("triton").__version__,
                    "python": platform.python_version(), "budget_s": budget_s,
                    "rows": [], "checks": {}, "time_ms": {}, "skipped": [], "errors": {}, "done": False}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.save()

    def log(self, msg: str) -> None:
        print(f"[{self.res['part']} {time.time() - self.t0:6.1f}s] {msg}", flush=True)

    def left(self, need: float = 0.0) -> bool:
        return time.time() - self.t0 + need < self.budget

    def save(self) -> None:
        self.res["wall_s"] = round(time.time() - self.t0, 1)
        self.path.write_text(json.dumps(self.res, indent=2, default=str))

    def row(self, item: str, ours: str, ours_ms, peer: str | None, peer_ms, floor_ms, floor: str, **extra) -> None:
        r = {"item": item, "ours": ours, "ours_ms": ours_ms, "peer": peer, "peer_ms": peer_ms,
             "ratio_ours_over_peer": rows_ratio(ours_ms, peer_ms), "floor_ms": floor_ms, "floor": floor,
             "ours_over_floor": rows_ratio(ours_ms, floor_ms), **extra}
        rows = self.res["rows"]  # a row given again (with more filled in) replaces the earlier one
        at = next((i for i, x in enumerate(rows) if x["item"] == item), None)
        if at is None:
            rows.append(r)
        else:
            rows[at] = r
        self.log(f"ROW {json.dumps(r, default=str)}")
        self.save()

    def guard(self, name: str, fn, need: float = 0.0):
        """fn() or None: skipped when ``need`` s do not fit, exceptions recorded (the part goes on)."""
        if need and not self.left(need):
            self.res["skipped"].append(f"{name}: budget")
            self.log(f"{name}: skipped (budget)")
            return None
        try:
            return fn()
        except Exception as e:
            self.res["errors"][name] = traceback.format_exc(limit=6)[-3000:]
            self.log(f"{name}: FAILED {type(e).__name__}: {str(e)[:300]}")
            self.save()
            return None


def make_timer(smoke: bool):
    if smoke:
        def wall(fn, **_):
            fn()
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1e3
        return wall
    from triton.testing import do_bench
    return lambda fn, **kw: do_bench(fn, return_mode="median", **{"warmup": 25, "rep": 100, **kw})


def copy_bandwidth(bench) -> float:
    src = torch.empty(2**28, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    bw = 2 * src.numel() * 4 / (bench(lambda: dst.copy_(src)) * 1e-3)
    del src, dst
    return bw


def compiled(fn, smoke: bool):
    return fn if smoke else torch.compile(fn, dynamic=False)


# --- routing ---------------------------------------------------------------------------------------------


def expert_mismatch(idx: torch.Tensor, ref_idx: torch.Tensor) -> dict:
    """Fractions of tokens whose chosen expert set / nearest expert differ from the float64 answer."""
    sets = (idx.sort(1).values != ref_idx.sort(1).values).any(1)
    return {"tokens_with_a_different_expert_set": sets.double().mean().item(),
            "tokens_with_a_different_nearest_expert": (idx[:, 0] != ref_idx[:, 0]).double().mean().item()}


def part_routing(p: Part) -> None:
    import hyperbolic_routing as hr
    from bkdsl.kernels.hyperbolic_routing import kernel as kh
    from bkdsl.kernels.hyperbolic_routing import ops as _ops  # noqa: F401  (registers the op)

    smoke, bench = p.smoke, make_timer(p.smoke)
    dev = "cpu" if smoke else "cuda"
    T, E, D, k = (150, 12, 40, 2) if smoke else (65536, 64, 256, 2)
    p.res["sizes"] = {"tokens": T, "experts": E, "dim": D, "k": k, "dtype": "float32"}
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    x, mu = hr.ball_points(T, D, gen, dev), hr.ball_points(E, D, gen, dev)
    hx, hmu = hr.hard_inputs(T, E, D, gen, dev)
    ref, href = hr.reference64(x, mu, k), hr.reference64(hx, hmu, k)
    gg = torch.randn(T, k, generator=gen).to(dev)
    gd = torch.randn(T, k, generator=gen).to(dev)
    op = torch.ops.bkdsl.hyperbolic_route
    p.log("float64 references done")

    # ours: forward checks (random and hard inputs), backward check, then the eager op timed
    out = op(x, mu, k, 1.0)
    chk = {"random": hr.check_forward(out, ref, x, mu), "hard": hr.check_forward(op(hx, hmu, k, 1.0), href, hx, hmu)}
    chk["random"].update(expert_mismatch(out[1], ref[1]))
    why = hr.forward_failure({c: chk[c] for c in ("random", "hard")})
    chk["backward"] = hr.check_backward(x, mu, ref[1], gg, gd, kh.DEFAULT_BACKWARD)
    bwd_ok = all(v == v and v < 1e-4 for v in chk["backward"].values())
    chk["ok"] = why is None and bwd_ok
    chk["why"] = why or (None if bwd_ok else f"backward row-relative errors {chk['backward']} ≥ 1e-4")
    p.res["checks"]["ours"] = chk
    p.log(f"check ours: {json.dumps(chk)}")
    p.save()
    xr, mr = x.clone().requires_grad_(True), mu.clone().requires_grad_(True)

    def loss_grad(gate, dist):
        return torch.autograd.grad((gate * gg).sum() + (dist * gd).sum(), (xr, mr))

    def eager():
        gate, _, dist = op(xr, mr, k, 1.0)
        return loss_grad(gate, dist)

    sync = (lambda: None) if smoke else torch.cuda.synchronize
    tm, host, busy = p.res["time_ms"], p.res.setdefault("host_us_per_call", {}), p.res.setdefault("gpu_busy_ms", {})
    p.res["gpu_us_per_kernel"] = {}
    p.res["gpu_busy_note"] = ("sum of the kernels torch.profiler saw in one call; wall − busy is the host-bound "
                              "share. Kernels replayed from a CUDA graph are counted where CUPTI reports them")

    def measure(name, fn):
        tm[name] = bench(fn)
        host[name] = hr.host_us_per_call(fn, sync, n=1 if smoke else 30)
        if not smoke:
            kern = hr.gpu_kernel_times(fn)
            p.res["gpu_us_per_kernel"][name] = kern
            busy[name] = sum(kern.values()) / 1e3
        p.log(f"{name}: {tm[name]:.4f} ms wall, host {host[name]:.1f} us/call, GPU busy {busy.get(name)} ms")
        p.save()
        return tm[name]

    fwd_bytes = 4 * T * D + 4 * E * D + T * k * (4 + 4 + 8)
    bwd_bytes = 4 * T * D + 4 * E * D + T * k * (8 + 4 + 4) + 4 * T * D + 4 * E * D
    # tf32x3: three tf32 products per pair of the forward's x·μ (T·E·D MACs each)
    fwd_floor = max(hbm_floor_ms(fwd_bytes), 3 * 2 * T * E * D / PEAK_FLOPS["tf32"] * 1e3)
    fb_floor = max(hbm_floor_ms(fwd_bytes + bwd_bytes), 3 * 2 * T * E * D / PEAK_FLOPS["tf32"] * 1e3)
    p.res["floors"] = {"fwd_ms": fwd_floor, "fwd_bwd_ms": fb_floor, "fwd_bytes": fwd_bytes, "bwd_bytes": bwd_bytes}

    def emit_rows():
        acc = p.res["checks"].get("peer_one_matmul_accuracy", {}).get("random", {})
        peer_note = {"peer_tokens_with_a_different_expert_set": acc.get("tokens_with_a_different_expert_set"),
                     "peer_tokens_with_a_different_nearest_expert": acc.get("tokens_with_a_different_nearest_expert"),
                     "ours_tokens_with_a_different_expert_set": chk["random"].get("tokens_with_a_different_expert_set"),
                     "ours_non_tie_index_differences": chk["random"]["non_tie_index_differences"]}
        fb_floor_how = "max(HBM bytes of x, μ, outputs, gradients / 4.8 TB/s, 3·2·T·E·D tf32x3 FLOPs / 494.7 TFLOP/s)"
        p.row("#20.4 routing fwd+bwd (graphed)", "GraphedRoute (CUDA graphs of the op pair)",
              tm.get("ours op fwd+bwd graphed"), "torch.compile one-matmul form + topk, fwd+bwd",
              tm.get("peer one-matmul compiled fwd+bwd"), fb_floor, fb_floor_how, target_ms=0.6,
              target_met=bool(tm.get("ours op fwd+bwd graphed") and tm["ours op fwd+bwd graphed"] <= 0.6),
              gpu_busy_ms=busy.get("ours op fwd+bwd graphed"), host_us=host.get("ours op fwd+bwd graphed"), **peer_note)
        p.row("#20.4 routing fwd+bwd (eager op)", "torch.ops.bkdsl.hyperbolic_route + autograd",
              tm.get("ours op fwd+bwd eager"), "torch.compile one-matmul form + topk, fwd+bwd",
              tm.get("peer one-matmul compiled fwd+bwd"), fb_floor, fb_floor_how,
              gpu_busy_ms=busy.get("ours op fwd+bwd eager"), host_us=host.get("ours op fwd+bwd eager"))
        p.row("#20.5 routing fwd", "torch.ops.bkdsl.hyperbolic_route", tm.get("ours op fwd"),
              "torch.compile one-matmul form + topk", tm.get("peer one-matmul compiled fwd"), fwd_floor,
              "max(HBM bytes / 4.8 TB/s, tf32x3 FLOPs / 494.7 TFLOP/s)", **peer_note)

    if chk["ok"]:
        p.guard("ours fwd", lambda: measure("ours op fwd", lambda: op(x, mu, k, 1.0)))
        p.guard("ours fwd+bwd eager", lambda: measure("ours op fwd+bwd eager", eager))
    emit_rows()

    # ours as CUDA graphs: must equal the eager op (same kernels), then timed
    def graphed_part():
        from bkdsl.kernels.hyperbolic_routing.graphed import GraphedRoute
        g = GraphedRoute(xr, mr, k, 1.0)

        def run():
            gate, _, dist = g(xr, mr)
            return loss_grad(gate, dist)
        ge, gg_ = op(x, mu, k, 1.0), g(x, mu)  # no grad on x, mu: forward only, no pending backward
        # (the graph's outputs are its static buffers: compared before the next call overwrites them)
        diff = {"gate": (ge[0] - gg_[0]).abs().max().item(), "index_equal": bool((ge[1] == gg_[1]).all()),
                "dist": (ge[2] - gg_[2]).abs().max().item()}
        eg, gr = eager(), run()
        diff.update({"grad_x": (eg[0] - gr[0]).abs().max().item(), "grad_mu": (eg[1] - gr[1]).abs().max().item()})
        diff["ok"] = diff["index_equal"] and all(diff[n] == diff[n] and diff[n] <= 1e-6
                                                 for n in ("gate", "dist", "grad_x", "grad_mu"))
        p.res["checks"]["graphed_vs_eager"] = diff
        p.log(f"check graphed vs eager: {diff}")
        if diff["ok"] and chk["ok"]:
            measure("ours op fwd+bwd graphed", run)
    if smoke:
        p.res["skipped"].append("graphed: CUDA graphs need CUDA")
    else:
        p.guard("graphed", graphed_part, need=10)
    emit_rows()

    # the peer: torch.compile'd one-matmul form, its accuracy on these inputs, then timed
    def peer_part():
        peer = compiled(hr.one_matmul_route, smoke)
        po, pho = peer(x, mu, k), peer(hx, hmu, k)
        acc = {"random": {**expert_mismatch(po[1], ref[1]), "dist_max_rel": hr.max_rel(po[2], ref[2])},
               "hard": {**expert_mismatch(pho[1], href[1]), "dist_max_rel": hr.max_rel(pho[2], href[2])}}
        acc["ours_random"] = expert_mismatch(out[1], ref[1])
        p.res["checks"]["peer_one_matmul_accuracy"] = acc
        p.log(f"peer accuracy: {acc}")
        tm["peer one-matmul compiled fwd"] = bench(lambda: peer(x, mu, k))

        def peer_fb():
            gate, _, dist = peer(xr, mr, k)
            return loss_grad(gate, dist)
        peer_fb()
        tm["peer one-matmul compiled fwd+bwd"] = bench(peer_fb)
        p.log(f"peer: fwd {tm['peer one-matmul compiled fwd']:.4f} ms, fwd+bwd {tm['peer one-matmul compiled fwd+bwd']:.4f} ms")
        p.save()
    p.guard("peer one-matmul", peer_part, need=15)
    emit_rows()



# --- resolvent -------------------------------------------------------------------------------------------

# per-peer wall caps (s) for the subprocesses of the resolvent part, strongest first; the dense inverse
# (O(N³) per chain, a strawman at N = 2048) runs only with --dense-peer, last, on one chain.
RESOLVENT_PEER_CAPS = (("doubling", 50.0), ("associative", 45.0))   # each cut to what the part has left


def resolvent_inputs(seed: int, smoke: bool):
    import resolvent as rb
    from bkdsl.kernels.resolvent import naive
    dev = "cpu" if smoke else "cuda"
    B, N = (4, 64) if smoke else (4096, 2048)
    gen = torch.Generator().manual_seed(seed)
    a, b = rb.chain(B, N, dev, gen)
    w = torch.randn(B, N, generator=gen, dtype=torch.complex64).to(dev)
    a64, b64 = a.double(), b.double()
    g64 = naive.resolvent_diag_reference(a64, b64, rb.Z)
    ga64, gb64 = naive.resolvent_backward_reference(a64, b64, rb.Z, w.to(torch.complex128))
    return B, N, a, b, w, g64, ga64, gb64


def part_resolvent_peer(p: Part, kind: str, seed: int) -> None:
    """One PyTorch peer of the resolvent in its own process (the parent kills it at its cap): first-call
    (compile) seconds recorded apart from the timing, the forward checked then timed, then — doubling scan
    only — the backward likewise. The JSON is rewritten after each step, so a peer killed mid-compile keeps
    what it had."""
    import resolvent as rb
    from bkdsl.kernels.resolvent import variants as kv
    smoke, bench = p.smoke, make_timer(p.smoke)
    B, N, a, b, w, g64, ga64, gb64 = resolvent_inputs(seed, smoke)
    Z = rb.Z
    tm, chk = p.res["time_ms"], p.res["checks"]
    p.log(f"peer {kind}: float64 references done")
    if kind == "dense":
        sa, sb = a[:1], b[:1]
        t0 = time.time()
        e = rb.fwd_errors(kv.resolvent_diag_dense_inverse(sa, sb, Z), g64[:1])
        e["ok"], e["first_call_s"] = rb.ok(e), time.time() - t0
        chk["fwd"] = e
        p.save()
        if e["ok"]:
            tm["fwd, 1 chain"] = bench(lambda: kv.resolvent_diag_dense_inverse(sa, sb, Z), warmup=1, rep=1)
            tm["fwd"] = tm["fwd, 1 chain"] * B
        p.save()
        return
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    f = compiled(lambda a_, b_: kv.resolvent_diag_scan_parts(a_, b_, Z.real, Z.imag, kind), smoke)
    p.log(f"peer {kind}: compiling the forward")
    t0 = time.time()
    e = rb.fwd_errors(torch.complex(*f(a, b)), g64)
    e["ok"] = rb.ok(e)
    p.res["compile_s"] = {"fwd": time.time() - t0}
    chk["fwd"] = e
    p.log(f"peer {kind}: forward first call {p.res['compile_s']['fwd']:.1f} s, check {e}")
    p.save()
    if e["ok"]:
        tm["fwd"] = bench(lambda: f(a, b))
        p.log(f"peer {kind}: fwd {tm['fwd']:.4f} ms")
        p.save()
    if kind != "doubling" or not e["ok"]:
        return

    def fb():
        gr, gi = f(ar, br)
        return torch.autograd.grad((gr, gi), (ar, br), (w.real, w.imag))
    p.log(f"peer {kind}: compiling the backward")
    t0 = time.time()
    e2 = rb.grad_errors(*fb(), ga64, gb64)
    p.res["compile_s"]["fwd+bwd"] = time.time() - t0
    e2["ok"] = rb.ok({**e, **e2})
    chk["fwd+bwd"] = e2
    p.log(f"peer {kind}: backward first call {p.res['compile_s']['fwd+bwd']:.1f} s, check {e2}")
    p.save()
    if e2["ok"]:
        tm["fwd+bwd"] = bench(fb)
        p.log(f"peer {kind}: fwd+bwd {tm['fwd+bwd']:.4f} ms")
    p.save()


def run_peer_process(p: Part, kind: str, seed: int, cap_s: float) -> dict:
    """Run part_resolvent_peer in a fresh process in its own session, killed (the whole group) at
    ``cap_s``; its JSON as far as it got, with ``status`` "ok", "timeout" or "exit N"."""
    import signal
    import subprocess
    path = p.path.with_name(f"{p.path.stem}_peer_{kind}.json")
    path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", "resolvent", "--peer", kind, "--seed", str(seed),
           "--json", str(path), "--budget-s", str(cap_s)] + (["--smoke"] if p.smoke else [])
    t0 = time.time()
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        rc = proc.wait(timeout=cap_s)
        status = "ok" if rc == 0 else f"exit {rc}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        status = "timeout"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        rec = {}
    rec.update(status=status, cap_s=cap_s, process_wall_s=round(time.time() - t0, 1))
    return rec


def part_resolvent(p: Part, dense_peer: bool = False) -> None:
    """Ours (checked, timed) first, then each PyTorch peer in its own process under its own cap
    (RESOLVENT_PEER_CAPS, cut to the part's budget): a peer that exceeds its cap is recorded as "timeout"
    and the part goes on; compile (first-call) seconds are recorded apart from the times."""
    import resolvent as rb

    smoke, bench = p.smoke, make_timer(p.smoke)
    seed = int.from_bytes(os.urandom(4), "little")
    B, N, a, b, w, g64, ga64, gb64 = resolvent_inputs(seed, smoke)
    Z = rb.Z
    p.res["sizes"] = {"batch": B, "n": N, "dtype": "float32 -> complex64", "z": str(Z), "seed": seed}
    p.log("float64 references done")

    def fwd_check(g, ref=g64):
        e = rb.fwd_errors(g, ref)
        e["ok"] = rb.ok(e)
        return e

    fwd = lambda: torch.ops.bkdsl.resolvent_diag(a, b, Z.real, Z.imag)  # noqa: E731
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)

    def ours_fb():
        return torch.autograd.grad(torch.ops.bkdsl.resolvent_diag(ar, br, Z.real, Z.imag), (ar, br), w)

    t0 = time.time()
    chk = fwd_check(fwd())
    chk.update(rb.grad_errors(*ours_fb(), ga64, gb64))
    chk["ok"] = rb.ok(chk)
    chk["first_call_s"] = time.time() - t0
    p.res["checks"]["ours"] = chk
    p.log(f"check ours: {chk}")
    tm = p.res["time_ms"]
    if chk["ok"]:
        tm["ours fwd"] = bench(fwd)
        tm["ours fwd+bwd"] = bench(ours_fb)
        p.log(f"ours fwd {tm['ours fwd']:.4f} ms, fwd+bwd {tm['ours fwd+bwd']:.4f} ms")
    p.save()
    del a, b, w, g64, ga64, gb64, ar, br
    if not smoke:
        torch.cuda.empty_cache()

    peers_fwd, peers_fb = {}, {}
    names = {"doubling": "torch.compile doubling scan", "associative": "torch.compile associative_scan",
             "dense": "torch.linalg.inv dense (1 chain × batch)"}

    def emit_rows():
        best_f = min(peers_fwd, key=peers_fwd.get) if peers_fwd else None
        best_fb = min(peers_fb, key=peers_fb.get) if peers_fb else None
        p.res["strongest_peer"] = {"fwd": best_f, "fwd_bwd": best_fb, "all_fwd_ms": peers_fwd, "all_fwd_bwd_ms": peers_fb}
        site = B * N
        status = {k: v.get("status") for k, v in p.res.get("peers", {}).items()}
        p.row("#20.5 resolvent fwd", "segmented Triton kernel (custom op)", tm.get("ours fwd"), best_f,
              peers_fwd.get(best_f), hbm_floor_ms(16 * site), "HBM (a 4 + b 4 + G 8) B/site / 4.8 TB/s",
              peers_fwd_ms=peers_fwd, peer_status=status)
        p.row("#20.5 resolvent fwd+bwd", "segmented Triton kernels (custom op + autograd)", tm.get("ours fwd+bwd"),
              best_fb, peers_fb.get(best_fb), hbm_floor_ms(40 * site),
              "HBM (fwd 16 + bwd: a, b, ∂G read 16, ∂a, ∂b written 8) B/site / 4.8 TB/s", peers_fwd_bwd_ms=peers_fb,
              peer_status=status)

    emit_rows()
    plan = list(RESOLVENT_PEER_CAPS) + ([("dense", 20.0)] if dense_peer else [])
    for kind, want in plan:
        cap_s = min(want, p.budget - (time.time() - p.t0) - 2)
        if cap_s < 8:
            p.res["skipped"].append(f"peer {kind}: budget")
            p.res.setdefault("peers", {})[kind] = {"status": "skipped (budget)"}
            p.log(f"peer {kind}: skipped (budget)")
            continue
        p.log(f"peer {kind}: own process, cap {cap_s:.0f} s")
        rec = run_peer_process(p, kind, seed, cap_s)
        p.res.setdefault("peers", {})[kind] = {k: rec.get(k) for k in
                                               ("status", "cap_s", "process_wall_s", "compile_s", "checks", "time_ms", "errors")}
        ptm = rec.get("time_ms", {})
        if ptm.get("fwd") is not None:
            peers_fwd[names[kind]] = tm[f"peer {kind} fwd"] = ptm["fwd"]
        if ptm.get("fwd+bwd") is not None:
            peers_fb[names[kind]] = tm[f"peer {kind} fwd+bwd"] = ptm["fwd+bwd"]
        p.log(f"peer {kind}: {rec['status']} after {rec['process_wall_s']} s, compile {rec.get('compile_s')}, "
              f"times {ptm}")
        emit_rows()


# --- delta rule ------------------------------------------------------------------------------------------


def part_delta(p: Part) -> None:
    """The delta rule, ours vs fla's chunk_delta_rule. Errors vs float64 on a smaller problem (same D and
    dtype: the float64 chunked reference with autograd is slow at full size), which also compiles both
    sides; then at the full size, in this order so a part cut at its cap keeps the main rows: bf16 fwd,
    bf16 fwd+bwd, fp32 fwd, fp32 fwd+bwd, then the WY kernel's two inverse forms, then kernel breakdowns.
    Each step is logged with its elapsed seconds (where the time goes)."""
    import delta_rule as dr
    from bkdsl.kernels.delta_rule import chunk as kc
    from bkdsl.kernels.delta_rule import op as _op  # noqa: F401  (registers the op)

    smoke = p.smoke
    dev = "cpu" if smoke else "cuda"
    B, H, N, D = (1, 2, 100, 16) if smoke else (4, 8, 4096, 128)
    cB, cH, cN = (1, 2, 100) if smoke else (1, 4, 1024)   # the error check's size (same D)
    p.res["sizes"] = {"B": B, "H": H, "N": N, "D": D, "check_size": {"B": cB, "H": cH, "N": cN, "D": D}}
    try:
        from fla.ops.delta_rule import chunk_delta_rule as fla_fn
        import fla
        p.res["fla"] = getattr(fla, "__version__", "?")
    except Exception as e:
        fla_fn, p.res["fla"] = None, f"unavailable: {type(e).__name__}: {e}"
    if smoke:
        fla_fn = None
    if not smoke:
        torch.backends.cuda.matmul.allow_tf32 = False
    gen = torch.Generator().manual_seed(int(time.time()))

    def bench(fn, grads=None):
        if smoke:
            return make_timer(True)(fn)
        from triton.testing import do_bench
        return do_bench(fn, warmup=25, rep=100, grad_to_none=grads, return_mode="median")

    op = torch.ops.bkdsl.delta_rule
    tm = p.res["time_ms"]
    dtypes = ((torch.bfloat16, "bf16"), (torch.float32, "fp32"))

    def step(name, fn, need=0.0):
        p.log(f"{name} ...")
        t0 = time.time()
        r = p.guard(name, fn, need=need)
        p.res.setdefault("step_s", {})[name] = round(time.time() - t0, 2)
        p.log(f"{name}: {time.time() - t0:.1f} s")
        p.save()
        return r

    def emit(dtype, dn):
        chk = p.res["checks"].get(dn, {})
        ceil = {"copy_tb_s": HBM_BYTES_PER_S / 1e12, "bf16_matmul_tflops": PEAK_FLOPS["bf16" if dn == "bf16" else "tf32"] / 1e12}
        for part, bwd in (("fwd", False), ("fwd+bwd", True)):
            if f"ours {part} {dn}" not in tm and f"fla {part} {dn}" not in tm:
                continue
            fl = dr.floor_ms(B, H, N, D, dtype, ceil, bwd)
            p.row(f"#20.2 delta rule {part} {dn}", "Triton chunked WY (torch.ops.bkdsl.delta_rule)",
                  tm.get(f"ours {part} {dn}"), "fla chunk_delta_rule", tm.get(f"fla {part} {dn}"), fl["floor_ms"],
                  f"max(HBM bytes / 4.8 TB/s, chunked-form FLOPs / {ceil['bf16_matmul_tflops']:.1f} TFLOP/s)",
                  error_vs_float64={"ours": chk.get("ours"), "fla": chk.get("fla"), "size": p.res["sizes"]["check_size"]},
                  target="ours ≤ 1.0× fla, error no worse than fla's")

    inputs = {}
    for dtype, dn in dtypes:
        if not p.left(15):
            p.res["skipped"].append(f"{dn}: budget")
            p.log(f"{dn}: skipped (budget)")
            continue
        # errors vs float64 at the check size (compiles ours and runs fla's autotuning too)
        cq, ck, cv, cbeta, cdy = dr.make_inputs(cB, cH, cN, D, dtype, dev, gen, "fla")
        ref = step(f"float64 truth {dn}", lambda: dr.truth(cq, ck, cv, cbeta, cdy, False, False))
        chk = {"ours": None, "fla": None}
        p.res["checks"][dn] = chk

        def verdicts():
            chk["ours_ok"] = chk["ours"] is not None and all(dr.passes(e, dtype) for e in chk["ours"].values())
            chk["fla_ok"] = chk["fla"] is not None and all(dr.passes(e, dtype) for e in chk["fla"].values())
            if chk["ours"] and chk["fla"]:
                chk["ours_no_worse_than_fla"] = {n: chk["ours"][n] <= chk["fla"][n] for n in chk["ours"]}
            p.log(f"check {dn}: {json.dumps(chk)}")
            p.save()
        # ours first (checked, then timed at full size), then fla (its autotuning cannot starve our rows)
        if ref is not None:
            chk["ours"] = step(f"check ours {dn}", lambda: dr.errors(dr.ours(cq, ck, cv, cbeta, cdy, False, False), ref))
        verdicts()
        q, k, v, beta, dy = dr.make_inputs(B, H, N, D, dtype, dev, gen, "fla")
        xs = [t.detach().clone().requires_grad_() for t in (q, k, v, beta)]
        fx = [dr.to_fla(t).requires_grad_() for t in (q, k, v, beta)]
        fd, fdy = [t.detach() for t in fx], dr.to_fla(dy)
        inputs[dn] = (q, k, v, beta)
        if chk["ours_ok"]:
            step(f"ours fwd {dn}", lambda: tm.__setitem__(f"ours fwd {dn}", bench(lambda: op(q, k, v, beta, False, False))))
            step(f"ours fwd+bwd {dn}", lambda: tm.__setitem__(
                f"ours fwd+bwd {dn}", bench(lambda: op(*xs, False, False)[0].backward(dy), xs)), need=5)
        emit(dtype, dn)
        if ref is not None and fla_fn is not None:
            chk["fla"] = step(f"check fla {dn}", lambda: dr.errors(dr.fla_run(fla_fn, cq, ck, cv, cbeta, cdy), ref),
                              need=10)
        verdicts()
        del ref, cq, ck, cv, cbeta, cdy
        if chk["fla_ok"]:
            step(f"fla fwd {dn}", lambda: tm.__setitem__(f"fla fwd {dn}", bench(lambda: fla_fn(*fd, scale=1.0))), need=5)
            step(f"fla fwd+bwd {dn}", lambda: tm.__setitem__(
                f"fla fwd+bwd {dn}", bench(lambda: fla_fn(*fx, scale=1.0)[0].backward(fdy), fx)), need=5)
        emit(dtype, dn)
        del xs, fx, fd, fdy, dy
        if not smoke:
            torch.cuda.empty_cache()

    # the WY kernel's two block inversions, same inputs, same process (after every main row)
    for dtype, dn in dtypes:
        if dn not in inputs or not p.res["checks"][dn]["ours_ok"]:
            continue
        q, k, v, beta = inputs[dn]

        def inverses():
            y0 = kc.delta_rule_fwd_triton(q, k, v, beta, False, False, inverse=kc.INVERSE)[0]
            for inv in kc.INVERSES:
                d = dr.rel_max(kc.delta_rule_fwd_triton(q, k, v, beta, False, False, inverse=inv)[0], y0)
                p.res["checks"][f"inverse={inv} vs default {dn}"] = d
                if dr.passes(d, dtype):
                    tm[f"ours fwd launcher inverse={inv} {dn}"] = bench(
                        lambda inv=inv: kc.delta_rule_fwd_triton(q, k, v, beta, False, False, inverse=inv))
        step(f"inverse forms {dn}", inverses, need=15)
        p.log(f"time {dn}: {json.dumps({n: t for n, t in tm.items() if n.endswith(dn)})}")
    if not smoke:
        for dtype, dn in dtypes:
            if dn in inputs and p.res["checks"][dn]["ours_ok"]:
                q, k, v, beta = inputs[dn]
                p.res.setdefault("kernel_us_per_call", {})[f"ours fwd {dn}"] = step(
                    f"kernels {dn}", lambda: dr.kernel_breakdown(lambda: op(q, k, v, beta, False, False)), need=10)
    p.res["configs_used"] = p.guard("configs", kc.chosen_configs)
    p.res["batched_inverse_fell_back"] = [str(key) for key in kc._batched_inverse_failed]  # then both forms are rowwise
    p.save()


# --- causal attention ------------------------------------------------------------------------------------


def part_attention(p: Part) -> None:
    """Causal scattering attention at 50 % kept blocks vs FlexAttention (bench/scattering_attention.py's
    inputs, check and FLOP count): check first, then fwd+bwd (the target row, written at once), then the
    host split, then fwd — so a part cut at its cap keeps the rows it had."""
    import hyperbolic_routing as hr  # its host_us_per_call / gpu_kernel_times helpers
    import scattering_attention as sa
    from bkdsl.kernels.scattering_attention import active_tile
    from bkdsl.kernels.scattering_attention.kernel import block_plan, default_tiles
    from bkdsl.kernels.scattering_attention.ops import scattering_attention_triton
    from bkdsl.kernels.tiles import failures as tile_failures
    from bkdsl.nn.scattering_attention import block_sparsity_stats

    smoke = p.smoke
    cuda = not smoke
    dev = "cuda" if cuda else "cpu"
    bsz, heads, n, d = (1, 2, 512, 32) if smoke else (2, 16, 8192, 128)
    dtype = torch.bfloat16 if cuda else torch.float32
    block, tau = 128, sa.TAU
    p.res["sizes"] = {"B": bsz, "H": heads, "N": n, "D": d, "block": block, "dtype": str(dtype), "kept": 0.5}
    p.res["default_tile_causal"] = default_tiles(block, d, True)._asdict()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        p.res["ceilings"] = sa.ceilings()
    peak = p.res.get("ceilings", {}).get("bf16_matmul_tflops", PEAK_FLOPS["bf16"] / 1e12)
    flex, create_block_mask, sig_buf, _rule, rule_causal = sa.make_flex(bsz, n, block, dev, cuda)
    gen = torch.Generator().manual_seed(int(time.time()))

    def bench(fn, grads=None):
        if smoke:
            return make_timer(True)(fn)
        from triton.testing import do_bench
        return do_bench(fn, warmup=25, rep=150, grad_to_none=grads, return_mode="median")

    s_ = sa.banded_score(bsz, n, block, 0.5, gen, dev)
    q, k, v = (torch.randn(bsz, heads, n, d, device=dev, dtype=dtype) for _ in range(3))
    nb = n // block
    stats = block_sparsity_stats(s_, tau, block, True)
    plan = block_plan(s_, tau, block, True)
    kept = stats.kept_blocks.sum().item()
    diag = (plan.sigma * plan.sigma > tau).sum().item()
    tok_pairs = (kept - diag) * block * block + diag * block * (block + 1) / 2   # a kept diagonal block is a triangle
    flops_fwd = 4 * heads * d * tok_pairs
    p.res["kept_block_fraction"] = kept / (bsz * nb * (nb + 1) // 2)
    p.res["flops_fwd_kept"] = flops_fwd
    floors = {"fwd": flops_fwd / (peak * 1e12) * 1e3, "fwd_bwd": 3.5 * flops_fwd / (peak * 1e12) * 1e3}
    chk = sa.check(q, k, v, s_, True, heads_per_chunk=2 if cuda else heads)
    p.res["checks"]["ours"] = chk
    p.log(f"check ours vs reference: {chk}")

    def tiles_now():
        p.res["active_tiles"] = {str(key): t._asdict() for key, t in active_tile().items()}
        p.res["tile_failures"] = tile_failures("scattering_attention")
    tiles_now()
    p.save()
    sig_buf.copy_(plan.sigma)
    bm = create_block_mask(rule_causal, bsz, None, n, n, device=dev, BLOCK_SIZE=block)
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
    do = torch.randn_like(q)
    ours = lambda a, b_, c: scattering_attention_triton(a, b_, c, s_, tau, block, True)  # noqa: E731
    peer = lambda a, b_, c: flex(a, b_, c, block_mask=bm)  # noqa: E731
    if not smoke:
        act = ours(q, k, v).abs().amax(-1) > 0
        p.res["checks"]["flex_vs_ours_on_active_rows"] = sa.rel_err(ours(q, k, v)[act], peer(q, k, v)[act])
    tm = p.res["time_ms"]

    def fwd_bwd(f):
        return lambda: torch.autograd.grad(f(qg, kg, vg), (qg, kg, vg), do)

    def emit():
        tiles_now()
        for part, key in (("fwd+bwd", "fwd_bwd"), ("fwd", "fwd")):
            if f"ours {key}" in tm or f"flex {key}" in tm:
                p.row(f"#20.3 causal attention {part} at 50% blocks", "scattering attention (Triton, tile table)",
                      tm.get(f"ours {key}") if chk["ok"] else None, "FlexAttention (torch.compile, block mask)",
                      tm.get(f"flex {key}"), floors[key],
                      "FLOPs on kept blocks (fwd 4·B·H·D·pairs, fwd+bwd 3.5×) / measured bf16 matmul rate",
                      tile_that_ran=p.res["active_tiles"], tile_failures=p.res["tile_failures"],
                      target="fwd+bwd ≤ FlexAttention" if key == "fwd_bwd" else None)

    if chk["ok"]:
        p.guard("ours fwd+bwd", lambda: tm.__setitem__("ours fwd_bwd", bench(fwd_bwd(ours))))
    p.guard("flex fwd+bwd", lambda: tm.__setitem__("flex fwd_bwd", bench(fwd_bwd(peer))), need=10)
    emit()

    def host_split():  # #20.4 for attention: wall vs host time to issue vs GPU busy, ours fwd+bwd
        fb = fwd_bwd(ours)
        split = {"wall_ms": tm["ours fwd_bwd"], "host_us_per_call": hr.host_us_per_call(fb, torch.cuda.synchronize, n=20)}
        kern = hr.gpu_kernel_times(fb)
        split.update(gpu_busy_ms=sum(kern.values()) / 1e3, gpu_us_per_kernel=kern)
        split["wall_minus_gpu_busy_ms"] = split["wall_ms"] - split["gpu_busy_ms"]
        p.res["host_split_ours_fwd_bwd"] = split
        p.log(f"ours fwd+bwd: wall {split['wall_ms']:.3f} ms, host {split['host_us_per_call']:.0f} us, "
              f"GPU busy {split['gpu_busy_ms']:.3f} ms")
    if not smoke and "ours fwd_bwd" in tm:
        p.guard("host split", host_split, need=10)
    with torch.no_grad():
        if chk["ok"]:
            p.guard("ours fwd", lambda: tm.__setitem__("ours fwd", bench(lambda: ours(q, k, v))), need=5)
        p.guard("flex fwd", lambda: tm.__setitem__("flex fwd", bench(lambda: peer(q, k, v))), need=5)
    emit()


# --- collect ---------------------------------------------------------------------------------------------


def partial_sweep_summary(contenders: dict) -> dict:
    """The sweep's best single run and best grid aggregate from the contenders it timed, for a sweep killed
    at its cap before it wrote its own summary (marked ``partial``; its checks are in ``check``)."""
    def best(names):
        got = {n: c["samples_per_s"] for n, c in contenders.items()
               if n in names and isinstance(c, dict) and isinstance(c.get("samples_per_s"), (int, float))}
        return (max(got, key=got.get), got[max(got, key=got.get)]) if got else (None, None)
    s_name, s_val = best({"single_eager", "single_cudagraphs", "single_graph_step"})
    a_name, a_val = best({n for n in contenders if n.startswith("grid_")})
    return {"partial": True, "single_best": s_name, "single_samples_per_s": s_val, "aggregate_best": a_name,
            "aggregate_samples_per_s": a_val, "ratio_aggregate_over_single": rows_ratio(a_val, s_val),
            "aggregate_target_met": None if a_val is None else a_val >= 45_000,
            "single_target_met": None if s_val is None else s_val >= 15_000}


def collect(parts_dir: Path, out: Path, sweep_json: Path | None) -> dict:
    """Merge the parts' JSON (and the sweep's) into one record with one flat list of rows."""
    res = {"name": "issue20", "date": _dt.date.today().isoformat(), "parts": {}, "rows": [],
           "hbm_bytes_per_s_for_floors": HBM_BYTES_PER_S, "peak_flops_for_floors": PEAK_FLOPS}
    status = {}
    if (parts_dir / "status.txt").exists():
        for line in (parts_dir / "status.txt").read_text().splitlines():
            name, _, rc = line.partition(" ")
            status[name] = rc
    for name in PARTS:
        f = parts_dir / f"{name}.json"
        if not f.exists():
            res["parts"][name] = {"missing": True, "exit": status.get(name)}
            continue
        d = json.loads(f.read_text())
        d["exit"] = status.get(name)
        res["parts"][name] = d
        for key in ("gpu", "torch", "triton", "python"):
            res.setdefault(key, d.get(key))
        res["rows"].extend(d.get("rows", []))
    if sweep_json is not None:
        if sweep_json.exists():
            s = json.loads(sweep_json.read_text())
            res["parts"]["sweep"] = {"exit": status.get("sweep"), "summary": s.get("summary"), "check": s.get("check"),
                                     "source": str(sweep_json)}
            summ = s.get("summary") or partial_sweep_summary(s.get("contenders") or {})
            res["parts"]["sweep"]["summary"] = summ
            res["rows"].append({
                "item": "#20.1 sweep: 9-run grid aggregate vs one run (samples/s, higher is better)"
                        + (" — partial: the sweep was cut at its cap" if summ.get("partial") else ""),
                "ours": summ.get("aggregate_best"), "ours_samples_per_s": summ.get("aggregate_samples_per_s"),
                "peer": summ.get("single_best"), "peer_samples_per_s": summ.get("single_samples_per_s"),
                "ratio_ours_over_peer": summ.get("ratio_aggregate_over_single"),
                "floor": "n/a (training throughput)", "checks_pass": summ.get("checks_pass"),
                "target": "aggregate ≥ 45 000 samples/s, single ≥ 15 000",
                "aggregate_target_met": summ.get("aggregate_target_met"), "single_target_met": summ.get("single_target_met")})
        else:
            res["parts"]["sweep"] = {"missing": True, "exit": status.get("sweep"),
                                     "note": "HOOK: bench/sweep_batched.py wrote no JSON (see the driver's log)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    return res


def summary_table(res: dict) -> str:
    def f(v, spec=".4f"):
        return format(v, spec) if isinstance(v, (int, float)) and v == v else "—"
    lines = [f"{'row':58s} {'ours ms':>9s} {'peer ms':>9s} {'ratio':>7s} {'floor ms':>9s}  peer"]
    for r in res["rows"]:
        if "ours_samples_per_s" in r:
            lines.append(f"{r['item'][:58]:58s} {f(r['ours_samples_per_s'], '.0f'):>9s} "
                         f"{f(r['peer_samples_per_s'], '.0f'):>9s} {f(r['ratio_ours_over_peer'], '.3f'):>7s} "
                         f"{'':>9s}  samples/s")
            continue
        lines.append(f"{r['item'][:58]:58s} {f(r.get('ours_ms')):>9s} {f(r.get('peer_ms')):>9s} "
                     f"{f(r.get('ratio_ours_over_peer'), '.3f'):>7s} {f(r.get('floor_ms')):>9s}  {r.get('peer')}")
    return "\n".join(lines)


def markdown_table(res: dict, source: str) -> str:
    """The rows as a Markdown table quoting only the merged JSON (for the README: every number from one call)."""
    def f(v, spec=".3f"):
        return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else "—"
    out = [f"Every number from one H200 call: `{source}` ({res.get('gpu')}, torch {res.get('torch')}, "
           f"triton {res.get('triton')}, {res.get('date')}).", "",
           "| row | ours | peer | ours / peer | floor | ours / floor |", "| --- | --- | --- | --- | --- | --- |"]
    for r in res["rows"]:
        if "ours_samples_per_s" in r:
            out.append(f"| {r['item']} | {f(r['ours_samples_per_s'], '.0f')} samples/s ({r.get('ours')}) | "
                       f"{f(r['peer_samples_per_s'], '.0f')} samples/s ({r.get('peer')}) | "
                       f"{f(r.get('ratio_ours_over_peer'), '.2f')} | — | — |")
            continue
        item = r["item"]
        if r.get("peer_tokens_with_a_different_expert_set") is not None:
            item += (f" — the peer picks another expert set than float64 for "
                     f"{100 * r['peer_tokens_with_a_different_expert_set']:.1f} % of tokens (ours "
                     f"{100 * (r.get('ours_tokens_with_a_different_expert_set') or 0):.1f} %)")
        out.append(f"| {item} | {f(r.get('ours_ms'))} ms ({r.get('ours')}) | {f(r.get('peer_ms'))} ms "
                   f"({r.get('peer')}) | {f(r.get('ratio_ours_over_peer'), '.2f')} | {f(r.get('floor_ms'), '.4f')} ms | "
                   f"{f(r.get('ours_over_floor'), '.1f')} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS + ("all",))
    ap.add_argument("--json", help="--part: the part's JSON file (with all: a directory)")
    ap.add_argument("--budget-s", type=float, default=90.0, help="--part: seconds before optional items are skipped")
    ap.add_argument("--smoke", action="store_true", help="CPU interpreter, tiny sizes, no real timing")
    ap.add_argument("--peer", choices=("doubling", "associative", "dense"),
                    help="with --part resolvent: run only this PyTorch peer (the part runs each peer so, capped)")
    ap.add_argument("--seed", type=int, default=0, help="with --peer: the parent's input seed")
    ap.add_argument("--dense-peer", action="store_true",
                    help="resolvent: also time the dense linalg.inv peer (one chain × batch; off by default)")
    ap.add_argument("--collect", help="directory of the parts' JSON files")
    ap.add_argument("--sweep-json", default=None)
    ap.add_argument("--out", help="--collect: the merged JSON")
    ap.add_argument("--table", help="print the Markdown table of a merged JSON (README) and exit")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text()), args.table))
        return 0
    if args.collect:
        res = collect(Path(args.collect), Path(args.out), Path(args.sweep_json) if args.sweep_json else None)
        print(summary_table(res))
        print("SUMMARY " + json.dumps({"rows": len(res["rows"]),
                                       "parts": {n: ("missing" if d.get("missing") else d.get("exit"))
                                                 for n, d in res["parts"].items()}}))
        return 0
    if not args.part or not args.json:
        ap.error("--part and --json, or --collect and --out")
    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA device: run with --smoke (CPU interpreter) or on the GPU", file=sys.stderr)
        return 2
    names = PARTS if args.part == "all" else (args.part,)
    rc = 0
    for name in names:
        path = Path(args.json) / f"{name}.json" if args.part == "all" else Path(args.json)
        p = Part(name, path, args.budget_s, args.smoke)
        try:
            if args.peer:
                if name != "resolvent":
                    ap.error("--peer goes with --part resolvent")
                part_resolvent_peer(p, args.peer, args.seed)
            elif name == "resolvent":
                part_resolvent(p, dense_peer=args.dense_peer)
            else:
                globals()[f"part_{name}"](p)
            p.res["done"] = True
        except Exception:
            p.res["errors"]["part"] = traceback.format_exc(limit=8)[-4000:]
            p.log(f"FAILED:\n{p.res['errors']['part']}")
            rc = 1
        p.save()
    return rc


if __name__ == "__main__":
    sys.exit(main())
