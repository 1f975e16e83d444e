"""Issue #13 item 4: "did you mean", the caret under the offending argument, help that names only what
exists, one error per declaration (no cascades)."""

from __future__ import annotations

import re
from pathlib import Path

import bkdsl
from bkdsl import registry
from bkdsl.diagnostics import suggest
from tests.conftest import ROOT, pos


def _errs(src):
    return [d for d in bkdsl.check_source(src, "t.bk") if d.is_error]


def test_suggest_helper():
    assert suggest("lineer", ["linear", "relu"]) == "linear"
    assert suggest("Linear", ["linear"]) == "linear"
    assert suggest("zzzz", ["linear", "relu"]) is None
    assert suggest("x" * 500, ["x"]) is None  # bounded work on huge names


def test_did_you_mean_a_registry_component_inside_a_block():
    d = _errs("model q {\n  input x : [B, 4]\n  output lineer(x, 3)\n}\n")[0]
    assert d.code == "E0101" and d.help == "did you mean `linear`?"


def test_did_you_mean_a_local_name():
    d = _errs("const width = 4\nconst b = widht * 2\n")[0]
    assert d.code == "E0101" and d.help == "did you mean `width`?"


def test_did_you_mean_a_component_in_a_declaration():
    d = _errs("manifold m = poincarre(c = 1.0)\n")[0]
    assert d.code == "E0104" and d.help == "did you mean `poincare`?"


def test_caret_under_the_bad_argument():
    src = "manifold m = poincare(c = -1.0)\n"
    d = _errs(src)[0]
    assert d.code == "E0201" and (d.span.line, d.span.col) == pos(src, "-1.0") and d.span.end_col - d.span.col == 4
    src = "model q {\n  input x : [B, 4]\n  output linear(x, 3.5)\n}\n"
    d = _errs(src)[0]
    assert d.code == "E0201" and (d.span.line, d.span.col) == pos(src, "3.5")


def test_unknown_component_help_names_nothing_that_does_not_exist():
    d = _errs("manifold m = qqqqqqq()\n")[0]
    assert "docs/components.md" in d.help and "`bkdsl components`" in d.help and "bkdsl doc" not in d.help
    assert (ROOT / "docs" / "components.md").exists()


def test_euclidean_hint_names_only_registered_ops():
    src = "manifold m = poincare(c = 1.0)\nmodel q {\n  input x : [B, 4] on m\n  output x * 2\n}\n"
    d = _errs(src)[0]
    for op in re.findall(r"`([a-z_0-9]+)\(", d.help or ""):
        assert registry.lookup(op) is not None, op


def test_help_strings_name_only_existing_docs_and_commands():
    """Every docs/*.md page and `bkdsl <command>` a message or help in the package names exists."""
    from bkdsl.cli import LAZY_COMMANDS

    commands = {"check", "compile", "graph", "fmt", *LAZY_COMMANDS}  # the CLI's own table, not a copy of it
    files = [*(ROOT / "bkdsl").rglob("*.py"), *(ROOT / "kernels").rglob("*.py"), *(ROOT / "specs").glob("*.bk"),
             *(ROOT / "stdlib").glob("*.bk")]
    for p in files:
        text = p.read_text(encoding="utf-8")
        for page in re.findall(r"docs/([A-Za-z0-9_]+\.md)", text):
            assert (ROOT / "docs" / page).exists(), f"{p}: docs/{page}"
        for cmd in re.findall(r"`bkdsl ([a-z]+)", text):
            assert cmd in commands, f"{p}: bkdsl {cmd}"


def test_no_cascade_after_a_failed_declaration():
    src = ("manifold m = poincare(c = -1.0)\n"
           "model q {\n  input x : [B, 4] on m\n  output expmap0(m, x)\n}\n"
           "const a = zz\nconst b = a + 1\n")
    codes = [d.code for d in _errs(src)]
    assert codes == ["E0201", "E0101"], codes  # not "unknown manifold m" nor "unknown name a"


def test_did_you_mean_a_name_of_the_block():
    d = _errs("model q {\n  input x : [B, 4]\n  hidden = relu(x)\n  output linear(hiden, 3)\n}\n")[0]
    assert d.code == "E0101" and d.help == "did you mean `hidden`?"
