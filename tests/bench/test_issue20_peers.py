"""bench/issue20.py's resolvent peers run each in their own process under their own cap: a peer past its
cap is killed (its whole process group) and recorded as "timeout", and the part goes on; one within its
cap reports its check, first-call (compile) seconds and time. CPU, the script's --smoke mode."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_issue20", ROOT / "bench" / "issue20.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_peer_past_its_cap_is_recorded_as_timeout_and_one_within_reports(tmp_path):
    i20 = _load()
    p = i20.Part("resolvent", tmp_path / "resolvent.json", 60.0, smoke=True)
    t0 = time.time()
    rec = i20.run_peer_process(p, "doubling", 7, 0.5)     # cannot even import torch in 0.5 s
    assert rec["status"] == "timeout" and time.time() - t0 < 5
    assert "fwd" not in rec.get("time_ms", {})
    rec = i20.run_peer_process(p, "doubling", 7, 60.0)
    assert rec["status"] == "ok", rec
    assert rec["checks"]["fwd"]["ok"] and rec["checks"]["fwd+bwd"]["ok"]
    assert rec["time_ms"]["fwd"] > 0 and rec["time_ms"]["fwd+bwd"] > 0
    assert set(rec["compile_s"]) == {"fwd", "fwd+bwd"}
