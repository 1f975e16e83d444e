"""The ``bkdsl`` program skips the exit-time collection (bkdsl.gcpause.skip_exit_collection); ``main(argv)``
called from Python (tests, embedding) leaves the collector alone."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from bkdsl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_main_with_argv_freezes_nothing(capsys):
    before = gc.get_freeze_count()
    assert main(["check", "specs/tiny_regression.bk"]) == 0
    assert gc.get_freeze_count() == before


def test_the_program_freezes_what_it_built():
    code = ("import gc, sys\nsys.argv = ['bkdsl', 'check', 'specs/tiny_regression.bk']\n"
            "from bkdsl.cli import main\nrc = main()\nprint(rc, gc.get_freeze_count() > 1000)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stdout.split()[-2:] == ["0", "True"], r.stdout + r.stderr


def test_no_freeze_once_triton_is_loaded():
    """Triton's nanobind extension reports every object still alive at exit as leaked: a command that
    loaded it (train) must not freeze, or its output ends in pages of "leaked function" warnings."""
    code = ("import gc, sys\nimport triton\nsys.argv = ['bkdsl', 'check', 'specs/tiny_regression.bk']\n"
            "from bkdsl.cli import main\nrc = main()\nprint(rc, gc.get_freeze_count())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stdout.split()[-2:] == ["0", "0"], r.stdout + r.stderr
    assert "leaked" not in r.stderr
