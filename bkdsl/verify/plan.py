"""Train/data plan pass: everything ``bkdsl train`` refuses before its first step, refused by ``check``.

``check_train_plan(program) -> list[Diagnostic]`` walks each ``train`` block and checks, without
reading a single sample:

* the block against its pydantic schema :class:`TrainBlock` (unknown keys with "did you mean",
  integers that must be integers, ``epochs`` xor ``steps``);
* the model elaborates with the call's config; the data names a data declaration whose source's
  parameters validate (units included) and whose ``split`` is a valid partition;
* the data's fields from the source's :meth:`~bkdsl.components.data_sources.DataSource.header` — a
  ``file(...)`` source reads its file's headers (missing file, missing key, shape and unit of each
  field) — against the model: an input or output named like a field must have the field's per-sample
  shape (a mismatch used to surface as an internal error inside the first step);
* the loss is unit-consistent with the fields; the optimizer, schedule and selector validate;
  each metric exists and can be reported in its unit; each plot names existing outputs and fields.

The runner (:mod:`bkdsl.train.plan`) builds its plan with the same functions, so the two cannot drift.
The pass reads the program and returns diagnostics; it mutates nothing.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from bkdsl import registry
from bkdsl.components.training import DEFAULT_OPTIMIZER, instantiate
from bkdsl.diagnostics import BkError, Diagnostic, Span
from bkdsl.lower.metrics import MetricProgram
from bkdsl.semantics import ir as I
from bkdsl.semantics.elaborate import elaborate_model_call
from bkdsl.semantics.lossexpr import ModelView, loss_unit, uses_reverse
from bkdsl.semantics.scope import report
from bkdsl.semantics.units import DIMENSIONLESS, parse_unit
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.components.fields import FieldInfo, check_split
from bkdsl.components.metric_specs import PARITY_METRICS, MetricSpec, ParitySpec, unit_factor
from bkdsl.components.reversal import refuse, reversal_layout
from bkdsl.verify.units import data_field_units

MODEL_PLOTS = ("latent", "decode_line")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class TrainBlock(BaseModel):
    """The keys a ``train`` block may hold (docs/training.md). Component-valued keys (model, data, loss,
    optimizer, schedule, select, metrics, plots) are checked by their components; this schema checks
    names, presence and the plain values."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model: Any
    data: Any
    loss: Any
    optimizer: Any = None
    schedule: Any = None
    batch: StrictInt = Field(32, ge=1)
    epochs: StrictInt | None = Field(None, ge=1)
    steps: StrictInt | None = Field(None, ge=1)
    select: Any = None
    metrics: list[Any] = Field(default_factory=list)
    plots: list[Any] = Field(default_factory=list)
    seed: StrictInt = Field(0, ge=0)
    precision: Any = None
    device: Any = None
    checkpoint_every: StrictInt | None = Field(None, ge=1)
    log_every: StrictInt | None = Field(None, ge=1)   # a `step` record every N optimizer steps
    eval_every: StrictInt | None = Field(None, ge=1)  # an `eval` record (validation) every N steps
    grad_clip: float | None = Field(None, gt=0)
    eval_batch: StrictInt | None = Field(None, ge=1)
    compile: Any = False
    channels_last: StrictBool = False
    resident: StrictBool = False
    time_limit: Any = None
    assert_manifolds: StrictBool = False
    checkpoint_interval: Any = None
    teleport: Any = None  # gradient teleportation over a repeated block (bkdsl/train/teleport.py)
    allow_acausal: StrictBool = False  # opt out of the next-token causality check (bkdsl/verify/causality.py)

    @model_validator(mode="after")
    def _epochs_or_steps(self) -> "TrainBlock":
        if self.epochs is None and self.steps is None:
            raise ValueError("needs `epochs` or `steps`")
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give `epochs` or `steps`, not both")
        return self


TRAIN_KEYS = tuple(TrainBlock.model_fields)


