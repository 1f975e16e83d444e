import pytest

from bkdsl.syntax.fmt import format_module
from bkdsl.syntax.parser import parse
from tests.conftest import SPECS, STDLIB
from tests.syntax.test_parser import EXAMPLE

FILES = SPECS + STDLIB


def _fmt(text: str, name: str = "x.bk") -> str:
    m, d = parse(text, name)
    assert d == [], d
    return format_module(m)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fmt_is_idempotent_and_preserves_the_ast(path):
    text = path.read_text()
    once = _fmt(text, str(path))
    assert _fmt(once) == once
    assert parse(once, "a")[0] == parse(text, "b")[0]


def test_fmt_keeps_every_comment():
    out = _fmt(EXAMPLE)
    for c in ("# comment", "# trailing"):
        assert c in out
    assert _fmt(out) == out


def test_fmt_canonicalises_layout():
    ugly = "const   a=1\nconst bb   =   2   # note\nmodel m(  ){\ninput x:[B,N]\noutput   x\n}\n"
    out = _fmt(ugly)
    assert out == ("const a  = 1\nconst bb = 2  # note\n\nmodel m() {\n  input x : [B, N]\n  output x\n}\n")


def test_fmt_breaks_long_calls_one_argument_per_line():
    src = "data d = file(\"a_very_long_file_name_for_the_dataset.h5\", alpha = 1, beta = 2, gamma = 3, delta = 4, epsilon = 5)\n"
    out = _fmt(src)
    assert out.count("\n") > 3 and "  alpha = 1,\n" in out
    assert parse(out, "a")[0] == parse(src, "b")[0]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_shipped_files_are_canonically_formatted(path):
    text = path.read_text()
    assert _fmt(text, str(path)) == text, f"run `bkdsl fmt {path}`"
