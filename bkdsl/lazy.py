"""Deferred imports: a module, or one function of a module, loaded at its first use.

Why: ``bkdsl check`` needs each component's *declaration* — its pydantic ``Params``, ``infer``, its
claims and sequence pattern — and none of its implementation. Importing torch costs 1–2 s on the
2-core machine, geoopt and scipy more; a component module names its torch side through these
helpers, so importing it for its schema costs pydantic only and torch loads when ``build``,
``function`` or a probe is first reached (lowering, training, ``check --probe``). This is the pattern
of Scientific Python SPEC 1 ("lazy loading of submodules and functions", as scipy, scikit-image and
networkx use it), written out in thirty lines instead of adding the ``lazy_loader`` dependency.

* :func:`lazy_module` — ``torch = lazy_module("torch")`` at the top of a component module; every
  attribute access (``torch.nn.Linear``) imports the real module (once; ``sys.modules`` caches it).
  Nothing is put into ``sys.modules`` before that first access, so "was torch imported?" stays a
  true question (tests/test_import_weight.py asks it).
* :class:`lazy_function` — a class attribute ``function = lazy_function("bkdsl.nn.ops", "relu")``
  that reads as the real function on the class and on every instance (a descriptor), so the fx
  lowering sees the real callable as its ``call_function`` target.

A module that *subclasses* a torch class at import time (``class M(torch.nn.Module)``) cannot be
deferred this way; such classes live in the implementation modules (``bkdsl/nn/``), which the
declaration imports lazily.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """A stand-in for module ``name`` that imports it at the first attribute access."""

    __slots__ = ("_lazy_name", "_lazy_module")

    def __init__(self, name: str):
        object.__setattr__(self, "_lazy_name", name)
        object.__setattr__(self, "_lazy_module", None)

    def _load(self) -> Any:
        mod = object.__getattribute__(self, "_lazy_module")
        if mod is None:
            mod = importlib.import_module(object.__getattribute__(self, "_lazy_name"))
            object.__setattr__(self, "_lazy_module", mod)
        return mod

    def __getattr__(self, attr: str) -> Any:  # only reached for names the stand-in itself lacks
        return getattr(self._load(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:  # e.g. a test's monkeypatch: the real module
        setattr(self._load(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._load(), attr)

    def __repr__(self) -> str:
        name = object.__getattribute__(self, "_lazy_name")
        loaded = object.__getattribute__(self, "_lazy_module") is not None
        return f"<lazy module {name!r}{' (loaded)' if loaded else ''}>"


def lazy_module(name: str) -> Any:
    """Module ``name``, imported at its first attribute access (see :class:`LazyModule`)."""
    return LazyModule(name)


class lazy_function:  # noqa: N801 - used like ``staticmethod``
    """A class attribute that is function ``attr`` of module ``module``, imported at first access.

    ``function = lazy_function("bkdsl.nn.poincare", "expmap0")`` behaves like
    ``function = staticmethod(poincare.expmap0)``: ``cls.function`` and ``obj.function`` are the real
    (unbound) function."""

    __slots__ = ("module", "attr")

    def __init__(self, module: str, attr: str):
        self.module = module
        self.attr = attr

    def resolve(self) -> Any:
        return getattr(importlib.import_module(self.module), self.attr)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self.resolve()

    def __repr__(self) -> str:
        return f"<lazy function {self.module}.{self.attr}>"
