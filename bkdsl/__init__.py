"""bkdsl — a config language for physics-informed neural architectures, and its compiler.

Embedding API (see README, "Python API")::

    import bkdsl
    c = bkdsl.compile_file("specs/phase8.bk")
    c.module          # torch.fx.GraphModule
    c.ir, c.report, c.diagnostics
    bkdsl.check_source(text)            # -> list[Diagnostic]
    m = bkdsl.load_run("runs/tiny")     # a trained run, inputs/outputs in physical units

    @bkdsl.component("my_op", kind="layer")
    class MyOp(bkdsl.Component): ...
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "compile_file": "bkdsl.api",
    "compile_source": "bkdsl.api",
    "check_source": "bkdsl.api",
    "check_file": "bkdsl.api",
    "Compiled": "bkdsl.api",
    "component": "bkdsl.registry",
    "Component": "bkdsl.registry",
    "Diagnostic": "bkdsl.diagnostics",
    "BkError": "bkdsl.diagnostics",
    "load_run": "bkdsl.trained",
}


def __getattr__(name: str):  # PEP 562: keep `import bkdsl` cheap (torch loads only when needed)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bkdsl' has no attribute {name!r}")


__all__ = list(_LAZY) + ["__version__"]
