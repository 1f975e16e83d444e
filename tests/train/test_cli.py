"""`bkdsl train` end to end on specs/tiny_regression.bk: outputs, --set, SIGKILL + --resume, torchrun."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bkdsl.train.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "tiny_regression.bk")
QUICK = ["--set", "train.epochs=3", "--set", "data.samples=160", "--quiet", "--device", "cpu"]  # 4 batches/epoch


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env.pop("BKDSL_FAULT_KILL_AT_STEP", None)
    env.update(extra)
    return env


def _cli(*args, **env):
    return subprocess.Popen([sys.executable, "-m", "bkdsl.train.cli", *args], cwd=ROOT, env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_tiny_spec_trains_end_to_end(tmp_path, capsys):
    assert main([SPEC, "--out", str(tmp_path), *QUICK]) == 0
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in recs if r["event"] == "epoch"]) == 3
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["status"] == "completed" and final["record"]["overrides"] == {"train.epochs": "3", "data.samples": "160"}
    assert all(math.isfinite(v) for v in final["test"].values())
    assert final["units"]["mae_rho"] == "fm^-3"
    for p in ("checkpoints/last.safetensors", "checkpoints/best.safetensors", "plots/loss.png",
              "plots/val_mae_rho.png", "train.log"):
        assert (tmp_path / p).exists(), p
    assert "completed" in capsys.readouterr().out


@pytest.mark.parametrize("args,code", [
    (["--set", "epochs"], "E0206"),
    (["--set", "epochs=3"], "E0206"),
    (["--resume"], "E0610"),
])
def test_user_errors_are_diagnostics_not_tracebacks(tmp_path, capsys, args, code):
    assert main([SPEC, "--out", str(tmp_path / "none"), *args]) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and "Traceback" not in err


def test_corrupted_checkpoint_is_reported_on_resume(tmp_path, capsys):
    assert main([SPEC, "--out", str(tmp_path), "--set", "train.epochs=1", "--set", "data.samples=64", "--quiet"]) == 0
    p = tmp_path / "checkpoints" / "last.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    # the same --set values: a changed spec would be refused first (E0624, tests/train/test_record.py)
    assert main([SPEC, "--out", str(tmp_path), "--set", "train.epochs=1", "--set", "data.samples=64", "--resume",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error[E0606]" in err and "Traceback" not in err


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    """Kill -9 at global step 6 (epoch 2, batch 3 of 4), resume from the epoch-1 checkpoint: the final
    weights equal those of an uninterrupted run bit for bit (CPU, one thread, same seed)."""
    ref = _cli(SPEC, "--out", str(tmp_path / "ref"), *QUICK)
    killed = _cli(SPEC, "--out", str(tmp_path / "run"), *QUICK, BKDSL_FAULT_KILL_AT_STEP="6")
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "final.json").exists()
    resumed = _cli(SPEC, "--out", str(tmp_path / "run"), *QUICK, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref.communicate(timeout=300)
    assert ref.returncode == 0
    a = load_file(str(tmp_path / "ref/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "run/checkpoints/last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fa = json.loads((tmp_path / "ref/final.json").read_text())
    fb = json.loads((tmp_path / "run/final.json").read_text())
    assert fa["test"] == fb["test"]


def test_torchrun_two_gloo_processes_match_one_process(tmp_path):
    """DDP over 2 CPU processes (gloo): same global batch and data order, so the weights match a
    single-process run up to float summation order; only rank 0 writes."""
    single = _cli(SPEC, "--out", str(tmp_path / "one"), *QUICK)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "bkdsl.train.cli", SPEC, "--out", str(tmp_path / "ddp"), *QUICK]
    ddp = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single.communicate(timeout=300)
    a = load_file(str(tmp_path / "one/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "ddp/checkpoints/last.safetensors"))
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    f = json.loads((tmp_path / "ddp/final.json").read_text())
    assert f["world_size"] == 2 and f["status"] == "completed"
    assert len((tmp_path / "ddp/metrics.jsonl").read_text().splitlines()) == 4  # 3 epochs + test, rank 0 only
