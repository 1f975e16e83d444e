r"""Hyperbolic routing: the k nearest centroids of each token by Poincaré distance, gate exp(−d).

Layout (flash-linear-attention's ``fla/ops/<op>/``): :mod:`.naive` — the plain-PyTorch reference and the
closed-form backward (the specification); :mod:`.kernel` — the Triton forward and backward kernels and
their launch configurations; :mod:`.ops` — the custom op ``torch.ops.bkdsl.hyperbolic_route``;
:mod:`.graphed` — the op's forward and backward captured as CUDA graphs (opt-in, #20.4).

:func:`hyperbolic_route` is the entry point and makes the one dispatch decision per call; the Triton
modules are imported only on that path (this package imports without Triton).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.hyperbolic_routing.naive import (check_route, hyperbolic_route_reference, poincare_dist64,
                                                    route_backward)

__all__ = ["hyperbolic_route", "hyperbolic_route_reference", "route_backward", "check_route", "poincare_dist64",
           "load_ops", "load_graphed"]


def load_ops() -> ModuleType:
    """Register ``torch.ops.bkdsl.hyperbolic_route`` (imports Triton); returns the ops module."""
    return importlib.import_module("bkdsl.kernels.hyperbolic_routing.ops")


def load_graphed() -> type:
    """:class:`.graphed.GraphedRoute`, the op's forward and backward as CUDA graphs (imports Triton)."""
    return importlib.import_module("bkdsl.kernels.hyperbolic_routing.graphed").GraphedRoute


def hyperbolic_route(x: torch.Tensor, mu: torch.Tensor, k: int, c: float = 1.0
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate, index, distance) [T, k] of the k nearest centroids, nearest first; gate = exp(−d).

    One decision per call: the fused kernel (``torch.ops.bkdsl.hyperbolic_route``) where
    :func:`bkdsl.kernels.dispatch.use_triton` says so and the kernel takes the inputs (float32, at most
    ``MAX_EXPERTS`` experts), :func:`hyperbolic_route_reference` (autograd) otherwise.
    """
    check_route(x, mu, k)
    if dispatch.use_triton(x, mu) and x.dtype == torch.float32 and mu.dtype == torch.float32:
        if mu.shape[0] <= load_ops().MAX_EXPERTS:
            return torch.ops.bkdsl.hyperbolic_route(x.contiguous(), mu.contiguous(), k, c)
    return hyperbolic_route_reference(x, mu, k, c)
