"""phase8 trains from the command line: a tiny configuration on the CPU, in one process and in two
DDP processes (gloo) — the routed experts leave parameters without gradients in some steps, which DDP
must tolerate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

TINY = ["--set", "train.model=phase8(d = 32, layers = 1, heads = 2, experts = 4, blk = 16, tau = 3.0)",
        "--set", "data.seq_len=64", "--set", "data.max_bytes=400000", "--set", "train.batch=8",
        "--set", "train.steps=40", "--quiet"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_phase8_learns_bytes_on_cpu(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bkdsl", "train", "specs/phase8.bk", "--out", str(tmp_path / "r"),
                        *TINY], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    final = json.loads((tmp_path / "r" / "final.json").read_text())
    bpb = final["test"]["test.bits_per_byte"]
    assert bpb < 7.0, bpb  # a uniform guess is 8 bits per byte
    recs = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines() if l.strip()]
    rec = recs[0]
    for k in ("model.attention_blocks_skipped", "model.moe_load_max", "model.moe_load_min"):
        assert k in rec and 0.0 <= rec[k] <= 1.0
    # the gates carry gradient: Riemannian Adam moves the centroids away from their k-means positions
    travel = [r["model.moe_centroid_travel"] for r in recs if "model.moe_centroid_travel" in r]
    assert travel and travel[-1] > 1e-3, travel


def test_gpt_baseline_learns_bytes_on_cpu(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bkdsl", "train", "specs/gpt_baseline.bk", "--out", str(tmp_path / "g"),
                        "--set", "train.model=gpt_baseline(d = 32, layers = 1, heads = 2, max_len = 64)",
                        *TINY[2:]], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    final = json.loads((tmp_path / "g" / "final.json").read_text())
    assert final["test"]["test.bits_per_byte"] < 7.0, final["test"]


def test_phase8_trains_data_parallel_with_unused_experts(tmp_path):
    # 60 kB of text leaves a held-out split smaller than the number of ranks: a rank with no evaluation
    # sample must still join the all-reduce (it once crashed there)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "bkdsl", "train", "specs/phase8.bk", "--out", str(tmp_path / "ddp"), *TINY,
           "--set", "data.max_bytes=60000", "--set", "train.steps=10"]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    final = json.loads((tmp_path / "ddp" / "final.json").read_text())
    assert final["world_size"] == 2


def test_runtime_manifold_assertions_mode(tmp_path):
    """--assert-manifolds checks every manifold parameter and manifold-typed output during training."""
    r = subprocess.run([sys.executable, "-m", "bkdsl", "train", "specs/phase8.bk", "--assert-manifolds",
                        "--out", str(tmp_path / "am"), *TINY[:-3], "--set", "train.steps=5", "--quiet"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "manifold assertions on" in (tmp_path / "am" / "train.log").read_text()


def test_manifold_outputs_are_tagged_for_the_assertions():
    import geoopt

    import bkdsl

    gm = bkdsl.compile_file(ROOT / "specs" / "phase8.bk").module
    assert isinstance(gm.bk_layer.bk_out_manifold, geoopt.PoincareBall)
    assert isinstance(gm.bk_layer.hyperbolic_moe.bk_out_manifold, geoopt.PoincareBall)