def did_you_mean(name: str, known: list[str] | tuple[str, ...], what: str) -> str:
    """``help`` text for an unknown name: the closest known one, else the list."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else f"{what}: {', '.join(known) or 'none'}"


def check_train_entries(t: I.TrainIR) -> list[Diagnostic]:
    """The train block against :class:`TrainBlock`: one diagnostic per bad key."""
    values = {k: e.value for k, e in t.entries.items()}
    try:
        TrainBlock.model_validate(values)
        return []
    except ValidationError as err:
        out = []
        for e in err.errors():
            key = str(e["loc"][0]) if e["loc"] else None
            span = t.entries[key].span if key in t.entries else t.span
            if e["type"] == "extra_forbidden":
                out.append(Diagnostic("E0609", f"unknown train key `{key}`", span,
                                      help=did_you_mean(key, TRAIN_KEYS, "train keys")))
            elif e["type"] == "missing":
                out.append(Diagnostic("E0609", f"train `{t.name}` has no `{key}`", t.span, help=f"add `{key} = ...`"))
            elif key is None:
                msg = str(e["msg"]).removeprefix("Value error, ")
                out.append(Diagnostic("E0609", f"train `{t.name}` {msg}", t.span, help="e.g. `epochs = 10`"))
            else:
                msg = str(e["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")
                out.append(Diagnostic("E0609", f"`{key}` must be {msg}, got {_show(values.get(key))}", span))
        return out


def _show(v: Any) -> str:
    return "true" if v is True else "false" if v is False else str(v)


def name_of(v: Any) -> str:
    return v.path if isinstance(v, Ref) else v.name if isinstance(v, CallValue) else str(v)


# -- pieces the runner's plan is built from ------------------------------------------------------------
def data_decl(program: I.Program, ref: Any, span: Span | None) -> I.DataIR:
    name = ref.path if isinstance(ref, Ref) else None
    b = program.scope.lookup(name) if name and program.scope is not None else None
    if b is None or b.kind != "data":
        raise BkError("E0101", f"`data` must name a data declaration, got `{ref}`", span=span,
                      help=did_you_mean(str(name), sorted(program.data), "data declarations"))
    return b.value


def normalization(p: Any, d: I.DataIR) -> tuple[str, list[str] | None]:
    """``normalize = minmax`` / ``standard`` / ``none`` / ``minmax(fields = [rho, E])`` → (kind, fields)."""
    norm = getattr(p, "normalize", None)
    if norm is None:
        return "none", None
    if isinstance(norm, (Ref, str)):
        kind, fields = name_of(norm), None
    elif isinstance(norm, CallValue):
        kind, fields = norm.name, [name_of(x) for x in norm.kwargs.get("fields", [])] or None
    else:
        kind, fields = "?", None
    if kind not in ("none", "minmax", "standard"):
        raise BkError("E0609", f"data `{d.name}`: bad `normalize` value {norm}", span=d.source.span or d.span,
                      help="use `normalize = minmax`, `standard` or `none`")
    return kind, fields


def split_of(p: Any, d: I.DataIR) -> list[float]:
    split = list(p.split) if getattr(p, "split", None) is not None else [0.8, 0.1, 0.1]
    check_split(split, span=d.source.span or d.span)
    return split


def bind_augment(aug: Any, source: Any) -> None:
    """An augmentation against its data source, as the runner's ``bind_to_source`` binds it (a
    ``time_reverse`` needs the source's declared reversal structure, E0612): a built-in through its
    torch-free ``check_source``, a user's augmentation through its runtime object's ``bind_source``."""
    check = getattr(aug, "check_source", None)
    if callable(check):
        check(source)
        return
    bind = getattr(aug.make(), "bind_source", None)
    if callable(bind):
        bind(source)


def metric(program: I.Program, m: Any, field_units: dict[str, str | None], span: Span | None) -> Any:
    """A metric entry as declared: one of the registry's (``mae(E) in MeV``, summed exactly over the
    split), a parity metric, else a loss primitive as a metric program (``l1_integral(rho, measure = ...)``).
    Built-ins come back as :class:`~bkdsl.components.metric_specs.MetricSpec` / ``ParitySpec`` (no
    torch); the runner makes them accumulate (:func:`bkdsl.train.metrics.runtime`)."""
    name = name_of(m)
    if name in PARITY_METRICS:
        return parity_metric(program, m, field_units, span)
    if registry.lookup(name, "metric") is not None:
        comp = instantiate(m, "metric", span)
        spec = getattr(comp, "spec", None)  # a user metric component has only `make`
        return spec(field_units) if callable(spec) else comp.make(field_units)
    call = m if isinstance(m, CallValue) else CallValue(name, span=getattr(m, "span", None))
    if registry.lookup(name, "loss") is None:
        known = sorted(set(registry.names(("metric", "loss"))) | set(PARITY_METRICS))
        raise BkError("E0104", f"unknown metric `{name}`", span=call.span or span,
                      help=did_you_mean(name, known, "metrics"))
    prog = MetricProgram(call, _pint_units(field_units), program.scope)
    field = name_of(call.args[-1]) if call.args else ""
    label = f"{call.name}_{field}" if field else call.name
    return MetricSpec(call.name, field, name_of(call.args[0]) if call.args else field,
                      getattr(prog, "unit_text", None), 1.0, span=call.span or span, fallback=prog, label=label)


def _pint_units(field_units: dict[str, str | None]) -> dict[str, Any]:
    return {k: (parse_unit(u) if u and u != "1" else DIMENSIONLESS) for k, u in field_units.items()}


def parity_metric(program: I.Program, m: Any, field_units: dict, span: Span | None) -> ParitySpec:
    """``parity_mae(E, axis = z) in MeV`` / ``parity_l1_integral(rho, axis = z, measure = cylinder(dr, dr))``."""
    call = m if isinstance(m, CallValue) else CallValue(name_of(m))
    sp = call.span or span
    if len(call.args) != 1:
        raise BkError("E0204", f"`{call.name}` takes one output name: `{call.name}(E, axis = z)`", span=sp)
    out = name_of(call.args[0])
    if out not in field_units:
        raise BkError("E0601", f"metric `{call.name}({out})`: the data has no field `{out}`", span=sp,
                      help=did_you_mean(out, list(field_units), "fields"))
    axis = call.kwargs.get("axis")
    if axis is None:
        raise BkError("E0609", f"`{call.name}` needs the reflection axis: `axis = z` or `axis = 3`", span=sp)
    axis = name_of(axis)
    if isinstance(axis, str) and axis.lstrip("-").isdigit():
        axis = int(axis)
    extra = set(call.kwargs) - {"axis", "measure"}
    if extra or (call.name == "parity_mae" and "measure" in call.kwargs):
        raise BkError("E0204", f"`{call.name}`: unknown argument(s) {', '.join(sorted(extra or {'measure'}))}", span=sp)
    if call.name == "parity_mae":
        factor, unit = unit_factor(field_units[out], call.unit, 1, sp, f"`parity_mae({out})`")
        return ParitySpec("parity_mae", out, axis, unit, factor, span=sp)
    kw = {"measure": call.kwargs["measure"]} if "measure" in call.kwargs else {}
    prog = MetricProgram(CallValue("l1_integral", [Ref(out)], kw, call.unit, span=sp), _pint_units(field_units),
                         program.scope)
    return ParitySpec("parity_l1_integral", out, axis, getattr(prog, "unit_text", None), prog.factor, span=sp,
                      term=prog.term.evaluate)


def model_plot(pv: CallValue, outputs: list[str], fields: list[str], span: Span | None) -> dict:
    """``latent(z, color = [E, Q20, Q30])`` or ``decode_line(z, rho, n = 12)``, checked against the model's
    outputs and the data's fields now rather than after training."""
    sp = pv.span or span
    args = [name_of(a) for a in pv.args]
    if pv.name == "latent":
        if len(args) != 1:
            raise BkError("E0609", "latent(...) takes the latent output's name: `latent(z, color = [E])`", span=sp)
        color = pv.kwargs.get("color", [])
        color = [name_of(c) for c in (color if isinstance(color, list) else [color])]
        bad = [c for c in color if c not in fields]
        if bad:
            raise BkError("E0601", f"latent(...): the data has no field {', '.join(f'`{b}`' for b in bad)} to colour by",
                          span=sp, help=f"fields: {', '.join(fields)}")
        spec = {"kind": "latent", "z": args[0], "color": color or [None],
                "splits": [name_of(x) for x in pv.kwargs.get("splits", ["val", "test"])]}
    else:
        if len(args) != 2:
            raise BkError("E0609", "decode_line(...) takes the latent output and the decoded output: "
                                   "`decode_line(z, rho, n = 12)`", span=sp)
        n = pv.kwargs.get("n", 12)
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise BkError("E0609", f"decode_line: `n` must be an integer >= 2, got {n!r}", span=sp)
        spec = {"kind": "decode_line", "z": args[0], "out": args[1], "n": n}
    missing = [a for a in args if outputs and a not in outputs]
    if missing:
        raise BkError("E0609", f"{pv.name}(...): the model has no output {', '.join(f'`{m}`' for m in missing)}",
                      span=sp, help=f"outputs: {', '.join(outputs)}; name the latent vector with `output z = ...`")
    return spec


