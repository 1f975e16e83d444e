"""From a compiled spec to a :class:`~bkdsl.train.loop.TrainPlan`.

The compiler hands over a ``train`` block whose values are evaluated (numbers, quantities, lists,
:class:`CallValue` for component calls, :class:`Ref` for names). Each key becomes a runtime object
through the component registry (:func:`bkdsl.components.training.instantiate`), so unknown components,
bad parameters and bad keys are diagnostics with the span of the key that caused them.

Train keys: model, data, loss, optimizer, schedule, batch, epochs | steps, select, metrics, plots,
seed, precision, device, checkpoint_every, grad_clip, eval_batch.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan
from bkdsl.train.metrics import Metric

log = logging.getLogger(__name__)

TRAIN_KEYS = ("model", "data", "loss", "optimizer", "schedule", "batch", "epochs", "steps", "select", "metrics",
              "plots", "seed", "precision", "device", "checkpoint_every", "grad_clip", "eval_batch")


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
    plots = []
    for pv in get("plots", []) or []:
        if isinstance(pv, CallValue) and pv.name == "curve":
            plots.append([_name(a) for a in pv.args])
        elif isinstance(pv, (Ref, str)):
            plots.append([_name(pv)])
        else:
            raise BkError("E0609", f"plots: expected `curve(val.mae_E, ...)` or a record key, got {pv}",
                          span=sp.get("plots"))

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
        eval_batch=opt_int("eval_batch"), span=t.span, spans=sp)
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
