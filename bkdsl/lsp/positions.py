"""Positions: bk spans (1-based lines, 1-based columns counted in code points, end exclusive) to LSP
positions (0-based lines, columns in UTF-16 code units as LSP requires by default) and back, plus the
word under the cursor."""

from __future__ import annotations

import re

from lsprotocol import types as T

from bkdsl.diagnostics import Span, source_lines

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def utf16_col(line: str, col0: int) -> int:
    """The UTF-16 column of code-point column ``col0`` (0-based) in ``line``: a character outside the
    Basic Multilingual Plane (𝔻 is, ℏ is not) takes two UTF-16 units."""
    return sum(2 if ord(c) > 0xFFFF else 1 for c in line[:col0]) + max(0, col0 - len(line))


def codepoint_col(line: str, character: int) -> int:
    """The inverse of :func:`utf16_col`: the code-point column of UTF-16 column ``character``."""
    units = 0
    for i, c in enumerate(line):
        if units >= character:
            return i
        units += 2 if ord(c) > 0xFFFF else 1
    return len(line) + max(0, character - units)


def span_range(span: Span, lines: list[str]) -> T.Range:
    """The LSP range of a bk span in a document whose lines are ``lines``."""
    def pos(line1: int, col1: int) -> T.Position:
        ln = max(0, line1 - 1)
        text = lines[ln] if ln < len(lines) else ""
        return T.Position(ln, utf16_col(text, max(0, col1 - 1)))
    start = pos(span.line, span.col)
    end = pos(span.end_line, span.end_col)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return T.Range(start, end)


def to_bk(pos: T.Position, lines: list[str]) -> tuple[int, int]:
    """An LSP position as a bk (line, column), both 1-based, columns in code points."""
    text = lines[pos.line] if pos.line < len(lines) else ""
    return pos.line + 1, codepoint_col(text, pos.character) + 1


def contains(span: Span | None, line: int, col: int) -> bool:
    """Whether the bk position (line, col) lies inside ``span`` (end exclusive)."""
    if span is None:
        return False
    return (span.line, span.col) <= (line, col) < (span.end_line, span.end_col)


def word_at(lines: list[str], line: int, col: int) -> tuple[str, str | None] | None:
    """(word, qualifier) under the bk position: ``alias.name`` gives ("name", "alias"); None when the
    cursor is not on an identifier."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    for m in _WORD.finditer(text):
        if m.start() <= col - 1 <= m.end():  # at the word's end counts (the cursor after a name)
            if m.start() == m.end():
                continue
            qual = None
            before = text[:m.start()]
            if before.endswith("."):
                q = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\.$", before)
                qual = q.group(1) if q else None
            return m.group(0), qual
    return None


def lines_of(text: str) -> list[str]:
    return source_lines(text)