def plots(values: list[Any], outputs: list[str], fields: list[str], span: Span | None) -> tuple[list, list]:
    """(loss-curve plots, model plots) of ``plots = [curve(val.mae_E), latent(z, color = [E])]``."""
    curves, model_plots = [], []
    for pv in values:
        if isinstance(pv, CallValue) and pv.name == "curve":
            curves.append([name_of(a) for a in pv.args])
        elif isinstance(pv, CallValue) and pv.name in MODEL_PLOTS:
            model_plots.append(model_plot(pv, outputs, fields, span))
        elif isinstance(pv, (Ref, str)):
            curves.append([name_of(pv)])
        else:
            raise BkError("E0609", f"plots: expected `curve(val.mae_E, ...)`, `latent(z, color = [E])`, "
                                   f"`decode_line(z, rho)` or a record key, got {pv}", span=span)
    return curves, model_plots


def compile_mode(v: Any, span: Span | None) -> str | None:
    """``compile = true`` → torch.compile's default mode; ``compile = "max-autotune"`` → that mode."""
    if v is False or v is None:
        return None
    if v is True:
        return "default"
    if isinstance(v, str) and v in COMPILE_MODES:
        return v
    raise BkError("E0609", f"`compile` must be true, false or a torch.compile mode, got {v!r}", span=span,
                  help=f"modes: {', '.join(COMPILE_MODES)}")


