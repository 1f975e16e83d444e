"""The CLI contract other tools script against: exit codes, files written, formats."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pydot
import pytest

from bkdsl.cli import main
from tests.conftest import ROOT, SPECS

GOOD = "const d = 4\nmodel m(w: int = 8) {\n  input x : [B, d]\n  output y = linear(relu(linear(x, w)), 1)\n}\n"
BAD = "const d = 4\nmodel m() {\n  input x : [B, d]\n  output linear(q, 1)\n}\n"


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "good.bk"
    p.write_text(GOOD)
    return p


@pytest.fixture
def bad(tmp_path):
    p = tmp_path / "bad.bk"
    p.write_text(BAD)
    return p


def test_check_exit_codes(good, bad, capsys):
    assert main(["check", str(good)]) == 0
    assert main(["check", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.bk:4:17: error[E0101]: unknown name `q`" in err
    assert "^" in err


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as e:
        main(["check"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


def test_check_json(bad, capsys):
    assert main(["check", "--format", "json", str(bad)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data[0]["code"] == "E0101" and (data[0]["line"], data[0]["col"]) == (4, 17)


def test_missing_file_is_a_diagnostic(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.bk")]) == 1
    assert "E0002" in capsys.readouterr().err


def test_compile_writes_three_files_and_runs(good, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(good), "-o", str(out), "--run"]) == 0
    assert (out / "graph.py").read_text().count("def forward") == 1
    ir = json.loads((out / "ir.json").read_text())
    assert ir["models"]["m"]["outputs"] == {"y": "y"}
    assert "Parameters" in (out / "report.md").read_text()
    assert "y (2, 1)" in capsys.readouterr().out


def test_compile_error_exits_1(bad, tmp_path):
    assert main(["compile", str(bad), "-o", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()


def test_graph_dot(good, tmp_path):
    out = tmp_path / "g.dot"
    assert main(["graph", str(good), "-o", str(out)]) == 0
    dot = out.read_text()
    (g,) = pydot.graph_from_dot_data(dot)  # the file is DOT that a DOT reader takes back
    assert g.get_name().strip('"') == "m" and g.get_edges() and "linear" in dot


def test_fmt_check_and_write(tmp_path):
    p = tmp_path / "f.bk"
    p.write_text("const   a=1\n")
    assert main(["fmt", "--check", str(p)]) == 1
    assert p.read_text() == "const   a=1\n"
    assert main(["fmt", str(p)]) == 0
    assert p.read_text() == "const a = 1\n"
    assert main(["fmt", "--check", str(p)]) == 0


def test_internal_error_exits_3_and_hides_traceback(good, monkeypatch, capsys):
    import bkdsl.api

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(bkdsl.api, "_pipeline", boom)
    assert main(["check", str(good)]) == 3
    err = capsys.readouterr().err
    assert "internal error[X0001]" in err and "Traceback" not in err
    assert main(["--debug", "check", str(good)]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_set_override_is_checked(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.ones((8, 4), "f4"), y=np.ones((8, 1), "f4"))
    p = tmp_path / "t.bk"
    p.write_text(GOOD + 'data dd = file("d.npz", x = field("x"), y = field("y"))\nloss l = mse(y)\n'
                 "train t {\n  model = m()\n  data = dd\n  loss = l\n  epochs = 3\n}\n")
    assert main(["check", str(p), "--set", "train.epochs=2"]) == 0
    assert main(["check", str(p), "--set", "train.epochs=0"]) == 1
    assert "E0609" in capsys.readouterr().err
    assert main(["check", str(p), "--set", "train.epochs"]) == 1
    assert "E0206" in capsys.readouterr().err
    assert main(["check", str(p), "--set", "nope.x=1"]) == 1


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_every_shipped_spec_checks(spec):
    assert main(["check", str(spec)]) == 0


def test_python_dash_m_entry_point(good):
    r = subprocess.run([sys.executable, "-m", "bkdsl", "check", str(good)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr


# -- #14 / #13: lazy imports, one exit-code table, --dry-run ------------------------------------------------
def _modules_after(code: str) -> set[str]:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return set(out)


@pytest.mark.parametrize("code", [
    "import bkdsl",
    "from bkdsl.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from bkdsl.cli import main\nimport tempfile, pathlib\np = pathlib.Path(tempfile.mkdtemp()) / 'a.bk'\n"
    "p.write_text('const a = 1\\n')\nassert main(['fmt', '--check', str(p)]) == 0",
])
def test_help_fmt_and_import_load_neither_torch_nor_scipy(code):
    mods = _modules_after(code)
    assert not {m for m in mods if m.split(".")[0] in ("torch", "scipy")}


def test_train_and_physics_help_still_work(capsys):
    for cmd in ("train", "physics"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: bkdsl " + cmd in capsys.readouterr().out


def test_one_set_parser_and_did_you_mean_for_set_keys(tmp_path, capsys):
    p = tmp_path / "t.bk"
    p.write_text((ROOT / "specs/tiny_regression.bk").read_text())
    assert main(["check", str(p), "--set", "epochs=2"]) == 1  # no block named
    assert "name the block" in capsys.readouterr().err
    assert main(["check", str(p), "--set", "train.epoch=2"]) == 1
    assert "did you mean `epochs`?" in capsys.readouterr().err


def test_train_internal_error_is_exit_3(monkeypatch, capsys):
    import bkdsl.train.cli as tcli

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(tcli, "_run", boom)
    assert main(["train", str(ROOT / "specs/tiny_regression.bk")]) == 3
    assert "internal error[X0001]" in capsys.readouterr().err


def test_dry_run_checks_steps_once_and_writes_no_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "t.bk"
    spec.write_text((ROOT / "specs/tiny_regression.bk").read_text())
    args = ["train", str(spec), "--dry-run", "--device", "cpu", "--set", "data.samples=48"]
    assert main(args) == 0
    assert "dry run of `tiny`" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not any(tmp_path.glob("*/final.json"))
    assert main(args + ["--set", "train.epoch=3"]) == 1  # a check failure stops the dry run too
