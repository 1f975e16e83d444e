"""The resolvent kernels as torch custom ops: ``torch.ops.bkdsl.resolvent_diag`` (two-sided) and
``torch.ops.bkdsl.resolvent_diag_causal`` (retarded), each with a backward op, a fake (shape)
implementation and an autograd formula, so torch.compile and torch.export trace each as one opaque node.

Each op launches its kernel through a tile table (:mod:`bkdsl.kernels.tiles`): the measured layout
first, then plainer ones; a layout that fails to compile, or gives non-finite output from finite input
at its first use, gives way to the next with one warning. ``tiles.active("resolvent")`` says which runs.

An op is the Triton path, nothing else: which path a call takes is decided once, by
:func:`bkdsl.kernels.resolvent.resolvent_diag` (:func:`bkdsl.kernels.dispatch.use_triton`); the fx
fusion pass emits these ops only for graphs known to run on CUDA. On CPU tensors they need
``TRITON_INTERPRET=1`` (the tests).
"""

from __future__ import annotations

import torch

from bkdsl.kernels import tiles
from bkdsl.kernels.resolvent.causal import resolvent_diag_causal_backward_triton, resolvent_diag_causal_triton
from bkdsl.kernels.resolvent.segmented import (BWD_SEG, BWD_SEGS, IO, SEG, SEGS, _complex_dtype,
                                               resolvent_diag_backward_triton, resolvent_diag_triton)

__all__ = ["resolvent_diag_op", "resolvent_diag_backward_op", "resolvent_diag_causal_op",
           "resolvent_diag_causal_backward_op", "FWD_TILES", "BWD_TILES"]

# Layout tables (launcher keywords), the measured default first (segmented.py): the tile-I/O forward at
# 8 × 128, then the strided kernel at the earlier measured 4 × 256 (0.28–0.31 ms on the H200), then a
# small strided layout. The backward: 2 × 128 strided, then 2 × 32.
FWD_TILES = (dict(seg=SEG, segs=SEGS, io=IO), dict(seg=4, segs=256, io="strided"), dict(seg=4, segs=32, io="strided"))
BWD_TILES = (dict(seg=BWD_SEG, segs=BWD_SEGS, io="strided"), dict(seg=2, segs=32, io="strided"))


def _key(a: torch.Tensor) -> tuple:
    return (str(a.dtype), a.device.type)


@torch.library.custom_op("bkdsl::resolvent_diag", mutates_args=())
def resolvent_diag_op(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float) -> torch.Tensor:
    """diag((H − zI)⁻¹) by the segmented two-sweep kernel."""
    return tiles.run("resolvent.fwd", _key(a), FWD_TILES, lambda t: resolvent_diag_triton(a, b, z_re, z_im, **t),
                     tiles.finite_or_nonfinite_input(a, b))


@resolvent_diag_op.register_fake
def _(a, b, z_re, z_im):
    return a.new_empty(a.shape, dtype=_complex_dtype(a.dtype))


@torch.library.custom_op("bkdsl::resolvent_diag_backward", mutates_args=())
def resolvent_diag_backward_op(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                               grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) by the adjoint sweeps."""
    return tiles.run("resolvent.bwd", _key(a), BWD_TILES,
                     lambda t: resolvent_diag_backward_triton(a, b, z_re, z_im, grad, **t),
                     tiles.finite_or_nonfinite_input(a, b, grad))


@resolvent_diag_backward_op.register_fake
def _(a, b, z_re, z_im, grad):
    return torch.empty_like(a), torch.empty_like(b)


@torch.library.custom_op("bkdsl::resolvent_diag_causal", mutates_args=())
def resolvent_diag_causal_op(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float) -> torch.Tensor:
    """The retarded diagonal G⁽ⁱ⁾_ii = 1/α_i by the one-sweep kernel."""
    return tiles.run("resolvent.causal_fwd", _key(a), FWD_TILES,
                     lambda t: resolvent_diag_causal_triton(a, b, z_re, z_im, **t),
                     tiles.finite_or_nonfinite_input(a, b))


@resolvent_diag_causal_op.register_fake
def _(a, b, z_re, z_im):
    return a.new_empty(a.shape, dtype=_complex_dtype(a.dtype))


@torch.library.custom_op("bkdsl::resolvent_diag_causal_backward", mutates_args=())
def resolvent_diag_causal_backward_op(a: torch.Tensor, b: torch.Tensor, z_re: float, z_im: float,
                                      grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) of the retarded diagonal by the Ā adjoint sweep."""
    return tiles.run("resolvent.causal_bwd", _key(a), BWD_TILES,
                     lambda t: resolvent_diag_causal_backward_triton(a, b, z_re, z_im, grad, **t),
                     tiles.finite_or_nonfinite_input(a, b, grad))


@resolvent_diag_causal_backward_op.register_fake
def _(a, b, z_re, z_im, grad):
    return torch.empty_like(a), torch.empty_like(b)


def _setup_context(ctx, inputs, output):
    a, b, z_re, z_im = inputs
    ctx.save_for_backward(a, b)
    ctx.z = (z_re, z_im)


def _backward(ctx, grad):
    a, b = ctx.saved_tensors
    grad_a, grad_b = torch.ops.bkdsl.resolvent_diag_backward(a, b, ctx.z[0], ctx.z[1], grad)
    return grad_a, grad_b, None, None


def _causal_backward(ctx, grad):
    a, b = ctx.saved_tensors
    grad_a, grad_b = torch.ops.bkdsl.resolvent_diag_causal_backward(a, b, ctx.z[0], ctx.z[1], grad)
    return grad_a, grad_b, None, None


torch.library.register_autograd("bkdsl::resolvent_diag", _backward, setup_context=_setup_context)
torch.library.register_autograd("bkdsl::resolvent_diag_causal", _causal_backward, setup_context=_setup_context)
