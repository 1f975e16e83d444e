"""Learning-rate schedules: each builds a ``torch.optim.lr_scheduler`` scheduler over the run's optimizer.

A spec writes epochs; the runner steps the scheduler once per optimizer step, so every schedule is
built with ``steps_per_epoch`` (nb) and ``total_steps`` (T) and converts. With s the optimizer steps
taken and e = ⌊s / nb⌋ the epochs completed, the optimizer's rate lr is multiplied by:

==========================================  ======================  =============================================
spec                                        torch scheduler         rate at step s
==========================================  ======================  =============================================
``constant()``                              ConstantLR(factor 1)    lr
``step(step_size, gamma)``                  StepLR(step_size·nb)    lr · γ^⌊e / step_size⌋
``multistep(milestones, gamma)``            MultiStepLR(m·nb)       lr · γ^#{m ≤ e}
``piecewise(values, milestones)``           LambdaLR                values[#{m ≤ e}] (explicit rates;
                                                                    values[0] is the optimizer's lr)
``cosine(warmup, warmup_steps, min_factor)`` SequentialLR(LinearLR,  lr · (s + 1)/W for s < W, then
                                            CosineAnnealingLR)      lr · (m + (1 − m) ½(1 + cos(π (s − W)/(T − W))))
``reduce_on_plateau(factor, patience, …)``  ReduceLROnPlateau       × factor after ``patience`` evaluations
                                                                    without relative improvement ``threshold``
==========================================  ======================  =============================================

W = round(warmup · nb) + warmup_steps is the warm-up in optimizer steps (the first step already learns,
at lr/W); m = ``min_factor``. ``reduce_on_plateau`` is stepped with the monitored value after each
evaluation instead (the selection metric, else ``val.loss``), with torch's relative threshold
(better means a < best·(1 − threshold) in ``min`` mode) and ``eps = 0`` so that a reduction below
1e-8 is not dropped. The runtime wrapper and the checkpoint state are in :mod:`bkdsl.train.schedules`.
"""

from __future__ import annotations

import bisect
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bkdsl.diagnostics import BkError
from bkdsl.lazy import lazy_module
from bkdsl.registry import Component, component

# the schedulers are built by the runner (bkdsl/lazy.py)
torch = lazy_module("torch")
lr_scheduler = lazy_module("torch.optim.lr_scheduler")


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_rate(optimizer: torch.optim.Optimizer, comp: Component, what: str) -> float:
    """The optimizer's learning rate, refusing parameter groups with different rates (``what`` says
    which absolute quantity of the schedule would be wrong for all but one of them)."""
    lrs = {float(g["lr"]) for g in optimizer.param_groups}
    if len(lrs) != 1:
        raise BkError("E0609", f"`{comp.name}` {what}, but the optimizer's parameter groups have "
                               f"different rates ({', '.join(f'{x:g}' for x in sorted(lrs))})", span=comp.span,
                      help="give every parameter group the same lr, or use a relative schedule such as multistep")
    return lrs.pop()


class _Schedule(Component):
    """A schedule component: ``build`` is the registry's :class:`~bkdsl.registry.Schedule` protocol."""

    def build(self, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, total_steps: int
              ) -> lr_scheduler.LRScheduler:
        raise NotImplementedError

    def check_optimizer(self, lr: float | None) -> None:
        """Refuse (BkError) an optimizer rate this schedule cannot run with; ``check`` calls it with the
        spec's ``optimizer`` lr, the runner through :meth:`build`."""


# -- constant, step, multistep ---------------------------------------------------------------------
@component("constant", kind="schedule")
class ConstantSchedule(_Schedule):
    """The optimizer's rate throughout."""

    Params = _P

    def build(self, optimizer, *, steps_per_epoch, total_steps):
        return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


class StepParams(_P):
    step_size: int = Field(gt=0, description="epochs between decays")
    gamma: float = Field(0.1, gt=0)


@component("step", kind="schedule")
class StepSchedule(_Schedule):
    """lr · γ^⌊epoch / step_size⌋."""

    Params = StepParams

    def build(self, optimizer, *, steps_per_epoch, total_steps):
        return lr_scheduler.StepLR(optimizer, step_size=self.params.step_size * steps_per_epoch,
                                   gamma=self.params.gamma)


class MultiStepParams(_P):
    milestones: list[int] = Field(description="epochs at which the rate is multiplied by gamma")
    gamma: float = Field(0.1, gt=0)


