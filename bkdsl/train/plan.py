"""From a compiled spec to a :class:`~bkdsl.train.loop.TrainPlan`.

The compiler hands over a ``train`` block whose values are evaluated (numbers, quantities, lists,
:class:`CallValue` for component calls, :class:`Ref` for names). Each key becomes a runtime object
through the component registry (:func:`bkdsl.components.training.instantiate`), so unknown components,
bad parameters and bad keys are diagnostics with the span of the key that caused them.

Train keys: model, data, loss, optimizer, schedule, batch, epochs | steps, select, metrics, plots,
seed, precision, device, checkpoint_every, grad_clip, eval_batch, and the speed keys compile,
channels_last, resident (docs/training.md), time_limit, checkpoint_interval.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan
from bkdsl.train.metrics import PARITY_METRICS, Metric, ParityMetric

log = logging.getLogger(__name__)

TRAIN_KEYS = ("model", "data", "loss", "optimizer", "schedule", "batch", "epochs", "steps", "select", "metrics",
              "plots", "seed", "precision", "device", "checkpoint_every", "grad_clip", "eval_batch",
              "compile", "channels_last", "resident", "time_limit", "assert_manifolds", "checkpoint_interval",
              "allow_acausal")


def _int(v: Any, key: str, span: Span | None, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BkError("E0609", f"`{key}` must be an integer >= {minimum}, got {v!r}", span=span)
    return v


def _name(v: Any) -> str:
    return v.path if isinstance(v, Ref) else v.name if isinstance(v, CallValue) else str(v)


def data_plan(d: Any, seed: int, base_dir: str | None) -> DataPlan:
    """A ``DataIR`` (name, source CallValue, span) → DataPlan with the dataset loaded."""
    from bkdsl.components.training import COMMON_DATA_KEYS, instantiate

    src: CallValue = d.source
    comp = instantiate(src, "data", span=d.span, what=f"data `{d.name}`")
    p = comp.params
    dseed = p.seed if getattr(p, "seed", None) is not None else seed
    split = p.split if getattr(p, "split", None) is not None else [0.8, 0.1, 0.1]
    norm = getattr(p, "normalize", None)
    nfields = None
    if norm is None:
        nkind = "none"
    elif isinstance(norm, (Ref, str)):
        nkind = _name(norm)
    elif isinstance(norm, CallValue):  # minmax(fields = [rho, E])
        nkind = norm.name
        nfields = [_name(x) for x in norm.kwargs.get("fields", [])] or None
    else:
        raise BkError("E0609", f"data `{d.name}`: bad `normalize` value {norm!r}", span=src.span or d.span,
                      help="use `normalize = minmax`, `standard` or `none`")
    augs = [instantiate(a, "augment", span=src.span or d.span, what="augment").make()
            for a in (getattr(p, "augment", None) or [])]
    ds = comp.load(seed=dseed, base_dir=base_dir)
    _ = COMMON_DATA_KEYS
    return DataPlan(ds, list(split), nkind, nfields, augs, dseed, d.name, src.span or d.span)


def plan_from_compiled(c: Any, train: str | None = None, *, spec_path: str | None = None,
                       overrides: dict[str, str] | None = None, seed: int | None = None,
                       device: str | None = None, precision: str | None = None) -> TrainPlan:
    """Resolve a compiled spec's train block (``c.train_block(train)``) into a plan."""
    from bkdsl.components.training import instantiate

    t = c.train_block(name=train)
    E = t.entries
    sp = {k: e.span for k, e in E.items()}

    def get(k: str, default: Any = None) -> Any:
        e = E.get(k)
        return default if e is None else e.value

    for k in E:
        if k not in TRAIN_KEYS:
            raise BkError("E0609", f"unknown train key `{k}`", span=sp[k], help=f"train keys: {', '.join(TRAIN_KEYS)}")
    for k in ("model", "data", "loss"):
        if k not in E:
            raise BkError("E0609", f"train `{t.name}` has no `{k}`", span=t.span, help=f"add `{k} = ...`")
    if "epochs" not in E and "steps" not in E:
        raise BkError("E0609", f"train `{t.name}` needs `epochs` or `steps`", span=t.span, help="add `epochs = 10`")
    if "epochs" in E and "steps" in E:
        raise BkError("E0609", "give `epochs` or `steps`, not both", span=sp["steps"])
    run_seed = seed if seed is not None else _int(get("seed", 0), "seed", sp.get("seed"), minimum=0)

    # data
    dref = get("data")
    dname = _name(dref)
    try:
        d = c.data_block(dname)
    except BkError:
        raise
    except Exception:
        raise BkError("E0609", f"`data` must name a data declaration, got `{dref}`", span=sp["data"]) from None
    base_dir = str(Path(spec_path).parent) if spec_path else None
    dp = data_plan(d, run_seed, base_dir)

    # model, loss
    mval = get("model")
    sig = c.model_signature(mval)
    inputs = list(sig.inputs)
    loss = c.build_loss(get("loss"))
    model_factory = lambda: c.build_model(mval)  # noqa: E731 - built after the seed is set

    # optimizer, schedule
    opt = instantiate(get("optimizer", CallValue("adam", kwargs={"lr": 1e-3})), "optimizer", sp.get("optimizer"))
    oname, oparams = opt.make()
    sched = instantiate(get("schedule", CallValue("constant")), "schedule", sp.get("schedule")).make()

    # selection, metrics, plots
    sel_v = get("select")
    select = ("val.loss", "min") if sel_v is None else instantiate(sel_v, "selector", sp.get("select")).make()
    field_units = {n: i.unit for n, i in dp.dataset.info.items()}
    metrics: list[Metric] = []
    for m in get("metrics", []) or []:
        metrics.append(_metric(c, m, field_units, sp.get("metrics")))
    plots, model_plots = [], []
    for pv in get("plots", []) or []:
        if isinstance(pv, CallValue) and pv.name == "curve":
            plots.append([_name(a) for a in pv.args])
        elif isinstance(pv, CallValue) and pv.name in MODEL_PLOTS:
            model_plots.append(_model_plot(pv, sig, dp, sp.get("plots")))
        elif isinstance(pv, (Ref, str)):
            plots.append([_name(pv)])
        else:
            raise BkError("E0609", f"plots: expected `curve(val.mae_E, ...)`, `latent(z, color = [E])`, "
                                   f"`decode_line(z, rho)` or a record key, got {pv}", span=sp.get("plots"))

    def opt_int(k: str) -> int | None:
        v = get(k)
        return None if v is None else _int(v, k, sp.get(k))

    cfg = TrainConfig(
        batch=_int(get("batch", 32), "batch", sp.get("batch")), epochs=opt_int("epochs"), steps=opt_int("steps"),
        seed=run_seed, precision=precision or _name(get("precision", "fp32")),
        device=device or _name(get("device", "auto")), optimizer=oname, optimizer_params=oparams,
        schedule=sched, select=select, metrics=metrics, plots=plots,
        checkpoint_every=opt_int("checkpoint_every"),
        grad_clip=None if get("grad_clip") is None else float(get("grad_clip")),
        eval_batch=opt_int("eval_batch"), span=t.span, spans=sp,
        compile=_compile_mode(get("compile", False), sp.get("compile")),
        channels_last=_bool(get("channels_last", False), "channels_last", sp.get("channels_last")),
        resident=_bool(get("resident", False), "resident", sp.get("resident")),
        time_limit=None if get("time_limit") is None else _seconds(get("time_limit"), sp.get("time_limit")),
        checkpoint_interval=(None if get("checkpoint_interval") is None else
                             _seconds(get("checkpoint_interval"), sp.get("checkpoint_interval"), "checkpoint_interval")),
        assert_manifolds=_bool(get("assert_manifolds", False), "assert_manifolds", sp.get("assert_manifolds")),
        model_plots=model_plots)
    record = {"spec": spec_path, "train": t.name, "overrides": dict(overrides or {}), "seed": run_seed}
    if spec_path and Path(spec_path).exists():
        record["spec_sha256"] = hashlib.sha256(Path(spec_path).read_bytes()).hexdigest()
    return TrainPlan(t.name, model_factory, loss, inputs, dp, cfg, record)


