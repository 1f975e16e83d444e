"""Tile tables with fallback: a kernel's default tile that fails to compile or fails its check gives way to
the next tile of its table, with one warning, never a crash.

Why: a tuned tile can break where it is the default — the causal dK/dV tile of the scattering attention
(64 × 128, 8 warps, 3 stages) crashed ``ptxas`` with a segmentation fault on an H200 with torch 2.11 /
Triton 3.6, killing every run that used it. Triton compiles a configuration at its first launch, so a
failure shows up there as an exception (``CompilationError``, ``PTXASError``, ``OutOfResources``, or a
``RuntimeError`` from the PTX assembler in older Triton); ptxas runs in a subprocess, so its crash does
not take the Python process with it.

:func:`run` launches ``launch(tile)`` for the tiles of a table in order, starting at the one that worked
last time for the same key. A tile is given up when its launch raises one of those compile errors, or
when the optional ``check(result)`` is False (e.g. non-finite output from finite input); the failure is
logged once as a warning (what failed, why, which tile runs instead) and remembered for the process, so
later calls go straight to the tile that works (and skip the check: it runs once per tile and key, at
the first use, where a miscompiled tile would show). When every tile fails, :class:`TileTableExhausted`
carries each tile's reason. Errors that are not compile errors (CUDA faults, wrong arguments) propagate
unchanged: they say nothing about a tile, and a faulted CUDA context would fail every tile anyway.

:func:`active` says which tile each (kernel, key) runs; the benchmarks record it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Hashable, Sequence, TypeVar

import torch

try:
    from triton.errors import TritonError as _TritonError  # CompilationError, PTXASError, OutOfResources
except ImportError:  # pragma: no cover - Triton missing or older than 3.0
    _TritonError = ()  # type: ignore[assignment]

__all__ = ["run", "active", "failures", "reset", "TileTableExhausted", "is_compile_error",
           "finite_or_nonfinite_input"]

log = logging.getLogger("bkdsl.kernels.tiles")
T = TypeVar("T")
R = TypeVar("R")

# (kernel, key) → index of the tile in use; (kernel, key, index) → why that tile was given up
_active: dict[tuple[str, Hashable], tuple[int, Any]] = {}
_failed: dict[tuple[str, Hashable, int], str] = {}


class TileTableExhausted(RuntimeError):
    """Every tile of a kernel's table failed to compile or failed its check."""


def is_compile_error(e: BaseException) -> bool:
    """Whether ``e`` is a failure to build a tile (compile, assemble, fit in the SM's resources), as
    opposed to a fault at run time or a caller's error."""
    if _TritonError and isinstance(e, _TritonError):
        return True
    if isinstance(e, RuntimeError):
        msg = str(e)
        if "CUDA error" in msg or "illegal memory access" in msg:
            return False  # a run-time fault: the context is gone, no tile can help
        return any(s in msg for s in ("ptxas", "PTXAS", "PTX codegen", "CompilationError", "out of resource"))
    return False


def run(kernel: str, key: Hashable, table: Sequence[T], launch: Callable[[T], R],
        check: Callable[[R], bool] | None = None) -> R:
    """``launch(tile)`` with the first tile of ``table`` that compiles and passes ``check``.

    ``kernel`` names the kernel in the warning and in :func:`active`; ``key`` separates the uses that
    compile differently (shape class, dtype, device). Starts at the tile that worked last for (kernel,
    key); tiles already given up for that key are not retried; ``check`` runs until a tile is confirmed.
    """
    if not table:
        raise TileTableExhausted(f"{kernel}: empty tile table for {key!r}")
    start = _active.get((kernel, key), (0, None))[0]
    for i in range(start, len(table)):
        if (kernel, key, i) in _failed:
            continue
        tile = table[i]
        try:
            result = launch(tile)
        except Exception as e:  # noqa: BLE001 - only compile errors are handled, the rest re-raised
            if not is_compile_error(e):
                raise
            _give_up(kernel, key, table, i, f"failed to compile: {type(e).__name__}: {str(e)[:500]}")
            continue
        confirmed = _active.get((kernel, key), (None,))[0] == i
        if check is not None and not confirmed and not check(result):
            _give_up(kernel, key, table, i, "failed its check (non-finite or wrong output)")
            continue
        _active[(kernel, key)] = (i, tile)
        return result
    reasons = "; ".join(f"{table[i]!r}: {_failed.get((kernel, key, i), '?')}" for i in range(len(table)))
    raise TileTableExhausted(f"{kernel}: no tile of its table works for {key!r} — {reasons}")


def _give_up(kernel: str, key: Hashable, table: Sequence[Any], i: int, why: str) -> None:
    _failed[(kernel, key, i)] = why
    nxt = f"falling back to {table[i + 1]!r}" if i + 1 < len(table) else "no tile left"
    log.warning("%s: tile %r %s for %r; %s", kernel, table[i], why, key, nxt)


def active(kernel: str | None = None) -> dict[str, Any]:
    """The tile in use per kernel and key, ``{"kernel key": tile}`` (only kernels launched so far in this
    process), optionally for one kernel or op ("resolvent" selects "resolvent.fwd", …); the benchmarks
    write it to their JSON."""
    return {f"{k} {key!r}": tile for (k, key), (_, tile) in _active.items() if _named(k, kernel)}


def failures(kernel: str | None = None) -> dict[str, str]:
    """The tiles given up so far and why, ``{"kernel key tile-index": reason}``."""
    return {f"{k} {key!r} {i}": why for (k, key, i), why in _failed.items() if _named(k, kernel)}


def _named(k: str, kernel: str | None) -> bool:
    """``kernel`` selects itself and its parts: "resolvent" → "resolvent.fwd", "resolvent.causal_bwd", …"""
    return kernel is None or k == kernel or k.startswith(kernel + ".")


def finite_or_nonfinite_input(*inputs: Any) -> Callable[[Any], bool]:
    """A check: every tensor of the result is finite, unless some input already is not (NaN in, NaN out
    is no tile's fault). Fails closed on an empty result."""

    def tensors(x: Any) -> list:
        if isinstance(x, torch.Tensor):
            return [torch.view_as_real(x) if x.is_complex() else x]
        if isinstance(x, (tuple, list)):
            return [t for y in x for t in tensors(y)]
        return []

    def check(result: Any) -> bool:
        if not all(bool(torch.isfinite(t).all()) for t in tensors(inputs)):
            return True
        out = tensors(result)
        return bool(out) and all(bool(torch.isfinite(t).all()) for t in out)

    return check


def reset() -> None:
    """Forget which tiles work (tests)."""
    _active.clear()
    _failed.clear()
