"""From a compiled spec to a :class:`~bkdsl.train.loop.TrainPlan`.

The compiler hands over a ``train`` block whose values are evaluated (numbers, quantities, lists,
:class:`CallValue` for component calls, :class:`Ref` for names). Each key becomes a runtime object
through the component registry (:func:`bkdsl.components.training.instantiate`), so unknown components,
bad parameters and bad keys are diagnostics with the span of the key that caused them.

Train keys: model, data, loss, optimizer, schedule, batch, epochs | steps, select, metrics, plots,
seed, precision, device, checkpoint_every, log_every, eval_every, grad_clip, eval_batch, and the speed keys compile,
channels_last, resident (docs/training.md), time_limit, checkpoint_interval.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from bkdsl.components.training import DEFAULT_OPTIMIZER, instantiate
from bkdsl.diagnostics import BkError, BkErrors, Span
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.train.augment import bind_to_source
from bkdsl.train.reversal import reversal_layout
from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan
from bkdsl.train.metrics import Metric, runtime
from bkdsl.verify import plan as checks
from bkdsl.verify.plan import TRAIN_KEYS  # noqa: F401  (the schema's keys, re-exported for the docs)

log = logging.getLogger(__name__)

def _int(v: Any, key: str, span: Span | None, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BkError("E0609", f"`{key}` must be an integer >= {minimum}, got {v!r}", span=span)
    return v


def _name(v: Any) -> str:
    return v.path if isinstance(v, Ref) else v.name if isinstance(v, CallValue) else str(v)


def data_plan(d: Any, seed: int, base_dir: str | None) -> DataPlan:
    """A ``DataIR`` (name, source CallValue, span) → DataPlan with the dataset loaded."""
    src: CallValue = d.source
    comp = instantiate(src, "data", span=d.span, what=f"data `{d.name}`")
    p = comp.params
    dseed = p.seed if getattr(p, "seed", None) is not None else seed
    split = checks.split_of(p, d)
    nkind, nfields = checks.normalization(p, d)
    augs = bind_to_source([instantiate(a, "augment", span=src.span or d.span, what="augment").make()
                           for a in (getattr(p, "augment", None) or [])], comp)
    ds = comp.load(seed=dseed, base_dir=base_dir)
    return DataPlan(ds, split, nkind, nfields, augs, dseed, d.name, src.span or d.span)


def plan_from_compiled(c: Any, train: str | None = None, *, spec_path: str | None = None,
                       overrides: dict[str, str] | None = None, seed: int | None = None,
                       device: str | None = None, precision: str | None = None) -> TrainPlan:
    """Resolve a compiled spec's train block (``c.train_block(train)``) into a plan. The block is checked
    by the verification pass first (:func:`bkdsl.verify.plan.check_train`), the same checks ``bkdsl check``
    runs; what remains here can only fail on the loaded data."""
    t = c.train_block(name=train)
    E = t.entries
    sp = {k: e.span for k, e in E.items()}
    errors = [d for d in checks.check_train(t, c.ir) if d.is_error]
    if errors:
        raise BkErrors(errors, c.sources)

    def get(k: str, default: Any = None) -> Any:
        e = E.get(k)
        return default if e is None else e.value
    run_seed = seed if seed is not None else _int(get("seed", 0), "seed", sp.get("seed"), minimum=0)

    # data
    d = checks.data_decl(c.ir, get("data"), sp["data"])
    base_dir = str(Path(spec_path).parent) if spec_path else None
    dp = data_plan(d, run_seed, base_dir)

    # model, loss
    mval = get("model")
    sig = c.model_signature(mval)
    inputs = list(sig.inputs)
    loss = c.build_loss(get("loss"))
    layout = reversal_layout(instantiate(d.source, "data", span=d.span, what=f"data `{d.name}`"))
    if layout is not None and hasattr(loss, "reverse"):
        loss.reverse = layout.reverse_state  # `reverse(...)` in the loss: the state reversal the data declares
    model_factory = lambda: c.build_model(mval)  # noqa: E731 - built after the seed is set

    # optimizer, schedule
    opt = instantiate(get("optimizer", DEFAULT_OPTIMIZER), "optimizer", sp.get("optimizer"))
    oname, oparams = opt.name, opt.params.model_dump()
    sched = instantiate(get("schedule", CallValue("constant")), "schedule", sp.get("schedule"))

    # selection, metrics, plots
    sel_v = get("select")
    select = ("val.loss", "min") if sel_v is None else instantiate(sel_v, "selector", sp.get("select")).make()
    field_units = {n: i.unit for n, i in dp.dataset.info.items()}
    metrics: list[Metric] = [runtime(checks.metric(c.ir, m, field_units, sp.get("metrics")))
                             for m in get("metrics", []) or []]
    plots, model_plots = checks.plots(get("plots", []) or [], list(sig.outputs), list(dp.dataset.fields),
                                      sp.get("plots"))

    def opt_int(k: str) -> int | None:
        v = get(k)
        return None if v is None else _int(v, k, sp.get(k))

    cfg = TrainConfig(
        batch=_int(get("batch", 32), "batch", sp.get("batch")), epochs=opt_int("epochs"), steps=opt_int("steps"),
        seed=run_seed, precision=precision or _name(get("precision", "fp32")),
        device=device or _name(get("device", "auto")), optimizer=oname, optimizer_params=oparams,
        schedule=sched, select=select, metrics=metrics, plots=plots,
        checkpoint_every=opt_int("checkpoint_every"),
        log_every=opt_int("log_every"), eval_every=opt_int("eval_every"),
        grad_clip=None if get("grad_clip") is None else float(get("grad_clip")),
        eval_batch=opt_int("eval_batch"), span=t.span, spans=sp,
        compile=checks.compile_mode(get("compile", False), sp.get("compile")),
        channels_last=_bool(get("channels_last", False), "channels_last", sp.get("channels_last")),
        resident=_bool(get("resident", False), "resident", sp.get("resident")),
        time_limit=None if get("time_limit") is None else checks.seconds(get("time_limit"), sp.get("time_limit")),
        checkpoint_interval=(None if get("checkpoint_interval") is None else
                             checks.seconds(get("checkpoint_interval"), sp.get("checkpoint_interval"), "checkpoint_interval")),
        assert_manifolds=_bool(get("assert_manifolds", False), "assert_manifolds", sp.get("assert_manifolds")),
        model_plots=model_plots,
        teleport=None if get("teleport") is None else instantiate(get("teleport"), "gradient", sp.get("teleport")))
    record = {"spec": spec_path, "train": t.name, "overrides": dict(overrides or {}), "seed": run_seed}
    if spec_path and Path(spec_path).exists():
        record["spec_sha256"] = hashlib.sha256(Path(spec_path).read_bytes()).hexdigest()
    return TrainPlan(t.name, model_factory, loss, inputs, dp, cfg, record)


def _bool(v: Any, key: str, span: Span | None) -> bool:
    if not isinstance(v, bool):
        raise BkError("E0609", f"`{key}` must be true or false, got {v!r}", span=span)
    return v