def _metric(c: Any, m: Any, field_units: dict, span: Span | None) -> Metric:
    """A metric entry: one of ours (``mae(E) in MeV``, summed exactly over the split), else the compiler's
    metric program over a loss primitive (``l1_integral(rho, measure = ...)``), batch-size weighted."""
    from bkdsl.components.registry import lookup
    from bkdsl.components.training import instantiate
    from bkdsl.semantics.units import DIMENSIONLESS, parse_unit

    name = _name(m)
    if name in PARITY_METRICS:
        return _parity_metric(c, m, field_units, span)
    if lookup(name, "metric") is not None:
        return instantiate(m, "metric", span).make(field_units)
    call = m if isinstance(m, CallValue) else CallValue(name)
    units = {k: (parse_unit(u) if u and u != "1" else DIMENSIONLESS) for k, u in field_units.items()}
    if not hasattr(c, "build_metric"):
        raise BkError("E0609", f"unknown metric `{name}`", span=call.span or span)
    prog = c.build_metric(call, units)
    field = _name(call.args[-1]) if call.args else ""
    label = f"{call.name}_{field}" if field else call.name
    return Metric(call.name, field, _name(call.args[0]) if call.args else field, getattr(prog, "unit_text", None),
                  1.0, span=call.span or span, fallback=prog, label=label)


MODEL_PLOTS = ("latent", "decode_line")


