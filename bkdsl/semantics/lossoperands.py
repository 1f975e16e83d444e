"""Tensor operands of loss expressions: what ``model.r.h``, ``model(x = E).y``, ``data.x`` and
``reverse(E)`` refer to (bkdsl/semantics/lossexpr.py evaluates them).

* :class:`ModelRef` / :class:`ModuleRef` / :class:`DataRef` — the unevaluated roots and paths;
* :class:`ModelView` — what the compiler knows of the trained model (inputs, outputs, value names);
* :class:`TensorSource` — the run-time side: the batch, the outputs on it, the bound module (model
  calls on transformed inputs are cached per loss evaluation);
* :func:`module_tensors` — a path → the parameter/buffer (or all parameters of an op);
* :func:`module_paths`, :func:`uses_reverse` — syntactic scans the runner and ``bkdsl check`` use to
  resolve parameter paths before the first step and to require a reversal structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bkdsl.diagnostics import BkError, Span, did_you_mean
from bkdsl.syntax import ast as A


@dataclass
class ModelRef:
    """``model`` or ``model(x = E)`` (``inputs``: overridden inputs as unit-tagged values)."""

    inputs: dict[str, Any] | None  # name → unit-tagged value (lossexpr.UT)
    text: str
    span: Span | None


@dataclass
class ModuleRef:
    """``model.r`` / ``model.r.h``: a path into the model's modules, naming parameters."""

    path: tuple[str, ...]
    span: Span | None


@dataclass
class ModelView:
    """What the compiler knows of the trained model when it checks a loss: input and output names and
    the names of its values and parameters (``model.r.h`` must start at one of them)."""

    inputs: list[str]
    outputs: list[str]
    names: set[str]


@dataclass
class DataRef:
    span: Span | None


class TensorSource:
    """The run-time side of tensor operands: outputs on the batch, the batch, the model itself (set by
    :meth:`~bkdsl.semantics.lossexpr.LossProgram.bind_model`); at compile time there is none and only
    units flow."""

    def __init__(self, outputs: dict[str, Any], batch: dict[str, Any], model: Any, inputs: list[str],
                 reverse: Callable[[Any], Any] | None):
        self.outputs, self.batch, self.model, self.inputs, self.reverse = outputs, batch, model, inputs, reverse
        self._calls: dict[str, dict[str, Any]] = {}

    def call_model(self, overrides: dict[str, Any], key: str, span: Span | None) -> dict[str, Any]:
        if key not in self._calls:
            if self.model is None:
                raise BkError("E0609", "this loss applies the model to a new input, but no model is bound",
                              span=span, help="LossProgram.bind_model(model, inputs) (the runner does this)")
            ins = {k: self.batch[k] for k in self.inputs}
            ins.update(overrides)
            out = self.model(**ins)
            self._calls[key] = {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}
        return self._calls[key]

    def parameters(self, path: tuple[str, ...], span: Span | None) -> Any:
        return module_tensors(self.model, path, span)


def module_tensors(model: Any, path: tuple[str, ...], span: Span | None) -> Any:
    """``("r", "h")`` → the one parameter or buffer ``h`` under submodule ``r`` (searched by its last
    name, so a component that wraps its network as ``r.net.h`` is still ``model.r.h``); ``("enc",)`` →
    the tuple of all parameters of ``enc`` (or the block's own parameter ``enc``)."""
    if model is None:
        raise BkError("E0609", "this loss reads model parameters, but no model is bound", span=span)
    text = "model." + ".".join(path)
    named = dict(model.named_parameters())
    if len(path) == 1 and path[0] in named:
        return named[path[0]]
    mods = dict(model.named_modules())
    head = path[0]
    heads = sorted({n.split(".")[0] for n in list(mods) + list(named) if n})
    if head not in mods:
        raise BkError("E0101", f"`{text}`: the model has no output, op or parameter `{head}`", span=span,
                      help=did_you_mean(head, heads, f"ops and parameters of the model: {', '.join(heads) or 'none'}"))
    sub = mods[head]
    if len(path) == 1:
        ps = tuple(p for p in sub.parameters())
        if not ps:
            raise BkError("E0609", f"`{text}` has no parameters", span=span)
        return ps
    tensors = dict(sub.named_parameters())
    tensors.update(dict(sub.named_buffers()))
    want = ".".join(path[1:])
    hits = [n for n in tensors if n == want or n.endswith("." + want)]
    if len(hits) != 1:
        what = "no" if not hits else "more than one"
        raise BkError("E0101", f"`{text}`: `{head}` has {what} parameter or buffer `{want}`", span=span,
                      help=f"its tensors: {', '.join(sorted(tensors)) or 'none'}")
    return tensors[hits[0]]


def module_paths(e) -> list[tuple[tuple[str, ...], Span | None]]:
    """The parameter paths ``model.r.h`` written in a loss expression that are not outputs of a
    ``model(...)`` call (those are resolved when the loss first runs)."""
    out: list = []

    def chain(x):
        names = []
        while isinstance(x, A.Attr):
            names.append(x.name)
            x = x.obj
        return (tuple(reversed(names)) if isinstance(x, A.Name) and x.id == "model" else None)

    def walk(x, in_attr=False):
        if isinstance(x, A.Attr):
            c = chain(x)
            if c is not None and not in_attr and len(c) >= 2:
                out.append((c, x.span))
                return
            walk(x.obj, True)
        elif isinstance(x, A.Call):
            walk(x.func, True)
            for a in x.args:
                walk(a)
            for k in x.kwargs:
                walk(k.value)
        elif isinstance(x, A.BinOp):
            walk(x.left), walk(x.right)
        elif isinstance(x, A.Neg):
            walk(x.operand)

    walk(e)
    return out


def uses_reverse(e) -> Span | None:
    """The span of the first ``reverse(...)`` in a loss expression, or None."""
    if isinstance(e, A.Call):
        if isinstance(e.func, A.Name) and e.func.id == "reverse":
            return e.span
        for x in [*e.args, *(k.value for k in e.kwargs)]:
            s = uses_reverse(x)
            if s is not None:
                return s
    elif isinstance(e, A.BinOp):
        return uses_reverse(e.left) or uses_reverse(e.right)
    elif isinstance(e, (A.Neg,)):
        return uses_reverse(e.operand)
    elif isinstance(e, A.Attr):
        return uses_reverse(e.obj)
    return None


__all__ = ["ModelRef", "ModuleRef", "ModelView", "DataRef", "TensorSource", "module_tensors", "module_paths",
           "uses_reverse"]
