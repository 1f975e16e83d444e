"""Choosing between a fused Triton kernel and its PyTorch reference.

The rule (ARCHITECTURE.md, "Kernels"): the Triton path on CUDA, the reference elsewhere; a switch
forces either. The switch is the environment variable ``BKDSL_KERNELS`` or :func:`force`:

* ``auto`` (default) — Triton when the tensor is on CUDA and Triton imports, else the reference;
* ``triton`` — always Triton (on the CPU this needs ``TRITON_INTERPRET=1``, used by the tests);
* ``reference`` — always the plain-PyTorch reference.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

_MODES = ("auto", "triton", "reference")
_forced: str | None = None


def mode() -> str:
    m = _forced or os.environ.get("BKDSL_KERNELS", "auto").strip().lower()
    if m not in _MODES:
        raise ValueError(f"BKDSL_KERNELS={m!r}: expected one of {', '.join(_MODES)}")
    return m


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # pragma: no cover - triton missing or broken on this platform
        return False
    return True


def interpreting() -> bool:
    """True when Triton runs its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def use_triton(*tensors: torch.Tensor) -> bool:
    """Whether an op called on ``tensors`` should take its Triton path."""
    m = mode()
    if m == "reference":
        return False
    if m == "triton":
        return triton_available()
    on_cuda = all(t.is_cuda for t in tensors)
    return on_cuda and triton_available()


@contextlib.contextmanager
def force(m: str) -> Iterator[None]:
    """``with force("reference"): ...`` — pick the implementation for a region of code."""
    global _forced
    if m not in _MODES:
        raise ValueError(f"unknown kernel mode {m!r}")
    prev, _forced = _forced, m
    try:
        yield
    finally:
        _forced = prev
