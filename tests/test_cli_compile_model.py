"""`bkdsl compile --model NAME`: lower a model other than the main one; unknown names are diagnostics."""

from bkdsl.cli import main

SPEC = """
model first { input x : [B, 2]; output y = linear(x, 3); }
model second(width: int = 5) { input x : [B, 2]; output z = tanh(linear(x, width)); }
"""


def test_compile_model_lowers_the_named_model(tmp_path, capsys):
    spec = tmp_path / "two.bk"
    spec.write_text(SPEC)
    assert main(["compile", str(spec), "-o", str(tmp_path / "a")]) == 0
    assert "return {'y'" in (tmp_path / "a" / "graph.py").read_text()
    assert main(["compile", str(spec), "--model", "second", "--run", "-o", str(tmp_path / "b")]) == 0
    code = (tmp_path / "b" / "graph.py").read_text()
    assert "return {'z'" in code and "'y'" not in code
    assert "z (2, 5)" in capsys.readouterr().out


def test_compile_unknown_model_is_E0101_with_the_closest_name(tmp_path, capsys):
    spec = tmp_path / "two.bk"
    spec.write_text(SPEC)
    assert main(["compile", str(spec), "--model", "secnod", "-o", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "E0101" in err and "no model `secnod`" in err and "did you mean `second`?" in err
