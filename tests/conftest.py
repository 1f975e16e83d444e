"""Shared fixtures: paths of the repository's specs and stdlib, and a position finder for asserting
diagnostic locations without hand-counted columns."""

from __future__ import annotations

from pathlib import Path

import pytest

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