def seconds(v: Any, span: Span | None, key: str = "time_limit") -> float:
    """``time_limit = 600`` (seconds) or ``time_limit = 10 min`` (also ``checkpoint_interval``)."""
    import pint

    if isinstance(v, pint.Quantity):
        try:
            return float(v.to("s").magnitude)
        except Exception:
            raise BkError("E0604", f"`{key}` must be a time, got {v}", span=span) from None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return float(v)
    raise BkError("E0609", f"`{key}` must be a positive number of seconds, got {v!r}", span=span)


def per_sample_shape(t: Any) -> tuple | None:
    """A model value's shape without its batch dimension, None when not fully known."""
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) < 1 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    return tuple(shape[1:])


def _squeeze(shape: tuple) -> tuple:
    return tuple(d for d in shape if d != 1)


def check_shapes(model: I.BlockIR, fields: dict[str, FieldInfo], span: Span | None) -> list[Diagnostic]:
    """A model input or output named like a float data field must have the field's per-sample shape
    (size-1 axes aside: an output ``[B, 1]`` matches a field stored as ``[N]``)."""
    out: list[Diagnostic] = []
    values = [("input", k, v) for k, v in model.inputs.items()]
    values += [("output", k, model.node(v).type) for k, v in model.outputs.items()]
    for role, name, typ in values:
        f = fields.get(name)
        mine = per_sample_shape(typ)
        if f is None or f.shape is None or mine is None or f.dtype != "float":
            continue  # integer fields are class labels: `answer` [N] against logits `answer` [B, C]
        if _squeeze(mine) != _squeeze(tuple(f.shape)):
            out.append(Diagnostic(
                "E0602", f"model {role} `{name}` has per-sample shape {list(mine)} but data field `{name}` "
                         f"has {list(f.shape)}", span,
                help=f"make the {role} [B, {', '.join(map(str, f.shape))}] or name it differently"))
    return out


# -- the pass --------------------------------------------------------------------------------------------
def check_train_plan(program: I.Program) -> list[Diagnostic]:
    """Every train block of ``program``, checked as the runner would before its first step."""
    diags: list[Diagnostic] = []
    for t in program.trains.values():
        diags += check_train(t, program)
    return diags


def source_header(comp: Any, where: str | None) -> dict[str, FieldInfo]:
    """The fields a data source will produce: its ``header`` (a file source reads its file's headers),
    else its declared ``fields()`` (a generator knows them from its parameters)."""
    header = getattr(comp, "header", None)
    fields = getattr(comp, "fields", None)
    out = header(base_dir=where) if callable(header) else fields() if callable(fields) else {}
    declared = getattr(comp, "declared_fields", None)
    if not out and callable(declared):  # a generator that names its fields' units but not their shapes
        out = {k: FieldInfo(k, unit=None if u in (None, "", "1") else u)
               for k, u in declared(getattr(comp, "call", None)).items()}
    return out


