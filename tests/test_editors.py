"""Issue #19 item 6: the TextMate grammar (editors/bk.tmLanguage.json) stays in step with the Lark
grammar and the claimable properties, and its patterns mean what they say."""

from __future__ import annotations

import json
import re

from bkdsl.registry import PROPERTIES
from tests.conftest import ROOT

TM = json.loads((ROOT / "editors" / "bk.tmLanguage.json").read_text(encoding="utf-8"))


def _patterns(node):
    if isinstance(node, dict):
        for key in ("match", "begin", "end"):
            if key in node:
                yield key, node[key]
        for v in node.values():
            yield from _patterns(v)
    elif isinstance(node, list):
        for v in node:
            yield from _patterns(v)


def _rule(name):
    return TM["repository"][name]


def test_every_pattern_compiles():
    pats = list(_patterns(TM))
    assert len(pats) > 10
    for _, p in pats:
        re.compile(p)


def test_every_keyword_of_the_lark_grammar_is_highlighted():
    lark = (ROOT / "grammar" / "bk.lark").read_text()
    words = set(re.findall(r'"([a-z]+)"', lark))
    assert {"model", "import", "input", "float", "true"} <= words
    keyword_text = json.dumps(_rule("keyword"))
    missing = [w for w in sorted(words) if not re.search(rf"\b{w}\b", keyword_text)]
    assert missing == []


def test_every_claimable_property_is_highlighted():
    rx = re.compile(_rule("claims")["match"])
    for prop in PROPERTIES:
        assert rx.fullmatch(prop), prop
    assert not rx.fullmatch("linear")


def test_numbers_units_and_imaginary_literals():
    with_unit, imag, plain = (re.compile(p["match"]) for p in _rule("number")["patterns"])
    for text, num, unit in (("0.25 fm,", "0.25", "fm"), ("1e-3 fm^-3)", "1e-3", "fm^-3"),
                            ("30 MeV*fm^1.5\n", "30", "MeV*fm^1.5")):
        m = with_unit.search(text)
        assert m and (m.group(1), m.group(2)) == (num, unit), text
    assert imag.fullmatch("0.5i") and not imag.fullmatch("0.5")
    assert plain.search("x = 42").group(0) == "42" and not plain.search("h2")
    decl = re.compile(_rule("declaration")["match"]).match("model net(width: int = 32) {")
    assert decl.group(1, 2) == ("model", "net")
