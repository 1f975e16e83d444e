"""Issue #19 item 6: `bkdsl lsp` driven over stdio by pygls' own LanguageClient in a subprocess:
initialize, didOpen a bad spec → diagnostics with the check's code and span; hover (a value's type, a
claim's status); go-to-definition across an import; completion of components and parameters."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

import bkdsl
from tests.conftest import pos

LIB = "block mlp2(w: int) {\n  input x : [B, 8]\n  output linear(tanh(linear(x, w)), 1)\n}\n"
GOOD = ('import "lib.bk" as lib\n'
        "model net : bounded(norm <= 1.0) {\n  input shape : [B, 2]\n  h = tanh(linear(shape, 8))\n"
        "  output y = sigmoid(lib.mlp2(4)(h))\n}\n")
BAD = "model m() {\n  input x : [B, 4]\n  output linear(q, 1)\n}\n"
TIMEOUT = 120  # seconds for any one answer: the server imports torch and runs the claim's probe


def _at(src: str, needle: str, off: int = 0, nth: int = 0) -> T.Position:
    line, col = pos(src, needle, nth)
    return T.Position(line - 1, col - 1 + off)


async def _session(tmp_path: Path):
    (tmp_path / "lib.bk").write_text(LIB)
    good, bad = tmp_path / "good.bk", tmp_path / "bad.bk"
    good.write_text(GOOD)
    bad.write_text(BAD)
    client = LanguageClient("bkdsl-test", "1")
    published: dict[str, asyncio.Queue] = {}

    @client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diags(params: T.PublishDiagnosticsParams):
        published.setdefault(params.uri, asyncio.Queue()).put_nowait(params.diagnostics)

    await client.start_io(sys.executable, "-m", "bkdsl.cli", "lsp")
    out = {}
    try:
        init = await asyncio.wait_for(client.initialize_async(T.InitializeParams(
            capabilities=T.ClientCapabilities(), root_uri=tmp_path.as_uri())), TIMEOUT)
        out["capabilities"] = init.capabilities
        client.initialized(T.InitializedParams())
        for p, text in ((bad, BAD), (good, GOOD)):
            client.text_document_did_open(T.DidOpenTextDocumentParams(
                T.TextDocumentItem(uri=p.as_uri(), language_id="bk", version=1, text=text)))
        async def diags(p):
            return await asyncio.wait_for(published.setdefault(p.as_uri(), asyncio.Queue()).get(), TIMEOUT)
        out["bad"] = await diags(bad)
        out["good"] = await diags(good)
        doc = T.TextDocumentIdentifier(good.as_uri())
        ask = lambda coro: asyncio.wait_for(coro, TIMEOUT)  # noqa: E731
        out["hover_value"] = await ask(client.text_document_hover_async(T.HoverParams(doc, _at(GOOD, "h = tanh"))))
        out["hover_claim"] = await ask(client.text_document_hover_async(T.HoverParams(doc, _at(GOOD, "bounded", 2))))
        out["definition"] = await ask(client.text_document_definition_async(T.DefinitionParams(doc, _at(GOOD, "mlp2", 1))))
        out["completion"] = await ask(client.text_document_completion_async(T.CompletionParams(doc, _at(GOOD, "8))", 0))))
        # as you type: a change that breaks the spec is diagnosed without a save
        broken = GOOD.replace("tanh(linear(shape, 8))", "tanh(linear(shap, 8))")
        client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(uri=good.as_uri(), version=2),
            [T.TextDocumentContentChangeWholeDocument(text=broken)]))
        out["typed"] = await diags(good)
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        client.exit(None)
    finally:
        await client.stop()
    return out


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return asyncio.run(_session(tmp_path_factory.mktemp("lsp")))


def test_diagnostics_have_the_check_codes_and_spans(session, tmp_path):
    (d,) = session["bad"]
    (expected,) = [x for x in bkdsl.check_source(BAD, "bad.bk") if x.is_error]
    assert d.code == expected.code == "E0101" and d.source == "bkdsl"
    line, col = pos(BAD, "q, 1")
    assert (d.range.start.line, d.range.start.character) == (line - 1, col - 1) == (expected.span.line - 1, expected.span.col - 1)
    assert d.range.end.character == expected.span.end_col - 1
    assert list(session["good"]) == []


def test_diagnostics_as_you_type(session):
    (d,) = session["typed"]
    assert d.code == "E0101" and "shap" in d.message and "did you mean `shape`?" in d.message


def test_hover_shows_the_value_type_and_the_claim_status(session):
    v = session["hover_value"].contents.value
    assert "`h` : `[B, 8] · float · euclidean · no unit`" in v
    c = session["hover_claim"].contents.value
    assert "bounded" in c and "**holds**" in c and "at the probe" in c


def test_definition_goes_across_the_import(session):
    loc = session["definition"]
    assert loc.uri.endswith("/lib.bk") and loc.range.start.line == 0


def test_completion_offers_parameters_and_components(session):
    caps = session["capabilities"]
    assert caps.hover_provider and caps.definition_provider and caps.completion_provider
    items = {i.label: i for i in session["completion"].items}
    assert "bias" in items and items["bias"].insert_text == "bias = "   # linear's parameter not yet given
    assert "poincare" in items and "woods_saxon" in items and "model" in items
