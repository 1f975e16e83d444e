"""The embedding API: the pipeline as plain functions.

``parse → resolve → verify → lower``; each stage returns diagnostics as values. ``compile_*`` raise
:class:`~bkdsl.diagnostics.BkErrors` when there are errors (the CLI renders them instead), while
``check_*`` return the list.

When the probes run: ``check_*`` decide every claim statically where a static proof exists and defer
the confirming probes to ``compile_*`` (and so to ``train``); ``check_*(..., probe=True)`` runs them
all. A claim only a probe can decide is probed by both (bkdsl/verify/claims.py, "When the probes run").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bkdsl.diagnostics import BkError, BkErrors, Diagnostic, Span, did_you_mean
from bkdsl.gcpause import paused_gc
from bkdsl.lower.metrics import MetricProgram
from bkdsl.overrides import apply_overrides
from bkdsl.semantics import ir as I
from bkdsl.semantics.elaborate import elaborate_model_call
from bkdsl.semantics.lossexpr import LossProgram
from bkdsl.semantics.resolve import Loader, resolve
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.syntax.parser import parse
from bkdsl.verify import check_train_plan, verify_with_claims


@dataclass
class Signature:
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Compiled:
    """The result of compiling a spec."""

    file: str
    ir: I.Program
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)
    _module: Any = None

    # -- the main model ------------------------------------------------------------------------
    @property
    def main_model(self) -> str | None:
        t = next(iter(self.ir.trains.values()), None)
        if t is not None:
            m = t.get("model")
            name = m.name if isinstance(m, CallValue) else getattr(m, "path", None)
            if name in self.ir.models or name in self.ir.blocks:
                return name
        return next(iter(self.ir.models), None)

    @property
    def main_call(self) -> Any:
        """The main model as a call: the train block's ``model = ...`` when it names a model, else the
        first model with its defaults (None when the spec has no model)."""
        name = self.main_model
        if name is None:
            return None
        t = next(iter(self.ir.trains.values()), None)
        call = t.get("model") if t is not None else None
        return call if getattr(call, "name", getattr(call, "path", None)) == name else Ref(name)

    def model_call(self, name: str | None = None) -> Any:
        """The call that builds model ``name`` (``bkdsl compile --model NAME``): the train block's call when
        a train block trains it (``mtl(d_z = 2)``), else the model with its defaults; None → the main
        model. An unknown name is E0101 with the closest model's name."""
        if name is None:
            return self.main_call
        if name not in self.ir.models and name not in self.ir.blocks:
            known = sorted(self.ir.models) or sorted(self.ir.blocks)
            raise BkError("E0101", f"{self.file} has no model `{name}`",
                          help=did_you_mean(name, [*self.ir.models, *self.ir.blocks],
                                            f"models: {', '.join(known) or 'none'}"))
        for t in self.ir.trains.values():
            m = t.get("model")
            if getattr(m, "name", getattr(m, "path", None)) == name:
                return m
        return Ref(name)

    @property
    def module(self):
        """The GraphModule of the main model (the train block's model, else the first model)."""
        if self._module is None and self.main_call is not None:
            self._module = self.build_model(self.main_call)
        return self._module

    @property
    def report(self) -> str:
        from bkdsl.report import render_report

        return render_report(self)

    # -- the runner's contract ----------------------------------------------------------------
    def train_block(self, name: str | None = None) -> I.TrainIR:
        if not self.ir.trains:
            raise BkError("E0609", f"{self.file} has no train block", help="add `train NAME { model = ..., ... }`")
        if name is None:
            return next(iter(self.ir.trains.values()))
        if name not in self.ir.trains:
            raise BkError("E0609", f"no train block `{name}`; have: {', '.join(self.ir.trains)}")
        return self.ir.trains[name]

    def data_block(self, name: str) -> I.DataIR:
        if isinstance(name, Ref):
            name = name.path
        b = self.ir.scope.lookup(name)
        if b is None or b.kind != "data":
            raise BkError("E0609", f"no data declaration `{name}`")
        return b.value

    def model_ir(self, call: Any) -> I.BlockIR:
        """``elaborate(program, call)``: the model's BlockIR for ``mtl(d_z = 2)`` or ``mtl``."""
        return elaborate_model_call(call, self.ir.scope, None)

    def build_model(self, call: Any):
        """A fresh ``torch.fx.GraphModule`` for ``mtl(d_z = 2)`` (CallValue) or ``mtl`` (Ref):
        ``lower(elaborate(program, call))``."""
        from bkdsl.lower.fx import lower_block  # torch.fx: loaded when a module is first built

        return lower_block(self.model_ir(call), self.manifolds())

    def model_signature(self, call: Any) -> Signature:
        ir = self.model_ir(call)
        return Signature(dict(ir.inputs), {k: ir.node(v).type for k, v in ir.outputs.items()})

    def manifolds(self) -> dict[str, Any]:
        return {k: d.component for k, d in self.ir.decls.items() if d.kind == "manifold"}

    def build_loss(self, call: Any, units: dict[str, Any] | None = None):
        """A callable ``(outputs, batch) -> (total, terms)`` for ``mtl(alpha = 1e-3 fm^-3)``."""
        name = call.name if isinstance(call, CallValue) else call.path
        b = self.ir.scope.lookup(name)
        if b is None or b.kind != "loss":
            raise BkError("E0101", f"unknown loss `{name}`")
        return LossProgram(b.value, call if isinstance(call, CallValue) else None, units)

    def build_metric(self, call: CallValue, units: dict[str, Any] | None = None):
        """``mae(E) in MeV`` → callable ``(outputs, batch) -> float`` in the metric's unit (the batch must
        hold physical, de-normalised values in ``units``)."""
        return MetricProgram(call, units or {}, self.ir.scope)


