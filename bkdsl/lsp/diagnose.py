"""Diagnostics as you type: the public check API's diagnostics (``bkdsl.check_source``, the same
function ``bkdsl check`` calls — same codes, same spans) as LSP diagnostics.

A diagnostic whose span lies in another file (an error inside an imported module) is shown on the
first line of this document, its message naming where it is, so it is never dropped."""

from __future__ import annotations

from lsprotocol import types as T

import bkdsl
from bkdsl.diagnostics import Diagnostic, Severity
from bkdsl.lsp.positions import lines_of, span_range

_SEVERITY = {Severity.ERROR: T.DiagnosticSeverity.Error, Severity.WARNING: T.DiagnosticSeverity.Warning,
             Severity.NOTE: T.DiagnosticSeverity.Information}



def check_text(text: str, path: str, includes: tuple[str, ...] = ()) -> list[Diagnostic]:
    """``bkdsl check`` of an unsaved buffer: ``path`` places it (imports resolve from its folder)."""
    return bkdsl.check_source(text, path, None, includes)


def to_lsp(diags: list[Diagnostic], text: str, path: str) -> list[T.Diagnostic]:
    lines = lines_of(text)
    out = []
    for d in diags:
        here = d.span is not None and d.span.file == path
        rng = span_range(d.span, lines) if here else T.Range(T.Position(0, 0), T.Position(0, 0))
        msg = d.message
        if d.label and d.label.startswith(msg):
            msg = d.label  # the label restates the message and adds the number: `… is not symplectic: max|…| = …`
        elif d.label and d.label not in msg:
            msg += f": {d.label}"
        if d.span is not None and not here:
            msg = f"{d.span}: {msg}"
        msg += "".join(f"\nnote: {n}" for n in d.notes)
        if d.help:
            msg += f"\nhelp: {d.help}"
        out.append(T.Diagnostic(range=rng, message=msg, severity=_SEVERITY[d.severity], code=d.code,
                                source="bkdsl"))
    return out


def diagnostics(text: str, path: str, includes: tuple[str, ...] = ()) -> list[T.Diagnostic]:
    return to_lsp(check_text(text, path, includes), text, path)
