"""The language server's pure helpers (bkdsl/lsp/*), without a server: positions, hover, definition,
completion."""

from __future__ import annotations

from pathlib import Path

import bkdsl
from lsprotocol import types as T

from bkdsl.diagnostics import Span
from bkdsl.lsp.completion import completion, enclosing_call
from bkdsl.lsp.definition import definition
from bkdsl.lsp.diagnose import diagnostics
from bkdsl.lsp.hover import hover, show_type
from bkdsl.lsp.positions import codepoint_col, span_range, utf16_col, word_at
from bkdsl.semantics.types import ValueType
from tests.conftest import ROOT, pos


def _at(src, needle, off=0, nth=0):
    line, col = pos(src, needle, nth)
    return T.Position(line - 1, col - 1 + off)


def test_utf16_columns_count_astral_characters_twice():
    line = "a𝔻b = 1"  # 𝔻 (U+1D53B) is outside the BMP: two UTF-16 units
    assert utf16_col(line, 1) == 1 and utf16_col(line, 2) == 3 and codepoint_col(line, 3) == 2
    r = span_range(Span("f", 1, 3, 1, 4), [line])
    assert (r.start.character, r.end.character) == (3, 4)
    assert word_at(["x = lib.mlp2(4)"], 1, 10) == ("mlp2", "lib")
    assert word_at(["x = (1)"], 1, 6) is None


def test_show_type_names_all_four_parts():
    assert show_type(ValueType(("B", 4), "float", "ball", "fm")) == "[B, 4] · float · ball · fm"
    assert show_type(ValueType((2,), "int")) == "[2] · int · euclidean · no unit"


def test_refused_claim_is_an_error_diagnostic_with_its_number():
    text = (ROOT / "specs" / "refused" / "rk4_symplectic.bk").read_text()
    (d,) = diagnostics(text, "specs/refused/rk4_symplectic.bk")
    assert d.code == "E0302" and d.severity == T.DiagnosticSeverity.Error and "max|JᵀΩJ − Ω| =" in d.message
    assert d.range.start == _at(text, "symplectic", nth=text.count("symplectic") - 1)


def test_hover_on_a_component_shows_its_card_and_the_op_type():
    src = "model m() {\n  input x : [B, 4]\n  output y = linear(x, 3)\n}\n"
    c = bkdsl.compile_source(src, "m.bk")
    v = hover(src, "m.bk", _at(src, "linear", 2), c).contents.value
    assert "[B, 3] · float · euclidean · no unit" in v and "out_features" in v
    assert hover(src, "m.bk", _at(src, "linear", 2), None).contents.value.count("out_features") >= 1
    assert hover(src, "m.bk", _at(src, "m()"), c).contents.value.startswith("model `m()`")
    assert hover(src, "m.bk", T.Position(5, 0), c) is None  # past the end: nothing


def test_hover_on_a_rebound_name_takes_the_assignment_in_force():
    src = "model m() {\n  input x : [B, 4]\n  h = linear(x, 8)\n  h = linear(h, 2)\n  output y = h\n}\n"
    c = bkdsl.compile_source(src, "m.bk")
    assert "[B, 8]" in hover(src, "m.bk", _at(src, "h, 2"), c).contents.value
    assert "[B, 2]" in hover(src, "m.bk", _at(src, "y = h", 4), c).contents.value


def test_definition_through_a_from_import_into_the_stdlib_and_into_python():
    src = (ROOT / "specs" / "u236_multipole.bk").read_text()
    loc = definition(src, str(ROOT / "specs" / "u236_multipole.bk"), _at(src, "mlp", 1, nth=src.count("mlp") - 1))
    assert loc.uri.endswith("stdlib/nets.bk")
    nets = (ROOT / "stdlib" / "nets.bk").read_text().split("\n")
    assert nets[loc.range.start.line].lstrip().startswith("block mlp")
    src = "model m() {\n  input x : [B, 4]\n  output y = linear(x, 3)\n}\n"
    loc = definition(src, "m.bk", _at(src, "linear", 1))
    assert loc.uri.endswith("bkdsl/components/layers.py")
    assert definition(src, "m.bk", _at(src, "x, 3")).range.start.line == 1  # the input


def test_enclosing_call_and_parameter_completion():
    assert enclosing_call("x = poincare(c = 1, ") == ("poincare", "c = 1, ")
    assert enclosing_call("x = f(g(1), ") == ("f", "g(1), ")
    assert enclosing_call("model m {\n  ") is None
    src = "manifold ball = poincare(\n"
    items = {i.label: i for i in completion(src, "m.bk", T.Position(0, len("manifold ball = poincare("))).items}
    assert items["c"].kind == T.CompletionItemKind.Property and items["c"].insert_text == "c = "
    src = "manifold ball = "
    ranked = sorted(completion(src, "m.bk", T.Position(0, len(src))).items, key=lambda i: i.sort_text)
    assert ranked[0].detail.startswith("manifold")  # the declaration's kind first
