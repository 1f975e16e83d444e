"""``--plugin MODULE_OR_FILE``: import a user's Python module of components before a command runs.

A plugin registers components with the same decorator the built-ins use::

    # lion.py
    import bkdsl, torch
    @bkdsl.component("lion", kind="optimizer")
    class Lion(bkdsl.Component):
        class Params(pydantic.BaseModel): lr: float = 1e-4
        def build(self, params): return LionOptimizer(params, lr=self.params.lr)

and ``bkdsl train spec.bk --plugin lion.py`` (or ``--plugin mypkg.lion``) trains with ``optimizer = lion(...)``.
Plugins are trusted Python the user names explicitly; spec files are never executed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from bkdsl.diagnostics import BkError


def load_plugin(ref: str) -> str:
    """Import ``ref`` (a ``.py`` path or a dotted module name); returns the module's name."""
    p = Path(ref)
    if p.suffix == ".py" or p.exists():
        if not p.is_file():
            raise BkError("E0002", f"plugin `{ref}` not found", help="give a .py file or an importable module name")
        name = f"bkdsl_plugin_{p.stem}"
        spec = importlib.util.spec_from_file_location(name, p.resolve())
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as e:  # the plugin's own code failed: the user's error, reported as such
            sys.modules.pop(name, None)
            raise BkError("E0002", f"plugin `{ref}` failed to load: {type(e).__name__}: {e}",
                          help="run the file with python to see the traceback") from None
        return name
    try:
        importlib.import_module(ref)
    except ModuleNotFoundError as e:
        raise BkError("E0102", f"plugin module `{ref}` not found ({e.name} is missing)",
                      help="give a .py file or a module importable from the current environment") from None
    except Exception as e:
        raise BkError("E0002", f"plugin `{ref}` failed to load: {type(e).__name__}: {e}",
                      help="import it in python to see the traceback") from None
    return ref


def load_plugins(refs: list[str]) -> list[str]:
    return [load_plugin(r) for r in refs]
