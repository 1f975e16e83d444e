"""Runs you can follow: log_every / eval_every records, the CSV and TensorBoard sinks, console warnings."""

import csv
import json

import pytest

from bkdsl.api import check_source
from bkdsl.train.loop import run
from bkdsl.train.plots import read_records
from bkdsl.train.sinks import tensorboard_available
from tests.tiny_run import SPEC
from tests.train.tiny import tiny_plan

# tiny_plan: 192 samples, split 0.75 → 144 training samples, batch 16 → 9 steps per epoch


def test_log_every_and_eval_every_write_step_and_eval_records(tmp_path):
    run(tiny_plan(epochs=2, log_every=4, eval_every=5), tmp_path, quiet=True)
    recs = read_records(tmp_path / "metrics.jsonl")
    steps = [r["global_step"] for r in recs if r["event"] == "step"]
    evals = [r["global_step"] for r in recs if r["event"] == "eval"]
    assert steps == [4, 8, 12, 16]
    assert evals == [5, 10, 15]                     # 9 and 18 are epoch ends, evaluated there anyway
    assert all("val.loss" in r and "val.mae_rho" in r for r in recs if r["event"] == "eval")
    assert all(r["train.loss"] > 0 for r in recs if r["event"] == "step")
    # the CSV holds every numeric value of every record, in long form
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    n = sum(len([k for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                 and k not in ("epoch", "global_step")]) for r in recs)
    assert len(rows) == n
    vals = {(r["event"], r["global_step"], r["key"]): float(r["value"]) for r in rows}
    ev = next(r for r in recs if r["event"] == "eval")
    assert vals[("eval", "5", "val.loss")] == ev["val.loss"]


def test_no_step_records_without_the_keys(tmp_path):
    run(tiny_plan(epochs=1), tmp_path, quiet=True)
    assert {r["event"] for r in read_records(tmp_path / "metrics.jsonl")} == {"epoch", "test"}


def test_csv_is_rebuilt_on_resume(tmp_path):
    run(tiny_plan(epochs=1, log_every=2), tmp_path, quiet=True)
    run(tiny_plan(epochs=2, log_every=2), tmp_path, resume=True, quiet=True)
    recs = read_records(tmp_path / "metrics.jsonl")
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    # the first run's test record (step 9) is dropped on resume, in metrics.jsonl and in the CSV
    assert [r["event"] for r in recs].count("test") == 1
    assert [r["global_step"] for r in rows if r["event"] == "test"] == [str(recs[-1]["global_step"])] * len(
        [k for k in recs[-1] if k.startswith("test.")])
    assert [r["global_step"] for r in recs if r["event"] == "step"] == [2, 4, 6, 8, 10, 12, 14, 16, 18]


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard not installed (optional extra `tracking`)")
def test_tensorboard_sink_writes_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(tiny_plan(epochs=2, eval_every=5), tmp_path, quiet=True)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"epoch/val.loss", "eval/val.loss", "epoch/train.loss", "test/test.mae_rho"} <= set(tags)
    assert [e.step for e in acc.Scalars("eval/val.loss")] == [5, 10, 15]
    recs = [r for r in read_records(tmp_path / "metrics.jsonl") if r["event"] == "epoch"]
    assert [e.value for e in acc.Scalars("epoch/val.loss")] == pytest.approx([r["val.loss"] for r in recs], rel=1e-6)


def test_warnings_reach_the_console(tmp_path, capfd):
    run(tiny_plan(epochs=1, batch=500), tmp_path, quiet=True)
    err = capfd.readouterr().err
    assert "warning: batch 500 is larger than the training split (144 samples)" in err
    assert "batch 500 is larger" in (tmp_path / "train.log").read_text()


@pytest.mark.parametrize("line,code,needle", [
    ("  log_evry  = 10\n", "E0609", "log_every"),
    ("  log_every = 0\n", "E0609", "log_every"),
    ("  eval_every = 2.5\n", "E0609", "eval_every"),
])
def test_check_catches_bad_log_and_eval_keys(line, code, needle):
    src = SPEC.read_text().replace("  seed      = 0\n", "  seed      = 0\n" + line)
    diags = [d for d in check_source(src, "t.bk") if d.is_error]
    assert any(d.code == code and needle in (d.message + (d.help or "")) for d in diags), [str(d.message) for d in diags]


def test_check_accepts_log_and_eval_keys():
    src = SPEC.read_text().replace("  seed      = 0\n", "  seed      = 0\n  log_every = 10\n  eval_every = 50\n")
    assert not [d for d in check_source(src, "t.bk") if d.is_error]


def test_mlflow_sink_logs_every_record_when_a_tracking_uri_is_set(tmp_path, monkeypatch):
    """MLflow is optional: with MLFLOW_TRACKING_URI set and an `mlflow` module importable (a recording
    stand-in here; the real package is not a dependency), every record is logged at its global step."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("mlflow")
    fake.start_run = lambda run_name=None: calls.append(("start", run_name))
    fake.log_params = lambda p: calls.append(("params", p))
    fake.log_metrics = lambda m, step=None: calls.append(("metrics", step, m))
    fake.end_run = lambda: calls.append(("end",))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    run(tiny_plan(epochs=1, eval_every=4), tmp_path / "r", quiet=True)
    assert calls[0] == ("start", "tiny") and calls[-1] == ("end",)
    assert any(c[1] == 4 and "eval.val.loss" in c[2] for c in calls if c[0] == "metrics")
    assert any(c[1] == 9 and "epoch.val.loss" in c[2] for c in calls if c[0] == "metrics")


def test_no_mlflow_without_a_tracking_uri(tmp_path, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("mlflow")
    fake.start_run = lambda **k: (_ for _ in ()).throw(AssertionError("mlflow used without a tracking URI"))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run(tiny_plan(epochs=1), tmp_path, quiet=True)
