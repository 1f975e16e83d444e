"""Shared fixtures: paths of the repository's specs and stdlib, and a position finder for asserting
diagnostic locations without hand-counted columns."""

from __future__ import annotations

from pathlib import Path

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
