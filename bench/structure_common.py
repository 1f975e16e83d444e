"""Shared helpers of the structure benchmarks: environment record and the JSON result file."""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def env() -> dict:
    return {"torch": torch.__version__, "device": "cpu", "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def write(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.date.today().isoformat()}-{name}.json"
    path.write_text(json.dumps({"name": name, "env": env(), **payload}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