def _bool(v: Any, key: str, span: Span | None) -> bool:
    if not isinstance(v, bool):
        raise BkError("E0609", f"`{key}` must be true or false, got {v!r}", span=span)
    return v


def _compile_mode(v: Any, span: Span | None) -> str | None:
    """``compile = true`` → torch.compile's default mode; ``compile = "max-autotune"`` → that mode."""
    if v is False or v is None:
        return None
    if v is True:
        return "default"
    modes = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
    if isinstance(v, str) and v in modes:
        return v
    raise BkError("E0609", f"`compile` must be true, false or a torch.compile mode, got {v!r}", span=span,
                  help=f"modes: {', '.join(modes)}")


def _seconds(v: Any, span: Span | None, key: str = "time_limit") -> float:
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


def _model_plot(pv: CallValue, sig: Any, dp: DataPlan, span: Span | None) -> dict:
    """``latent(z, color = [E, Q20, Q30])`` or ``decode_line(z, rho, n = 12)``, checked against the model's
    outputs and the data's fields now rather than after training."""
    sp = pv.span or span
    args = [_name(a) for a in pv.args]
    outs = list(getattr(sig, "outputs", {}) or {})
    fields = list(dp.dataset.fields)
    if pv.name == "latent":
        if len(args) != 1:
            raise BkError("E0609", "latent(...) takes the latent output's name: `latent(z, color = [E])`", span=sp)
        color = pv.kwargs.get("color", [])
        color = [_name(c) for c in (color if isinstance(color, list) else [color])]
        bad = [c for c in color if c not in fields]
        if bad:
            raise BkError("E0601", f"latent(...): the data has no field {', '.join(f'`{b}`' for b in bad)} to colour by",
                          span=sp, help=f"fields: {', '.join(fields)}")
        spec = {"kind": "latent", "z": args[0], "color": color or [None],
                "splits": [_name(x) for x in pv.kwargs.get("splits", ["val", "test"])]}
    else:
        if len(args) != 2:
            raise BkError("E0609", "decode_line(...) takes the latent output and the decoded output: "
                                   "`decode_line(z, rho, n = 12)`", span=sp)
        n = pv.kwargs.get("n", 12)
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise BkError("E0609", f"decode_line: `n` must be an integer >= 2, got {n!r}", span=sp)
        spec = {"kind": "decode_line", "z": args[0], "out": args[1], "n": n}
    missing = [a for a in args if outs and a not in outs]
    if missing:
        raise BkError("E0609", f"{pv.name}(...): the model has no output {', '.join(f'`{m}`' for m in missing)}",
                      span=sp, help=f"outputs: {', '.join(outs)}; name the latent vector with `output z = ...`")
    return spec


def _parity_metric(c: Any, m: Any, field_units: dict, span: Span | None) -> ParityMetric:
    """``parity_mae(E, axis = z) in MeV`` / ``parity_l1_integral(rho, axis = z, measure = cylinder(dr, dr))``."""
    from bkdsl.semantics.units import DIMENSIONLESS, parse_unit
    from bkdsl.train.metrics import unit_factor

    call = m if isinstance(m, CallValue) else CallValue(_name(m))
    sp = call.span or span
    if len(call.args) != 1:
        raise BkError("E0204", f"`{call.name}` takes one output name: `{call.name}(E, axis = z)`", span=sp)
    out = _name(call.args[0])
    if out not in field_units:
        raise BkError("E0601", f"metric `{call.name}({out})`: the data has no field `{out}`", span=sp,
                      help=f"fields: {', '.join(field_units)}")
    axis = call.kwargs.get("axis")
    if axis is None:
        raise BkError("E0609", f"`{call.name}` needs the reflection axis: `axis = z` or `axis = 3`", span=sp)
    axis = _name(axis)
    if isinstance(axis, str) and axis.lstrip("-").isdigit():
        axis = int(axis)
    extra = set(call.kwargs) - {"axis", "measure"}
    if extra or (call.name == "parity_mae" and "measure" in call.kwargs):
        raise BkError("E0204", f"`{call.name}`: unknown argument(s) {', '.join(sorted(extra or {'measure'}))}", span=sp)
    if call.name == "parity_mae":
        factor, unit = unit_factor(field_units[out], call.unit, 1, sp, f"`parity_mae({out})`")
        return ParityMetric("parity_mae", out, axis, unit, factor, span=sp)
    units = {k: (parse_unit(u) if u and u != "1" else DIMENSIONLESS) for k, u in field_units.items()}
    kw = {"measure": call.kwargs["measure"]} if "measure" in call.kwargs else {}
    prog = c.build_metric(CallValue("l1_integral", [Ref(out)], kw, call.unit, span=sp), units)
    term = prog.term.evaluate
    return ParityMetric("parity_l1_integral", out, axis, getattr(prog, "unit_text", None), prog.factor, span=sp,
                        term=term)
