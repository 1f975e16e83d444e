r"""The routing op's forward and backward captured as two CUDA graphs (issue #20.4: host overhead).

Why: one ``torch.ops.bkdsl.hyperbolic_route`` forward + backward is ≈ 0.40 ms of GPU work, but the host
needs ≈ 1 ms to issue it (custom-op dispatch, the autograd engine, two launchers; measured on the H200's
host, docs/kernels_routing.md). The backward kernels can only start once the host has issued everything
before them, so that host time is serial with the GPU. A CUDA graph replays the recorded launches with
one host call: :class:`GraphedRoute` records the op's forward (one graph) and its backward (a second
graph) with :func:`torch.cuda.make_graphed_callables`, so a forward + backward costs two graph replays,
the input/gradient copies into the graphs' static buffers, and one ``autograd.Function`` node.

Contract (what a CUDA graph implies, checked where it can be):

* one static shape: x [T, D], μ [E, D], float32, on one CUDA device, and the k and c given at capture;
  a call with another shape, dtype or device raises ``BkError`` E0810 (never a silent wrong replay);
* the outputs (gate, index, distance) and the input gradients live in the graphs' static memory: they
  are overwritten by the next call, so a caller that keeps them across calls clones them;
* at most one forward with autograd recording may be awaiting its backward: the backward graph reads
  the forward graph's saved buffers, which a second forward would overwrite. A second such forward
  raises ``BkError`` E0811 (fail closed); forwards under ``torch.no_grad()`` are always allowed.

The graphs run exactly the kernels of the eager op (same launcher, same tiles), so the outputs equal the
eager op's bit for bit on the same inputs; the bench (bench/issue20.py) checks this before timing.
"""

from __future__ import annotations

import torch

from bkdsl.diagnostics import BkError
from bkdsl.kernels.hyperbolic_routing import ops as _ops  # noqa: F401  (registers torch.ops.bkdsl.hyperbolic_route)

__all__ = ["GraphedRoute"]


class GraphedRoute:
    """``GraphedRoute(x, mu, k, c)(x, mu) -> (gate, index, distance)``: the routing op as CUDA graphs.

    ``x`` and ``mu`` at construction are examples (shape, dtype, device, ``requires_grad``); they are
    cloned for the capture, so the caller's tensors are never written. ``warmup`` eager forward +
    backward iterations run first on a side stream (compiling the kernels and settling the caching
    allocator), as :func:`torch.cuda.make_graphed_callables` requires.
    """

    def __init__(self, x: torch.Tensor, mu: torch.Tensor, k: int, c: float = 1.0, warmup: int = 3):
        for name, t in (("x", x), ("mu", mu)):
            if not t.is_cuda:
                raise BkError("E0810", f"GraphedRoute: {name} is on {t.device}; CUDA graphs need CUDA tensors",
                              help="route CPU tensors with bkdsl.kernels.hyperbolic_routing.hyperbolic_route")
            if t.dtype != torch.float32 or t.dim() != 2:
                raise BkError("E0810", f"GraphedRoute: {name} must be a 2-d float32 tensor, got {t.dim()}-d "
                                       f"{t.dtype}", help="the routing kernel takes float32 [T, D] and [E, D]")
        if x.shape[1] != mu.shape[1] or x.device != mu.device:
            raise BkError("E0810", f"GraphedRoute: x {tuple(x.shape)} on {x.device} and mu {tuple(mu.shape)} on "
                                   f"{mu.device} must share D and the device")
        self.k, self.c = int(k), float(c)
        self._sig = (tuple(x.shape), tuple(mu.shape), x.device)
        self._pending = False
        samples = tuple(t.detach().clone().requires_grad_(t.requires_grad) for t in (x, mu))
        k_, c_ = self.k, self.c

        def route(x_: torch.Tensor, mu_: torch.Tensor):
            return torch.ops.bkdsl.hyperbolic_route(x_, mu_, k_, c_)

        self._graphed = torch.cuda.make_graphed_callables(route, samples, num_warmup_iters=warmup,
                                                          allow_unused_input=True)

    def _backward_done(self, *_):
        self._pending = False

    def __call__(self, x: torch.Tensor, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if (tuple(x.shape), tuple(mu.shape), x.device) != self._sig or mu.device != x.device \
                or x.dtype != torch.float32 or mu.dtype != torch.float32:
            raise BkError("E0810", f"GraphedRoute captured x {self._sig[0]}, mu {self._sig[1]} float32 on "
                                   f"{self._sig[2]}; called with x {tuple(x.shape)} {x.dtype} on {x.device}, "
                                   f"mu {tuple(mu.shape)} {mu.dtype} on {mu.device}",
                          help="capture a GraphedRoute for this shape (HyperbolicMoE keeps one per token count)")
        recording = torch.is_grad_enabled() and (x.requires_grad or mu.requires_grad)
        if recording and self._pending:
            raise BkError("E0811", "GraphedRoute: a second forward with autograd recording before the first "
                                   "one's backward would overwrite the buffers that backward reads",
                          help="run the backward first, or the extra forward under torch.no_grad()")
        gate, idx, dist = self._graphed(x, mu)
        if recording and gate.grad_fn is not None:
            self._pending = True
            gate.grad_fn.register_hook(self._backward_done)
        return gate, idx, dist
