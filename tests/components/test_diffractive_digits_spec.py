"""specs/diffractive_digits.bk trains from the README's set-up (`make setup` installs the `optics` extra:
scikit-learn's 8×8 digits, PADO for the optics comparison): one CPU epoch from the command line learns
the digits well above chance (10 %), and the compile report establishes the propagator's `contractive`
claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("sklearn")


def _run(*args: str, tmp) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bkdsl", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_diffractive_digits_trains_one_epoch_from_the_cli(tmp_path):
    r = _run("train", "specs/diffractive_digits.bk", "--set", "train.epochs=1", "--quiet",
             "--out", str(tmp_path / "run"), tmp=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    acc = {k: v for part in final.values() if isinstance(part, dict) for k, v in part.items() if "accuracy" in k}
    assert acc and max(acc.values()) > 0.5, final   # chance is 0.1; one epoch reached 0.90 on 2026-12-03


def test_diffractive_digits_compile_report_establishes_contractive(tmp_path):
    r = _run("compile", "specs/diffractive_digits.bk", "-o", str(tmp_path / "out"), tmp=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    report = (tmp_path / "out" / "report.md").read_text()
    cells = [c.strip() for c in next(l for l in report.splitlines() if "| contractive |" in l).split("|")]
    assert cells[1:4] == ["`free`", "contractive", "yes"], cells   # component, claim, established