# ------------------------------------------------------------------------------- entry points
def _pipeline(text: str, file: str, overrides: dict[str, str] | None, includes: tuple = (),
              confirm: bool = True) -> Compiled:
    """parse → (overrides) → resolve → verify; the returned program is a copy carrying each claim's result
    (for the report), the resolved one is not written to. ``includes``: more allowed import roots;
    ``confirm``: run the confirming probes of statically proven claims (False: ``check``)."""
    loader = Loader(includes=tuple(Path(i) for i in includes))
    loader.sources[file] = text
    module, diags = parse(text, file)
    if module is None:
        return Compiled(file, I.Program(file), diags, loader.sources)
    if overrides:
        odiags = apply_overrides(module, overrides, loader.sources)
        if odiags:
            return Compiled(file, I.Program(file), odiags, loader.sources)
    prog, rdiags = resolve(module, loader)
    diags = loader.diagnostics + rdiags
    if not any(d.is_error for d in diags):
        vdiags, results = verify_with_claims(prog, confirm)  # each claim decided once, its result kept for the report
        diags += vdiags
        prog = replace(prog, claims=results)
    elif prog.trains:  # a broken model still gets its train block checked (each error reported once)
        diags += check_train_plan(prog)
    return Compiled(file, prog, unique(diags), loader.sources)


def unique(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Each diagnostic once: a model elaborated for its defaults and again for the train block's call
    reports the same error twice (same code, place and message)."""
    seen, out = set(), []
    for d in diags:
        key = (d.code, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _guarded(fn, *args) -> Compiled:
    try:
        with paused_gc():  # one pause for the whole front end: one collection at its end (bkdsl/gcpause.py)
            return fn(*args)
    except BkError as e:  # an error raised outside a statement (e.g. while loading)
        file = args[1] if len(args) > 1 else "<string>"
        return Compiled(file, I.Program(file), [e.diagnostic], {})


def check_source(text: str, name: str = "<string>", overrides: dict[str, str] | None = None,
                 includes: tuple[str | Path, ...] = (), probe: bool = False) -> list[Diagnostic]:
    """``includes``: directories imports may read from besides the spec's tree and the stdlib;
    ``probe``: also run the confirming probes of statically proven claims (as compile does)."""
    return _guarded(_pipeline, text, name, overrides, includes, probe).diagnostics


def check_file(path: str | Path, overrides: dict[str, str] | None = None,
               includes: tuple[str | Path, ...] = (), probe: bool = False) -> list[Diagnostic]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [Diagnostic("E0002", f"cannot read {p}: {e.__class__.__name__}", Span(str(p), 1, 1, 1, 1),
                           help="check the path")]
    return check_source(text, str(path), overrides, includes, probe)


def compile_source(text: str, name: str = "<string>", overrides: dict[str, str] | None = None,
                   includes: tuple[str | Path, ...] = ()) -> Compiled:
    c = _guarded(_pipeline, text, name, overrides, includes)
    if any(d.is_error for d in c.diagnostics):
        raise BkErrors(c.diagnostics, c.sources)
    return c


def compile_file(path: str | Path, overrides: dict[str, str] | None = None,
                 includes: tuple[str | Path, ...] = ()) -> Compiled:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BkErrors([Diagnostic("E0002", f"cannot read {p}: {e.__class__.__name__}", Span(str(p), 1, 1, 1, 1))])
    return compile_source(text, str(path), overrides, includes)
