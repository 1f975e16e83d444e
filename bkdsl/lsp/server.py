"""``bkdsl lsp``: the bk language server over stdio (pygls).

* **diagnostics as you type** — on open, change and save, after a short pause in typing
  (:data:`DEBOUNCE_S`), the document is checked by the public check API (the same codes and spans as
  ``bkdsl check``) and the result is published unless the document changed meanwhile;
* **hover** — each value's type and each claim's status from the compiled program (compiled in a
  worker thread after a clean check on open and save, or on the first hover of a version; cached per
  version), a component's card;
* **go-to-definition** — across imports, from the parse tree;
* **completion** — component names and parameters from the registry.

Checks and compiles run one at a time in a worker thread (the compiler keeps process-wide registries),
so the server keeps answering while a spec with probes is verified.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

import bkdsl
from bkdsl.diagnostics import BkErrors
from bkdsl.exitcodes import EXIT_OK
from bkdsl.lsp.completion import completion
from bkdsl.lsp.definition import definition
from bkdsl.lsp.diagnose import diagnostics
from bkdsl.lsp.hover import hover

DEBOUNCE_S = 0.3  # the pause in typing after which a changed document is checked
log = logging.getLogger("bkdsl.lsp")


class BkLanguageServer(LanguageServer):
    def __init__(self, includes: tuple[str, ...] = ()):
        super().__init__("bkdsl", bkdsl.__version__, text_document_sync_kind=T.TextDocumentSyncKind.Full)
        self.includes = includes
        self.lock = asyncio.Lock()  # one check/compile at a time
        self.compiled: dict[tuple[str, int | None], Any] = {}  # (uri, version) → Compiled | None
        self.prewarm: asyncio.Future | None = None  # the latest background compile (kept referenced)

    def document(self, uri: str) -> tuple[str, str, int | None]:
        doc = self.workspace.get_text_document(uri)
        return doc.source, path_of(uri), doc.version

    async def publish(self, uri: str, debounce: float = 0.0, prewarm: bool = False) -> None:
        """Check the document and publish its diagnostics; ``prewarm`` (on open and save, not on every
        keystroke): then compile a clean document in the background, so the first hover is quick."""
        if debounce:
            await asyncio.sleep(debounce)
        text, path, version = self.document(uri)
        async with self.lock:
            if self.document(uri)[2] != version:
                return  # typed on: the newer version's own check follows
            diags = await asyncio.to_thread(diagnostics, text, path, self.includes)
        if self.document(uri)[2] == version:
            self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=diags, version=version))
            if prewarm and not any(d.severity == T.DiagnosticSeverity.Error for d in diags):
                self.prewarm = asyncio.ensure_future(self.compiled_for(uri))

    async def compiled_for(self, uri: str) -> Any:
        text, path, version = self.document(uri)
        key = (uri, version)
        if key not in self.compiled:
            async with self.lock:
                if key not in self.compiled:
                    self.compiled = {k: v for k, v in self.compiled.items() if k[0] != uri}
                    self.compiled[key] = await asyncio.to_thread(compile_or_none, text, path, self.includes)
        return self.compiled[key]


def path_of(uri: str) -> str:
    """The file path of a document (an unsaved buffer without one is placed in the working directory)."""
    return to_fs_path(uri) or "untitled.bk"


def compile_or_none(text: str, path: str, includes: tuple[str, ...]) -> Any:
    """The compiled program, or None when the spec has errors (diagnostics say which)."""
    try:
        return bkdsl.compile_source(text, path, None, includes)
    except BkErrors:
        return None


def make_server(includes: tuple[str, ...] = ()) -> BkLanguageServer:
    server = BkLanguageServer(includes)

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: BkLanguageServer, params: T.DidOpenTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri, prewarm=True)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: BkLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri, DEBOUNCE_S)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: BkLanguageServer, params: T.DidSaveTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri, prewarm=True)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: BkLanguageServer, params: T.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.compiled = {k: v for k, v in ls.compiled.items() if k[0] != uri}
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    async def on_hover(ls: BkLanguageServer, params: T.HoverParams) -> T.Hover | None:
        uri = params.text_document.uri
        compiled = await ls.compiled_for(uri)
        text, path, _ = ls.document(uri)
        return hover(text, path, params.position, compiled)

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: BkLanguageServer, params: T.DefinitionParams) -> T.Location | None:
        text, path, _ = ls.document(params.text_document.uri)
        return definition(text, path, params.position, ls.includes)

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["(", ",", "="]))
    def on_completion(ls: BkLanguageServer, params: T.CompletionParams) -> T.CompletionList:
        text, path, _ = ls.document(params.text_document.uri)
        return completion(text, path, params.position)

    return server


# ------------------------------------------------------------------------------------ command
def add_parser(subparsers):
    p = subparsers.add_parser("lsp", help="run the bk language server over stdio (for editors)",
                              description="The bk language server (LSP over stdin/stdout): diagnostics, hover, "
                                          "go-to-definition, completion. Editors start it as `bkdsl lsp`.")
    p.add_argument("--include", action="append", metavar="DIR",
                   help="a directory imports may read from, besides the spec's own tree and the stdlib (repeatable)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    logging.basicConfig(level=logging.WARNING)  # stderr: stdout carries the protocol
    make_server(tuple(args.include or ())).start_io()
    return EXIT_OK
