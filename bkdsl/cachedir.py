"""The per-user cache directory of bkdsl: ``$XDG_CACHE_HOME/bkdsl`` (default ``~/.cache/bkdsl``).

Two caches there are *pickles* a library writes and reads back at start-up — Lark's LALR tables
(bkdsl/syntax/parser.py) and pint's parsed unit definitions (bkdsl/semantics/units.py) — so the
directory must be one only this user can write: created private (0700) and used only while this user
owns it and neither group nor others may write to it (the rule ssh applies to ``~/.ssh``). A library's
own default (the shared temp directory) is where another user could plant the file: never unpickle
what someone else could have written. No usable directory: no cache (None).
"""

from __future__ import annotations

import os
from pathlib import Path


def private_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/bkdsl`` when it is (or can be made) private to this user, else None."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bkdsl"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = base.stat()
    except OSError:
        return None
    if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or st.st_mode & 0o022:
        return None
    return base
