"""Host (Python / dispatch) cost of one routing call, with the Triton launches replaced by no-ops (#20.4).

    python bench/routing_host.py [--rounds 15 --calls 200 --out FILE]     # CPU; no GPU, no interpreter

What a GPU bench cannot separate: the time the host needs to *issue* the routing op's forward and backward
(custom-op dispatch, the autograd engine, the launchers' argument handling and allocations), measured here
on CPU tensors with the three kernels' ``__getitem__`` launches stubbed out (this bench only: the tests run
the real kernels). Rows, each the minimum over ``--rounds`` of the mean over ``--calls`` calls (µs):

* ``launcher fwd`` / ``launcher bwd`` — :func:`hyperbolic_route_triton`, :func:`route_backward_triton`;
* ``op fwd`` — ``torch.ops.bkdsl.hyperbolic_route`` without grad;
* ``op fwd+bwd`` — the op with grad, the bench's loss (gate·gg + dist·gd) and ``autograd.grad``;
* ``loss + autograd.grad only`` — the same step with the op replaced by a differentiable stand-in of
  equal outputs (what the caller's own ops cost, the floor of any op);
* ``hyperbolic_route() entry fwd`` — the package's dispatch decision plus the op;
* ``plain autograd.Function fwd+bwd`` — the same launchers behind a bare ``autograd.Function``: the
  custom op's own share is the difference to ``op fwd+bwd``.

On the H200's host the same path took ≈ 0.98 ms per op forward + backward (docs/kernels_routing.md);
CUDA graphs (kernels/hyperbolic_routing/graphed.py) replace it by two graph replays.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager

import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.hyperbolic_routing import hyperbolic_route
from bkdsl.kernels.hyperbolic_routing import kernel as kh
from bkdsl.kernels.hyperbolic_routing import ops as _ops  # noqa: F401  (registers the op)


class _NoLaunch:
    """Stands in for a JITFunction: ``kernel[grid](*args, **kw)`` does nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kw: None


@contextmanager
def launches_stubbed():
    names = ("_route_tiled_kernel", "_bwd_coef_kernel", "_bwd_grad_kernel")
    saved = {n: getattr(kh, n) for n in names}
    try:
        for n in names:
            setattr(kh, n, _NoLaunch())
        yield
    finally:
        for n, k in saved.items():
            setattr(kh, n, k)


class _RouteFunction(torch.autograd.Function):
    """The same launchers behind a plain autograd.Function: what the custom op's dispatch costs on top
    (the op stays the production path: torch.compile and export need it)."""

    @staticmethod
    def forward(ctx, x, mu, k, c):
        gate, idx, dist = kh.hyperbolic_route_triton(x, mu, k, c)
        ctx.save_for_backward(x, mu, idx)
        ctx.c = c
        ctx.mark_non_differentiable(idx)
        ctx.set_materialize_grads(False)
        return gate, idx, dist

    @staticmethod
    def backward(ctx, grad_gate, grad_idx, grad_dist):
        x, mu, idx = ctx.saved_tensors
        return (*kh.route_backward_triton(x, mu, idx, grad_gate, grad_dist, ctx.c), None, None)


def per_call_us(fn, rounds: int, calls: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    T, E, D, k = args.tokens, 64, 256, 2
    x = (0.1 * torch.randn(T, D)).requires_grad_(True)
    mu = (0.1 * torch.randn(E, D)).requires_grad_(True)
    gg, gd = torch.randn(T, k), torch.randn(T, k)
    idx = torch.zeros(T, k, dtype=torch.int64)
    op = torch.ops.bkdsl.hyperbolic_route
    rows = {}
    with launches_stubbed(), dispatch.force("triton"):
        xd, mud = x.detach(), mu.detach()
        rows["launcher fwd"] = lambda: kh.hyperbolic_route_triton(xd, mud, k)
        rows["launcher bwd"] = lambda: kh.route_backward_triton(xd, mud, idx, gg, gd)
        rows["op fwd"] = lambda: op(xd, mud, k, 1.0)

        def op_fwd_bwd():
            gate, _, dist = op(x, mu, k, 1.0)
            return torch.autograd.grad((gate * gg).sum() + (dist * gd).sum(), (x, mu))
        rows["op fwd+bwd"] = op_fwd_bwd

        def loss_only():
            s = (x[:, :k] + mu[0, :k])       # differentiable stand-in for (gate, dist): one cheap op
            return torch.autograd.grad((s * gg).sum() + (s * gd).sum(), (x, mu))
        rows["loss + autograd.grad only"] = loss_only
        rows["hyperbolic_route() entry fwd"] = lambda: hyperbolic_route(xd, mud, k)

        def function_fwd_bwd():
            gate, _, dist = _RouteFunction.apply(x, mu, k, 1.0)
            return torch.autograd.grad((gate * gg).sum() + (dist * gd).sum(), (x, mu))
        rows["plain autograd.Function fwd+bwd (no custom op)"] = function_fwd_bwd
        res = {name: per_call_us(fn, args.rounds, args.calls) for name, fn in rows.items()}
    res = {"unit": "us per call (min over rounds of the mean)", "tokens": T, "torch": torch.__version__,
           "rows": res}
    for name, us in res["rows"].items():
        print(f"{name:34s} {us:8.1f} us")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
