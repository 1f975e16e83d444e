"""The train/data plan pass: ``bkdsl check`` refuses what ``bkdsl train`` would before its first step.

Each case is a small spec that ``check`` accepted before this pass existed (the refusals came at train
time, or — for the shape mismatch — as an internal error inside the first step)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bkdsl
from bkdsl.verify.plan import TRAIN_KEYS, check_train_plan

FILE_SPEC = '''data d = file("d.npz", x = field("x", unit = fm), y = field("y", unit = MeV), split = [0.8, 0.1, 0.1])
model m {
  input x : [B, 2]
  h = tanh(linear(x, 8))
  output y = linear(h, 1)
}
loss l = mse(y)
train t {
  model = m
  data = d
  loss = l
  optimizer = adam(lr = 1e-3)
  batch = 4
  epochs = 1
  metrics = [mae(y) in MeV]
}
'''
WS_SPEC = '''data ws = woods_saxon(samples = 64, nr = 8, step = 0.25 fm)
model m {
  input shape : [B, 2]
  output rho = linear(tanh(linear(shape, 8)), 8)
}
loss l = mse(rho)
train t {
  model = m
  data = ws
  loss = l
  epochs = 1
  metrics = [mae(rho) in fm^-3]
}
'''


@pytest.fixture
def spec_dir(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 2), dtype=np.float32), y=rng.random((40, 1), dtype=np.float32),
             __units__=np.array(json.dumps({"x": "fm", "y": "MeV"})))
    return tmp_path


def check(spec_dir, text):
    p = spec_dir / "s.bk"
    p.write_text(text)
    return bkdsl.check_file(p)


def codes(diags):
    return [d.code for d in diags if d.is_error]


def test_the_valid_specs_pass(spec_dir):
    assert check(spec_dir, FILE_SPEC) == []
    assert check(spec_dir, WS_SPEC) == []


@pytest.mark.parametrize("base, old, new, code, words", [
    ("file", "mae(y) in MeV", "maee(y)", "E0104", "unknown metric `maee`"),
    ("ws", "samples = 64", "sampels = 64", "E0201", "sampels"),
    ("file", "epochs = 1", "epoch = 1", "E0609", "unknown train key `epoch`"),
    ("ws", "step = 0.25 fm", "step = 0.25 MeV", "E0201", "step"),
    ("file", "lr = 1e-3", "lr = 1e-3 fm", "E0201", "adam.lr"),
    ("file", "mae(y) in MeV", "mae(y) in fm", "E0604", "cannot be reported in fm"),
    ("file", "output y = linear(h, 1)", "output y = linear(h, 3)", "E0602", "per-sample shape [3]"),
    ("file", "split = [0.8, 0.1, 0.1]", "split = [0.8, 0.3, 0.1]", "E0609", "bad split"),
    ("file", "d.npz", "nope.npz", "E0605", "no such file"),
    ("file", 'y = field("y", unit = MeV)', 'y = field("why", unit = MeV)', "E0601", "`why` is not in"),
    ("file", 'y = field("y", unit = MeV)', 'y = field("y", unit = fm)', "E0604", "declared in fm"),
    ("file", "batch = 4", "batch = 2.5", "E0609", "`batch` must be"),
    ("file", "epochs = 1", "epochs = 1\n  steps = 3", "E0609", "not both"),
])
def test_check_refuses_what_train_would(spec_dir, base, old, new, code, words):
    text = (FILE_SPEC if base == "file" else WS_SPEC)
    assert old in text
    diags = check(spec_dir, text.replace(old, new))
    assert code in codes(diags), diags
    assert any(words in d.message for d in diags), [d.message for d in diags]


def test_unknown_names_get_did_you_mean(spec_dir):
    d = next(x for x in check(spec_dir, FILE_SPEC.replace("epochs = 1", "epoch = 1")) if x.code == "E0609")
    assert d.help == "did you mean `epochs`?"
    assert (d.span.line, d.span.col) == (14, 3)  # the misspelled entry, not the block
    d = next(x for x in check(spec_dir, FILE_SPEC.replace("mae(y) in MeV", "maee(y)")) if x.code == "E0104")
    assert d.help == "did you mean `mae`?"
    d = next(x for x in check(spec_dir, WS_SPEC.replace("samples = 64", "sampels = 64")) if x.code == "E0201")
    assert d.help == "did you mean `samples`?"


def test_header_only_reads_no_array(spec_dir, monkeypatch):
    """check reads the npz member headers, never the arrays (np.load is not called)."""
    def no_load(*a, **k):
        raise AssertionError("check loaded an array")

    monkeypatch.setattr(np, "load", no_load)
    np.savez(spec_dir / "plain.npz", x=np.ones((4, 2), "f4"), y=np.ones((4, 1), "f4"))
    assert check(spec_dir, FILE_SPEC.replace("d.npz", "plain.npz")) == []


def test_the_pass_does_not_mutate_the_program(spec_dir):
    c = bkdsl.compile_file(_write(spec_dir, FILE_SPEC))
    before = c.ir.to_json()
    assert check_train_plan(c.ir) == []
    assert c.ir.to_json() == before


def test_schema_lists_every_key_the_runner_reads():
    assert {"model", "data", "loss", "epochs", "steps", "metrics", "time_limit", "assert_manifolds"} <= set(TRAIN_KEYS)


def test_a_model_error_is_reported_once(spec_dir):
    diags = check(spec_dir, FILE_SPEC.replace("linear(h, 1)", "linear(q, 1)"))
    assert len([d for d in diags if d.code == "E0101"]) == 1, diags


def _write(d, text):
    p = d / "s.bk"
    p.write_text(text)
    return p


def test_parameter_messages_carry_no_pydantic_prefix(spec_dir):
    d = next(x for x in check(spec_dir, WS_SPEC.replace("step = 0.25 fm", "step = 0.25 MeV")) if x.code == "E0201")
    assert d.message == "bad value for `woods_saxon.step`: expected a quantity in fm, got MeV"
