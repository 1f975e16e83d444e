r"""The resolvent diagonal of a tridiagonal Hamiltonian (BK-Core): two-sided and causal (retarded).

Layout (flash-linear-attention's ``fla/ops/<op>/``):

* :mod:`.naive` — the plain-PyTorch reference and the dense float64 oracles (the specification; imports
  nothing of bkdsl but its diagnostics);
* :mod:`.segmented` — the production Triton kernels of the two-sided diagonal (segmented Möbius scans);
* :mod:`.causal` — the causal one-sweep kernels, built from the same sweeps;
* :mod:`.ops` — their ``torch.library`` custom ops (fake and autograd registrations);
* :mod:`.variants` — the previous sequential kernels, the benchmark's peer (the production path does
  not import it).

:func:`resolvent_diag` is the entry point: it decides once per call whether the Triton custom op or the
reference runs (:func:`bkdsl.kernels.dispatch.use_triton`). The Triton modules are imported only on
that path, so this package imports without Triton (e.g. on a CPU-only install without it).
"""

from __future__ import annotations

import importlib

import torch

from bkdsl.kernels import dispatch
from bkdsl.kernels.resolvent.naive import (ResolventDiag, ResolventDiagCausal, SpectralParameter, check_inputs,
                                           resolvent_backward_reference, resolvent_causal_backward_reference,
                                           resolvent_diag_causal_dense, resolvent_diag_causal_reference,
                                           resolvent_diag_dense, resolvent_diag_reference, spectral_parameter)

__all__ = ["resolvent_diag", "resolvent_diag_reference", "resolvent_backward_reference", "resolvent_diag_dense",
           "ResolventDiag", "resolvent_diag_causal_reference", "resolvent_causal_backward_reference",
           "resolvent_diag_causal_dense", "ResolventDiagCausal", "spectral_parameter", "check_inputs",
           "SpectralParameter", "load_ops"]


def load_ops() -> None:
    """Register ``torch.ops.bkdsl.resolvent_diag`` and ``…_causal`` (imports Triton)."""
    importlib.import_module("bkdsl.kernels.resolvent.ops")


def resolvent_diag(a: torch.Tensor, b: torch.Tensor, z: SpectralParameter, causal: bool = False) -> torch.Tensor:
    """G_ii = diag((H − zI)⁻¹) for a batch of symmetric tridiagonal H; complex [B, N].

    a: [B, N] on-site potential, b: [B, N−1] hopping, real float32 (→ complex64) or float64
    (→ complex128); z: complex with Im z > 0, or a pair (Re z, Im z). Differentiable w.r.t. a and b.
    With ``causal=True`` the retarded diagonal G⁽ⁱ⁾_ii of each leading block H[:i+1, :i+1] instead
    (:mod:`.naive`): output i depends only on a_{≤i} and b_{<i}.

    One decision per call: the custom op (``torch.ops.bkdsl.resolvent_diag[_causal]``, Triton) where
    :func:`bkdsl.kernels.dispatch.use_triton` says so (CUDA tensors by default), the reference's
    autograd Function elsewhere.
    """
    z = spectral_parameter(z)
    check_inputs(a, b)
    if dispatch.use_triton(a, b):
        load_ops()
        op = torch.ops.bkdsl.resolvent_diag_causal if causal else torch.ops.bkdsl.resolvent_diag
        return op(a.contiguous(), b.contiguous(), z.real, z.imag)
    return (ResolventDiagCausal if causal else ResolventDiag).apply(a, b, z)
