"""bench/ddp_scaling.py on the CPU: two gloo processes against one, the steady-state summary."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_ddp_scaling", ROOT / "bench" / "ddp_scaling.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_efficiency_is_rate_over_k_times_single():
    m = _load()
    assert m.efficiency({1: 100.0, 2: 180.0, 4: 340.0}) == pytest.approx({1: 1.0, 2: 0.9, 4: 0.85})
    assert m.efficiency({2: 180.0}) == {}  # no one-process rate: no efficiency, never a guess


def test_time_to_loss_takes_the_first_epoch_at_or_below_the_target():
    m = _load()
    ep = [{"elapsed_s": 1.0, "val.loss": 0.5}, {"elapsed_s": 2.0, "val.loss": 0.3}, {"elapsed_s": 3.0, "val.loss": 0.2}]
    assert m.time_to_loss(ep, 0.3) == 2.0
    assert m.time_to_loss(ep, 0.1) is None


@pytest.mark.slow
def test_two_gloo_processes_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    m = _load()
    out = tmp_path / "ddp.json"
    rc = m.main(["--spec", "specs/tiny_regression.bk", "--gpus", "1,2", "--per-gpu-batch", "16",
                 "--device", "cpu", "--set", "data.samples=128", "--set", "train.epochs=3", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert set(res["runs"]) == {"1", "2"}
    assert res["runs"]["2"]["world_size"] == 2 and res["runs"]["2"]["status"] == "completed"
    assert res["runs"]["1"]["efficiency"] == 1.0
    assert res["runs"]["2"]["samples_per_s"] > 0 and res["runs"]["2"]["efficiency"] > 0
    assert res["val_loss_target"] is not None
