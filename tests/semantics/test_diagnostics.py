"""One small bad spec per error class: the code, the line and the column are asserted."""

from __future__ import annotations

import pytest

import bkdsl
from tests.conftest import pos

CASES = [
    # (name, code, source, text the caret must point at)
    ("syntax", "E0001", "const x = (1 +\n", None),
    ("unknown name", "E0101", "const a = 1\nconst b = a + c\n", "c\n"),
    ("unknown component", "E0104", "manifold m = poincarre(c = 1.0)\n", "poincarre"),
    ("bad parameter value", "E0201", "manifold m = poincare(c = -1.0)\n", "-1.0"),
    ("unknown parameter", "E0201", "manifold m = poincare(k = 1.0)\n", "poincare(k"),
    ("bad unit", "E0202", "const x = 3 furlongz\n", "3 furlongz"),
    ("unit mismatch", "E0203", "const x = 1 fm + 2 MeV\n", "1 fm + 2 MeV"),
    ("wrong kind", "E0105", "binding b = poincare(c = 1.0)\n", "poincare"),
    ("duplicate", "E0003", "const a = 1\nconst a = 2\n", "const a = 2"),
    ("unknown property", "E0303", "manifold m = poincare(c = 1.0) : unitaryy\n", "unitaryy"),
    ("shape mismatch", "E0401",
     "model m() {\n  input x : [B, N]\n  input y : [B, M]\n  output x + y\n}\n", "x + y"),
    ("wrong manifold", "E0402",
     "manifold ball = poincare(c = 1.0)\nmodel m() {\n  input h : [B, 4] on ball\n  output linear(h, 3)\n}\n",
     "linear(h, 3)"),
    ("euclidean op on ball", "E0402",
     "manifold ball = poincare(c = 1.0)\nmodel m() {\n  input h : [B, 4] on ball\n  output h + h\n}\n", "h + h"),
    ("dtype", "E0403", "model m() {\n  input t : [B, N] int\n  output linear(t, 3)\n}\n", "linear(t, 3)"),
    ("cyclic dataflow", "E0501",
     "model m() {\n  input x : [B, 4]\n  a = relu(b)\n  b = relu(a)\n  output a\n}\n", "a = relu(b)"),
    ("no output", "E0503", "model m() {\n  input x : [B, 4]\n}\n", "m()"),
    ("missing import", "E0102", "import stdlib.nosuchmodule\n", "import stdlib.nosuchmodule"),
    ("arity", "E0204", "model m() {\n  input x : [B, 4]\n  output linear(x, 3, true, 9)\n}\n", "linear(x, 3"),
    ("propagator Im z", "E0304", "propagator g = bk_resolvent(z = -0.1i)\n", "-0.1i"),
]


@pytest.mark.parametrize("name,code,src,at", CASES, ids=[c[0] for c in CASES])
def test_error_class_has_code_and_location(name, code, src, at):
    diags = bkdsl.check_source(src, "bad.bk")
    errs = [d for d in diags if d.is_error]
    assert errs, f"{name}: no diagnostic"
    d = errs[0]
    assert d.code == code, d.render(src)
    assert d.span is not None and d.span.file == "bad.bk"
    if at is not None:
        assert (d.span.line, d.span.col) == pos(src, at), d.render(src)
    text = d.render(src)
    assert f"bad.bk:{d.span.line}:{d.span.col}: error[{code}]" in text
    assert "^" in text


def test_import_cycle(tmp_path):
    (tmp_path / "a.bk").write_text('import "b.bk" as b\nconst x = 1\n')
    (tmp_path / "b.bk").write_text('import "a.bk" as a\nconst y = 2\n')
    diags = bkdsl.check_file(tmp_path / "a.bk")
    assert any(d.code == "E0103" for d in diags), [d.render() for d in diags]


def test_all_independent_errors_are_reported():
    src = "const a = b\nconst c = 1 fm + 1 s\nmanifold m = nope()\n"
    codes = [d.code for d in bkdsl.check_source(src, "many.bk")]
    assert codes == ["E0101", "E0203", "E0104"]


def test_wrong_manifold_help_says_what_to_do():
    src = "manifold ball = poincare(c = 1.0)\nmodel m() {\n  input h : [B, 4] on ball\n  output linear(h, 3)\n}\n"
    d = bkdsl.check_source(src, "m.bk")[0]
    assert "logmap0(ball, h)" in d.help


def test_shape_mismatch_names_both_sites():
    src = "model m() {\n  input x : [B, N]\n  input y : [B, M]\n  output x + y\n}\n"
    d = bkdsl.check_source(src, "s.bk")[0]
    assert "`N`" in d.message and "`M`" in d.message
    assert any("s.bk:2" in n for n in d.notes) and any("s.bk:3" in n for n in d.notes)


def test_json_format_is_machine_readable():
    import json

    from bkdsl.diagnostics import render_all

    diags = bkdsl.check_source("const a = b\n", "j.bk")
    data = json.loads(render_all(diags, {}, "json"))
    assert data[0]["code"] == "E0101" and data[0]["line"] == 1 and data[0]["col"] == 11


def test_every_code_is_documented(root):
    from bkdsl.diagnostics import CODES

    doc = (root / "docs" / "errors.md").read_text()
    for code in CODES:
        assert f"`{code}`" in doc, f"{code} missing from docs/errors.md"


def test_float_slice_bound_is_a_diagnostic():
    """Found by the fuzzer: `r[:, 0:1e9]` crashed shape inference."""
    src = "model m() {\n  input x : [B, 4]\n  output x[:, 0:1e9]\n}\n"
    d = bkdsl.check_source(src, "f.bk")[0]
    assert d.code == "E0205" and (d.span.line, d.span.col) == pos(src, "0:1e9")


def test_bare_field_as_loss_is_a_diagnostic():
    """Found by the fuzzer: `loss l = (F)` crashed the unit check."""
    src = "loss l = (F)\n"
    d = bkdsl.check_source(src, "l.bk")[0]
    assert d.code == "E0205" and "mse(F)" in d.message
