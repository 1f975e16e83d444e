"""Shared fixtures: paths of the repository's specs and stdlib, and a position finder for asserting
diagnostic locations without hand-counted columns."""

from __future__ import annotations

import os

# Triton decides compiled vs interpreted when a module defines its jit functions — its own standard
# library (tl.sum, ...) included, at `import triton`. Any test module may import a kernel package
# transitively (tests/components/test_phase8_causal.py → components.bk_core → nn → kernels.tiles →
# triton) during collection, before tests/kernels/conftest.py runs, so the CPU interpreter is chosen
# here, first (a compiled tl.sum inside an interpreted kernel fails every kernel test under -n 2).
os.environ["TRITON_INTERPRET"] = "1"

from pathlib import Path  # noqa: E402

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.bk"))
STDLIB = sorted((ROOT / "stdlib").glob("*.bk"))


def pos(src: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, col) of the nth occurrence of ``needle`` in ``src``."""
    i = -1
    for _ in range(nth + 1):
        i = src.index(needle, i + 1)
    line = src.count("\n", 0, i) + 1
    col = i - (src.rfind("\n", 0, i) + 1) + 1
    return line, col


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _float32_default():
    """Every test starts with torch's default dtype float32 and leaves it as it found it: tests draw
    inputs with the default dtype, and one module changing it must not leak into the next."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(old)
