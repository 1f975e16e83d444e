"""The run record (run.json, resolved.json, spec/) and the resume guard: E0624 on a changed spec."""

import json
import shutil

import pytest

import bkdsl
from bkdsl.train import record as R
from bkdsl.train.cli import main
from tests.tiny_run import QUICK, SPEC, train_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("record"))


def test_run_directory_keeps_spec_overrides_versions_git_and_host(run):
    rec = json.loads((run / "run.json").read_text())
    assert rec["format"] == "bkdsl-run/1" and len(rec["spec_hash"]) == 64
    assert rec["overrides"] == {"train.epochs": "2", "data.samples": "160"}
    assert rec["versions"]["torch"] and rec["versions"]["bkdsl"] == bkdsl.__version__
    assert rec["host"]["hostname"] and "git" in rec and "bkdsl" in rec["git"]
    assert rec["fields"]["rho"]["unit"] == "fm^-3" and rec["inputs"] == ["shape"]
    assert [h["event"] for h in rec["history"]] == ["start"]
    resolved = json.loads((run / "resolved.json").read_text())
    assert resolved["train"]["tiny"]["epochs"] == 2                       # the override is applied
    assert resolved["data"]["ws"]["source"]["kwargs"]["samples"] == 160
    assert (run / "spec" / "tiny_regression.bk").read_text() == SPEC.read_text()
    final = json.loads((run / "final.json").read_text())
    assert final["record"]["spec_hash"] == rec["spec_hash"]               # checkpoints and final.json carry it


def test_hash_ignores_comments_and_layout_but_not_values():
    src = SPEC.read_text()
    h = lambda text, ov=None: R.spec_hash(R.resolved_spec(bkdsl.compile_source(text, "t.bk", ov)), ov)  # noqa: E731
    base = h(src)
    assert h("# a new comment\n\n" + src.replace("batch     = 32", "batch = 32   # same")) == base
    assert h(src.replace("adam(lr = 3e-3)", "adam(lr = 1e-3)")) != base
    assert h(src.replace("seed = 7", "seed = 8")) != base                  # data seed → another split
    assert h(src.replace("0.1 * mse(A)", "0.2 * mse(A)")) != base          # a loss coefficient
    assert h(src, {"train.batch": "32"}) != base                           # an override is part of the hash


def _copy(run, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(run.parent, dst)
    return dst / "tiny_regression.bk", dst / "run"


def test_resume_with_a_changed_spec_is_refused_with_the_changes(run, tmp_path, capsys):
    spec, rd = _copy(run, tmp_path)
    before = (rd / "final.json").read_text()
    spec.write_text(spec.read_text().replace("adam(lr = 3e-3)", "adam(lr = 1e-2)"))
    assert main([str(spec), "--out", str(rd), *QUICK, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "error[E0624]" in err and "Traceback" not in err
    assert "spec.train.tiny.optimizer.kwargs.lr: 0.003 → 0.01" in err
    assert (rd / "final.json").read_text() == before                      # nothing overwritten


def test_resume_with_a_changed_override_is_refused(run, tmp_path, capsys):
    spec, rd = _copy(run, tmp_path)
    assert main([str(spec), "--out", str(rd), *QUICK, "--set", "data.seed=9", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "error[E0624]" in err and "data.ws.source.kwargs.seed: 7 → 9" in err and "overrides.data.seed" in err


def test_allow_changes_resumes_and_records_the_changes(run, tmp_path):
    spec, rd = _copy(run, tmp_path)
    more = ["--set", "train.epochs=3", "--set", "data.samples=160", "--quiet", "--device", "cpu"]
    assert main([str(spec), "--out", str(rd), *more, "--resume", "--allow-changes"]) == 0
    rec = json.loads((rd / "run.json").read_text())
    assert [h["event"] for h in rec["history"]] == ["start", "resume"]
    assert "spec.train.tiny.epochs: 2 → 3" in rec["history"][1]["allowed_changes"]
    assert rec["history"][1]["previous_spec_hash"] != rec["spec_hash"]
    assert json.loads((rd / "final.json").read_text())["epochs"] == 3


def test_unchanged_resume_is_accepted(run, tmp_path):
    spec, rd = _copy(run, tmp_path)
    assert main([str(spec), "--out", str(rd), *QUICK, "--resume"]) == 0
    rec = json.loads((rd / "run.json").read_text())
    assert [h["event"] for h in rec["history"]] == ["start", "resume"] and "allowed_changes" not in rec["history"][1]


def test_resume_without_a_recorded_hash_fails_closed(run, tmp_path, capsys):
    spec, rd = _copy(run, tmp_path)
    (rd / "run.json").unlink()
    assert main([str(spec), "--out", str(rd), *QUICK, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "error[E0624]" in err and "no spec hash" in err
    assert main([str(spec), "--out", str(rd), *QUICK, "--resume", "--allow-changes"]) == 0


def test_allow_changes_needs_resume(tmp_path, capsys):
    assert main([str(SPEC), "--out", str(tmp_path / "r"), *QUICK, "--allow-changes"]) == 1
    assert "error[E0206]" in capsys.readouterr().err
