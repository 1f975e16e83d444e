"""The learning-rate schedule of a run: a spec schedule (:mod:`bkdsl.components.schedules`) bound to
the run's optimizer as a ``torch.optim.lr_scheduler`` scheduler, and its state in the checkpoint.

The runner calls :meth:`LRSchedule.after_step` after every optimizer step and :meth:`LRSchedule.observe`
after every evaluation; ``reduce_on_plateau`` acts on the second, every other schedule on the first.

Checkpoint state without pickle. A torch scheduler's ``state_dict`` mixes configuration (milestones
as a ``Counter``, ``T_max``, the base rates — all rebuilt from the spec) with progress. Only the
progress goes to the checkpoint's JSON sidecar (:data:`PROGRESS`: steps taken, the last rates, and for
``reduce_on_plateau`` the best value and its counters; a ``SequentialLR`` nests its children's),
with non-finite floats written as ``{"float": "inf"}`` so that the JSON is standard. Loading refuses
(E0606) anything that is not that plain data for *this* schedule — an unknown key, a missing one, a
value of the wrong type or length — before any of it reaches the scheduler; the rest of the state
comes from the freshly built scheduler, so a resumed run continues the schedule exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import lr_scheduler

from bkdsl import registry
from bkdsl.diagnostics import BkError, Span

# The entries of a scheduler's state_dict that change as it runs (everything else is configuration).
PROGRESS = ("last_epoch", "_step_count", "_last_lr", "best", "num_bad_epochs", "cooldown_counter")
CHILDREN = "_schedulers"  # SequentialLR, ChainedScheduler: the nested schedulers' states
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def schedule(name: str, **params: Any) -> registry.Component:
    """The registry's schedule ``name`` validated with ``params`` (for plans written in Python)."""
    cls = registry.lookup(name, "schedule")
    if cls is None:
        raise ValueError(f"unknown schedule {name!r}")
    return cls.from_args(params)


def constant() -> registry.Component:
    return schedule("constant")


class LRSchedule:
    """A torch scheduler driven by the training loop (see the module docstring)."""

    def __init__(self, scheduler: lr_scheduler.LRScheduler):
        self.scheduler = scheduler
        self.on_evaluation = isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)

    @classmethod
    def bind(cls, spec: registry.Schedule, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int,
             total_steps: int) -> "LRSchedule":
        return cls(spec.build(optimizer, steps_per_epoch=steps_per_epoch, total_steps=total_steps))

    def after_step(self) -> None:
        if not self.on_evaluation:
            self.scheduler.step()

    def observe(self, value: float) -> None:
        """The monitored value at the end of an evaluation."""
        if self.on_evaluation:
            self.scheduler.step(value)

    def rates(self) -> list[float]:
        return [float(g["lr"]) for g in self.scheduler.optimizer.param_groups]

    # -- checkpoint state ---------------------------------------------------------------------
    def state_json(self) -> dict:
        return _progress(self.scheduler.state_dict())

    def load_state(self, saved: Any, span: Span | None = None) -> None:
        fresh = self.scheduler.state_dict()
        self.scheduler.load_state_dict(_merge(fresh, saved, "schedule", span))


def _encode(v: Any, where: str) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return {"float": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if isinstance(v, (list, tuple)):
        return [_encode(x, where) for x in v]
    raise TypeError(f"schedule state `{where}` of type {type(v).__name__} is not plain data")


def _progress(sd: dict) -> dict:
    out = {k: _encode(sd[k], k) for k in PROGRESS if k in sd}
    if CHILDREN in sd:
        out[CHILDREN] = [_progress(c) for c in sd[CHILDREN]]
    return out


def _refuse(what: str, span: Span | None) -> BkError:
    return BkError("E0606", f"the checkpoint's schedule state does not fit this schedule: {what}", span=span,
                   help="the spec's schedule changed since the checkpoint was written, or the file was edited; "
                        "start a new run directory")


def _decode_like(v: Any, like: Any, where: str, span: Span | None) -> Any:
    """``v`` read back from JSON, accepted only as the plain value of the type of ``like`` (the fresh
    scheduler's own value at that key)."""
    if isinstance(like, bool):
        if not isinstance(v, bool):
            raise _refuse(f"`{where}` must be true or false", span)
        return v
    if isinstance(like, int):
        if isinstance(v, bool) or not isinstance(v, int):
            raise _refuse(f"`{where}` must be an integer", span)
        return v
    if isinstance(like, float):
        if isinstance(v, dict) and set(v) == {"float"} and v["float"] in _NONFINITE:
            return _NONFINITE[v["float"]]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _refuse(f"`{where}` must be a number", span)
        return float(v)
    if isinstance(like, (list, tuple)):
        if not isinstance(v, list) or len(v) != len(like):
            raise _refuse(f"`{where}` must be a list of {len(like)}", span)
        return [_decode_like(x, y, f"{where}[{i}]", span) for i, (x, y) in enumerate(zip(v, like))]
    raise _refuse(f"`{where}` has no plain form", span)


def _merge(fresh: dict, saved: Any, where: str, span: Span | None) -> dict:
    if not isinstance(saved, dict):
        raise _refuse(f"`{where}` must be an object", span)
    want = {k for k in PROGRESS if k in fresh} | ({CHILDREN} if CHILDREN in fresh else set())
    if set(saved) != want:
        extra, missing = sorted(set(saved) - want), sorted(want - set(saved))
        raise _refuse(", ".join(([f"unknown {', '.join(extra)}"] if extra else [])
                                + ([f"missing {', '.join(missing)}"] if missing else [])), span)
    out = dict(fresh)
    for k in want - {CHILDREN}:
        out[k] = _decode_like(saved[k], fresh[k], f"{where}.{k}", span)
    if CHILDREN in want:
        kids = saved[CHILDREN]
        if not isinstance(kids, list) or len(kids) != len(fresh[CHILDREN]):
            raise _refuse(f"`{where}.{CHILDREN}` must list {len(fresh[CHILDREN])} schedulers", span)
        out[CHILDREN] = [_merge(f, s, f"{where}.{CHILDREN}[{i}]", span)
                         for i, (f, s) in enumerate(zip(fresh[CHILDREN], kids))]
    return out
