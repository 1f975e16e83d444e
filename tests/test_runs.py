"""bkdsl runs: a comparison table (and --json) of run directories' final metrics and differing settings."""

import json
import shutil

import pytest

from bkdsl.cli import main
from tests.tiny_run import train_tiny


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    a = train_tiny(base / "a")
    b = train_tiny(base / "b", "--set", "train.optimizer=adam(lr = 1e-2)")
    return base, a, b


def test_runs_json_lists_final_metrics_and_the_settings_that_differ(runs, capsys):
    base, a, b = runs
    assert main(["runs", str(base), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == [str(a), str(b)]
    fa = json.loads((a / "final.json").read_text())
    assert rows[0]["metrics"] == fa["test"] and rows[0]["status"] == "completed"
    assert rows[0]["settings"]["train.optimizer.lr"] == 0.003 and rows[1]["settings"]["train.optimizer.lr"] == 0.01
    assert rows[0]["units"]["mae_rho"] == "fm^-3"


def test_runs_table_shows_units_and_only_differing_settings(runs, capsys):
    base, a, b = runs
    assert main(["runs", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "test.mae_rho [fm^-3]" in out and "train.optimizer.lr" in out
    assert "0.003" in out and "0.01" in out
    assert "train.batch" not in out                       # equal in both runs: not a column


def test_an_incomplete_run_shows_its_last_validation(runs, tmp_path, capsys):
    base, a, _ = runs
    c = tmp_path / "killed"
    shutil.copytree(a, c)
    (c / "final.json").unlink()
    assert main(["runs", str(c), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["status"] == "incomplete" and row["epochs"] == 2 and "val.loss" in row["metrics"]


def test_no_runs_is_a_diagnostic(tmp_path, capsys):
    assert main(["runs", str(tmp_path)]) == 1
    assert "error[E0622]" in capsys.readouterr().err
