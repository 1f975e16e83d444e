"""Where an import may read from: the confinement rule for ``import`` and ``from ... import``.

A spec names modules two ways — a dotted name (``stdlib.nets``, ``shared.blocks``) or a quoted path
(``"lib/blocks.bk"``) — and both end as a file read by the loader. The rule (issue #13, item 6):

    an import resolves to a regular ``.bk`` file whose real path (symlinks followed) lies inside
    one of the *allowed roots*: the directory tree of the spec being checked, the standard library,
    or a directory the user named with ``--include DIR``.

Anything else is refused **before the file is opened** (E0106), so ``import "../../../etc/passwd"``
or ``from "/etc/passwd" import x`` never read a byte. Names that the operating system would refuse
(a path component over 255 bytes, a NUL byte, a path over 4096 bytes) are E0102 diagnostics, not
``OSError`` tracebacks. Files over :data:`MAX_MODULE_BYTES` are refused with E0004 by the loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from bkdsl.diagnostics import BkError, Span

#: the longest path component most file systems accept (NAME_MAX), and the longest path (PATH_MAX)
NAME_MAX = 255
PATH_MAX = 4096
#: the largest module file the loader reads (E0004 beyond)
MAX_MODULE_BYTES = 16 * 1024 * 1024


def allowed_roots(spec_dir: Path, stdlib_dir: Path, includes: Sequence[Path] = ()) -> list[Path]:
    """The real paths of the directories imports may read from, in search order."""
    return [Path(os.path.realpath(p)) for p in (spec_dir, stdlib_dir, *includes)]


def _inside(p: Path, roots: Sequence[Path]) -> bool:
    return any(p == r or p.is_relative_to(r) for r in roots)


def _check_name(shown: str, parts: Sequence[str], span: Span | None) -> None:
    if "\x00" in shown:
        raise BkError("E0102", "cannot import a path with a NUL character", span=span)
    too_long = next((q for q in parts if len(q.encode("utf-8", "surrogatepass")) > NAME_MAX), None)
    if too_long is not None or len(shown.encode("utf-8", "surrogatepass")) > PATH_MAX:
        raise BkError("E0102", f"cannot import `{shown[:40]}…`: a file name is longer than {NAME_MAX} bytes",
                      span=span, help="file systems refuse names this long; shorten the module's name")


def resolve_import(module: str, is_path: bool, importer_dir: Path, stdlib_dir: Path,
                   roots: Sequence[Path], span: Span | None) -> Path:
    """The file an import names, checked against the confinement rule above.

    ``importer_dir``: the directory of the importing file (relative paths and dotted names are looked
    up there, except ``stdlib.*``); ``roots``: from :func:`allowed_roots`. Raises E0102 when no such
    module exists, E0106 when it exists or would exist outside every allowed root."""
    if is_path:
        _check_name(module, Path(module).parts, span)
        p = importer_dir / module
    else:
        parts = module.split(".")
        _check_name(module, parts, span)
        if parts[0] == "stdlib":
            p = stdlib_dir.joinpath(*parts[1:]).with_suffix(".bk")
        else:
            p = importer_dir.joinpath(*parts).with_suffix(".bk")
    try:
        real = Path(os.path.realpath(p))
        exists = real.is_file()
    except (OSError, ValueError) as e:
        raise BkError("E0102", f"cannot import `{module[:60]}`: {e.__class__.__name__}", span=span) from None
    if not _inside(real, roots):
        shown = ", ".join(f"`{r}`" for r in roots)
        raise BkError("E0106", f"import `{module[:80]}` points outside the allowed directories", span=span,
                      notes=[f"imports may read from: {shown}"],
                      help="move the module next to the spec, or name its directory with `--include DIR`")
    if real.suffix != ".bk":
        raise BkError("E0106", f"import `{module[:80]}` is not a `.bk` module", span=span,
                      help="imports read bk source files only (`.bk`)")
    if not exists:
        avail = sorted(x.stem for x in stdlib_dir.glob("*.bk"))
        raise BkError("E0102", f"cannot import `{module[:80]}`: no file {_shown(p)}", span=span,
                      help=f"stdlib modules: {', '.join('stdlib.' + a for a in avail)}; "
                           "a local file is imported as `import \"path/to/file.bk\" as name`")
    return p


def _shown(p: Path) -> str:
    s = str(p)
    return s if len(s) <= 120 else s[:117] + "…"
