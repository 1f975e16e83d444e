"""specs/refused/: shipped specs whose claims are false. Each must be refused by `bkdsl check` (exit 1)
with a probe's number in the message — `make demo` shows the first one."""

from __future__ import annotations

import re

import pytest

import bkdsl
from bkdsl.cli import main
from tests.conftest import ROOT

REFUSED = sorted((ROOT / "specs" / "refused").glob("*.bk"))


def test_there_is_a_refused_spec_for_the_demo():
    assert (ROOT / "specs" / "refused" / "rk4_symplectic.bk") in REFUSED


@pytest.mark.parametrize("spec", REFUSED, ids=[p.name for p in REFUSED])
def test_refused_with_its_number(spec, capsys):
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    errors = [d for d in bkdsl.check_file(spec) if d.is_error]
    assert len(errors) == 1 and errors[0].code == "E0302"
    assert re.search(r"= \d\.\d+e-\d+ at the probe", errors[0].label or errors[0].message)
    assert f"error[{errors[0].code}]" in err