@component("multistep", kind="schedule")
class MultiStepSchedule(_Schedule):
    """lr · γ^(number of milestones ≤ epoch): a stepped decay by one factor."""

    Params = MultiStepParams

    def build(self, optimizer, *, steps_per_epoch, total_steps):
        return lr_scheduler.MultiStepLR(optimizer, milestones=sorted(m * steps_per_epoch for m in self.params.milestones),
                                        gamma=self.params.gamma)


# -- piecewise: explicit rates ---------------------------------------------------------------------
class PiecewiseParams(_P):
    values: list[float] = Field(min_length=1, description="the learning rates, one per piece; values[0] is the "
                                                          "optimizer's lr")
    milestones: list[int] = Field(description="epochs after which the next value applies (strictly increasing, "
                                              "one fewer than values)")

    @model_validator(mode="after")
    def _pieces(self):
        if len(self.milestones) != len(self.values) - 1:
            raise ValueError(f"{len(self.values)} values need {len(self.values) - 1} milestones, got "
                             f"{len(self.milestones)}")
        if any(not (math.isfinite(v) and v > 0) for v in self.values):
            raise ValueError("every value must be a finite positive learning rate")
        if any(m <= 0 for m in self.milestones) or any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError("milestones must be positive and strictly increasing")
        return self


@component("piecewise", kind="schedule")
class PiecewiseSchedule(_Schedule):
    """Piecewise-constant rates written out: values[i] from the end of epoch milestones[i − 1] on.
    ``piecewise(values = [1e-4, 1e-5, 1e-6, 5e-7, 1e-7], milestones = [100, 200, 300, 400])`` runs
    epochs 1–100 at 1e-4, 101–200 at 1e-5, …, 401 on at 1e-7."""

    Params = PiecewiseParams

    def check_optimizer(self, lr):
        v0 = self.params.values[0]
        if lr is not None and not math.isclose(lr, v0, rel_tol=1e-9):
            raise BkError("E0609", f"`piecewise` starts at values[0] = {v0:g} but the optimizer's lr is {lr:g}",
                          span=self.span, help=f"write the optimizer's lr = {v0:g}, or start values with {lr:g}")

    def build(self, optimizer, *, steps_per_epoch, total_steps):
        lr = _one_rate(optimizer, self, "sets absolute rates")
        self.check_optimizer(lr)
        steps = [m * steps_per_epoch for m in self.params.milestones]
        factors = [v / lr for v in self.params.values]

        def factor(s: int) -> float:  # a plain function: LambdaLR's state_dict saves none of it
            return factors[bisect.bisect_right(steps, s)]

        return lr_scheduler.LambdaLR(optimizer, factor)


# -- cosine with linear warm-up --------------------------------------------------------------------
class CosineParams(_P):
    warmup: float = Field(0.0, ge=0, description="warm-up length in epochs (fractions allowed; rounded to steps)")
    warmup_steps: int = Field(0, ge=0, description="warm-up length in optimizer steps (added to `warmup`)")
    min_factor: float = Field(0.0, ge=0, le=1)


@component("cosine", kind="schedule")
class CosineSchedule(_Schedule):
    """Linear warm-up over W steps (step k at lr·(k + 1)/W), then half a cosine from lr down to
    ``min_factor``·lr at the last step."""

    Params = CosineParams

    def build(self, optimizer, *, steps_per_epoch, total_steps):
        p = self.params
        lr = _one_rate(optimizer, self, "decays to min_factor · lr") if p.min_factor else 0.0
        warm = round(p.warmup * steps_per_epoch) + p.warmup_steps
        cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps - warm, 1), eta_min=p.min_factor * lr)
        if warm == 0:
            return cosine
        linear = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm - 1)
        return lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warm])


# -- reduce on plateau -----------------------------------------------------------------------------
class PlateauParams(_P):
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(10, ge=0)
    threshold: float = Field(1e-4, ge=0)
    cooldown: int = Field(0, ge=0)
    min_factor: float = Field(0.0, ge=0)
    mode: Literal["min", "max"] = "min"


@component("reduce_on_plateau", kind="schedule")
class PlateauSchedule(_Schedule):
    """Multiply the rate by ``factor`` when the monitored value has not improved by a relative
    ``threshold`` for more than ``patience`` evaluations; never below ``min_factor``·lr."""

    Params = PlateauParams

    def build(self, optimizer, *, steps_per_epoch, total_steps):
        p = self.params
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=p.mode, factor=p.factor, patience=p.patience, threshold=p.threshold,
            threshold_mode="rel", cooldown=p.cooldown, min_lr=[p.min_factor * g["lr"] for g in optimizer.param_groups],
            eps=0.0)

