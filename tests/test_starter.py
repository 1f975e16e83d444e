"""Issue #19 item 1: `bkdsl new NAME` writes a starter that checks, proves its claim and trains."""

from __future__ import annotations

import json
import os
from pathlib import Path

import bkdsl
from bkdsl.cli import main
from bkdsl.starter import starter_text, train_name


def test_new_check_train_in_a_tmp_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "my-first"]) == 0
    spec = Path("my-first.bk")
    assert spec.exists() and "wrote my-first.bk" in capsys.readouterr().out
    assert main(["check", str(spec)]) == 0
    c = bkdsl.compile_file(spec)
    assert [(cl.subject, cl.prop, cl.proof.holds) for cl in c.ir.claims] == [("net(width=32)", "bounded(norm <= 1.0)", True)]
    assert main(["train", str(spec), "--set", "train.epochs=2", "--set", "data.samples=64", "--out", "run"]) == 0
    final = json.loads(Path("run/final.json").read_text())
    assert final["status"] == "completed" and final["train"] == "my_first"
    assert all(v == v for v in final["test"].values())  # finite metrics, no NaN


def test_new_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "mine.bk"
    target.write_text("# mine\n")
    assert main(["new", str(tmp_path / "mine")]) == 1
    assert "error[E0005]" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"


def test_the_claim_is_refused_once_the_sigmoid_goes(tmp_path):
    text = starter_text(Path("s.bk")).replace("sigmoid(linear(h, 16))", "linear(h, 16)")
    diags = [d for d in bkdsl.check_source(text, "s.bk") if d.is_error]
    assert [d.code for d in diags] == ["E0301"]


def test_train_name_is_a_clear_identifier():
    assert train_name(Path("my-first.bk")) == "my_first"
    assert train_name(Path("3body.bk")) == "spec_3body"
    assert train_name(Path("model.bk")) == "model_run" and train_name(Path("net.bk")) == "net_run"
    for stem in ("model", "net", "3body", "a-b"):
        assert not [d for d in bkdsl.check_source(starter_text(Path(f"{stem}.bk")), "s.bk") if d.is_error]