def base_dir(program: I.Program) -> str | None:
    return None if program.file.startswith("<") else str(Path(program.file).parent)


def check_train(t: I.TrainIR, program: I.Program) -> list[Diagnostic]:
    diags = check_train_entries(t)
    sp = {k: e.span for k, e in t.entries.items()}

    def guard(fn, *args):
        try:
            return fn(*args)
        except BkError as e:
            report(diags, e)  # a use of a failed declaration is a cascade: already reported
            return None

    model = guard(elaborate_model_call, t.get("model"), program.scope, sp.get("model")) if "model" in sp else None
    header: dict[str, FieldInfo] | None = None
    d = guard(data_decl, program, t.get("data"), sp.get("data")) if "data" in sp else None
    loss_units = None
    if d is not None:
        comp = guard(instantiate, d.source, "data", d.span, f"data `{d.name}`")
        if comp is not None:
            guard(split_of, comp.params, d)
            guard(normalization, comp.params, d)
            for a in getattr(comp.params, "augment", None) or []:
                guard(lambda a=a: bind_augment(instantiate(a, "augment", d.source.span or d.span, "augment"), comp))
            header = guard(source_header, comp, base_dir(program))
        loss_units = guard(data_field_units, d.source)
    if "loss" in sp:
        view = ModelView(list(model.inputs), list(model.outputs), {n.name for n in model.nodes}) if model else None
        guard(_check_loss, program, t.get("loss"), loss_units, sp["loss"], view,
              comp if d is not None else None)
    if model is not None and header:
        diags += check_shapes(model, header, sp.get("data"))
    if model is not None and d is not None and comp is not None and hasattr(comp, "check_model"):
        guard(comp.check_model, model, sp.get("data"))  # a source whose fields assume the model's set-up
    opt = guard(instantiate, t.get("optimizer") or DEFAULT_OPTIMIZER, "optimizer", sp.get("optimizer"))
    if t.get("schedule") is not None:
        sched = guard(instantiate, t.get("schedule"), "schedule", sp.get("schedule"))
        if sched is not None and hasattr(sched, "check_optimizer"):  # the schedule's rates against the optimizer's
            guard(sched.check_optimizer, getattr(getattr(opt, "params", None), "lr", None))
    if t.get("teleport") is not None:
        guard(instantiate, t.get("teleport"), "gradient", sp.get("teleport"))
    if t.get("select") is not None:
        guard(lambda: instantiate(t.get("select"), "selector", sp.get("select")).make())
    if header is not None:
        field_units = {n: f.unit for n, f in header.items()}
        for m in t.get("metrics") or []:
            guard(metric, program, m, field_units, sp.get("metrics"))
        outputs = list(model.outputs) if model is not None else []
        guard(plots, t.get("plots") or [], outputs, list(header), sp.get("plots"))
    guard(compile_mode, t.get("compile", False), sp.get("compile"))
    for key in ("time_limit", "checkpoint_interval"):
        if t.get(key) is not None:
            guard(seconds, t.get(key), sp.get(key), key)
    return diags


def _check_loss(program: I.Program, loss: Any, field_units: dict | None, span: Span | None,
                model: ModelView | None = None, source: Any = None) -> None:
    lname = loss.name if isinstance(loss, CallValue) else (loss.path if isinstance(loss, Ref) else None)
    b = program.scope.lookup(lname) if lname else None
    if b is None or b.kind != "loss":
        cls = registry.lookup(lname or "")
        if cls is None or cls.kind != "loss":
            raise BkError("E0101", f"`loss` must name a loss declaration or a loss component, got `{loss}`", span=span,
                          help=did_you_mean(str(lname), sorted(program.losses), "loss declarations"))
        return
    loss_unit(b.value, loss if isinstance(loss, CallValue) else None, field_units, span or b.value.span, model)
    rev = uses_reverse(b.value.expr)
    if rev is not None and source is not None and reversal_layout(source) is None:
        raise refuse(getattr(source, "name", "?"), rev, what="reverse(...)")
