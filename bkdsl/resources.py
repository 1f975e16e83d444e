"""Files shipped with bkdsl: the grammar and the standard library of bk modules.

Installed (``pip install .``), they are package data inside the package — ``bkdsl/grammar/bk.lark``,
``bkdsl/stdlib/*.bk`` (pyproject maps the top-level folders there); in a source checkout they are the
top-level ``grammar/`` and ``stdlib/`` folders beside ``bkdsl/``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The folder ``name`` of the install, else of the source checkout."""
    for base in (PACKAGE / name, PACKAGE.parent / name):
        if base.is_dir():
            return base
    raise FileNotFoundError(f"bkdsl is missing its {name}/ folder (looked in {PACKAGE} and {PACKAGE.parent})")


STDLIB_DIR = shipped("stdlib")
GRAMMAR_PATH = shipped("grammar") / "bk.lark"
