"""A real run of specs/tiny_regression.bk (2 epochs, 160 samples, CPU, ~5 s) for the tests of what
comes after training: load_run, export, runs, the resume guard."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "tiny_regression.bk"
QUICK = ["--set", "train.epochs=2", "--set", "data.samples=160", "--quiet", "--device", "cpu"]


def train_tiny(tmp: Path, *extra: str, spec: Path | None = None) -> Path:
    """Copy the tiny spec into ``tmp`` (so tests may edit it), train it into ``tmp/run``; returns the run dir."""
    from bkdsl.train.cli import main

    os.environ.setdefault("BKDSL_CACHE", str(tmp / "cache"))
    torch.set_num_threads(1)
    tmp.mkdir(parents=True, exist_ok=True)
    dst = tmp / "tiny_regression.bk"
    if not dst.exists():
        shutil.copy(spec or SPEC, dst)
    run = tmp / "run"
    assert main([str(dst), "--out", str(run), *QUICK, *extra]) == 0
    return run
