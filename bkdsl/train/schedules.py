"""Learning-rate schedules as multipliers of the optimizer's base rate.

``step(step_size, gamma)``            factor γ^⌊epoch / step_size⌋
``multistep(milestones, gamma)``      factor γ^(number of milestones ≤ epoch) — the thesis' stepped decay
``reduce_on_plateau(factor, patience, threshold, cooldown, min_factor)``
                                      multiply by ``factor`` when the monitored validation loss has not
                                      improved by a relative ``threshold`` for ``patience`` evaluations
``cosine(warmup, min_factor)``        linear warm-up over ``warmup`` epochs (fractions allowed), then
                                      half a cosine from 1 down to ``min_factor`` at the end of training

The stateless ones are pure functions of training progress, evaluated before every optimizer step at
the fractional epoch ``t = global_step / steps_per_epoch``; epoch-based schedules read ⌊t⌋, so a step
decay happens exactly at the epoch boundary. Only ``reduce_on_plateau`` has state (best value, bad
evaluations, current factor, cooldown), which is plain JSON in the checkpoint sidecar — no torch
scheduler object (whose state may hold lambdas) is ever serialised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class Schedule:
    def factor(self, t: float, total: float) -> float:
        """LR multiplier at fractional epoch ``t`` of ``total`` epochs."""
        return 1.0

    def observe(self, value: float) -> None:
        """A validation value (the selection metric) at the end of an evaluation."""

    def state_json(self) -> dict:
        return {}

    def load_state(self, d: dict) -> None:
        pass


@dataclass
class Constant(Schedule):
    pass


@dataclass
class StepDecay(Schedule):
    step_size: int
    gamma: float = 0.1

    def factor(self, t: float, total: float) -> float:
        return self.gamma ** (math.floor(t + 1e-9) // self.step_size)


@dataclass
class MultiStep(Schedule):
    milestones: list[int]
    gamma: float = 0.1

    def factor(self, t: float, total: float) -> float:
        e = math.floor(t + 1e-9)
        return self.gamma ** sum(1 for m in self.milestones if m <= e)


@dataclass
class CosineWarmup(Schedule):
    warmup: float = 0.0
    min_factor: float = 0.0
    dt: float = 0.0  # one step in epochs (1 / steps per epoch), set by the runner
    warmup_steps: int = 0  # warm-up given in steps; converted to epochs with dt

    def factor(self, t: float, total: float) -> float:
        warmup = self.warmup + self.warmup_steps * self.dt
        if warmup > 0 and t < warmup:
            # step k of warm-up runs at (k + 1) / warmup_steps: the first step already learns
            return min(1.0, (t + self.dt) / warmup)
        span = max(total - warmup, 1e-12)
        x = min(max((t - warmup) / span, 0.0), 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * x))


@dataclass
class ReduceOnPlateau(Schedule):
    factor_: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    cooldown: int = 0
    min_factor: float = 0.0
    mode: str = "min"
    state: dict = field(default_factory=lambda: {"best": None, "bad": 0, "cool": 0, "f": 1.0})

    def factor(self, t: float, total: float) -> float:
        return self.state["f"]

    def observe(self, value: float) -> None:
        s = self.state
        better = (s["best"] is None or
                  (value < s["best"] * (1 - self.threshold) if self.mode == "min" and s["best"] >= 0 else
                   value < s["best"] * (1 + self.threshold) if self.mode == "min" else
                   value > s["best"] * (1 + self.threshold) if s["best"] >= 0 else
                   value > s["best"] * (1 - self.threshold)))
        if better:
            s["best"], s["bad"] = float(value), 0
        else:
            s["bad"] += 1
        if s["cool"] > 0:
            s["cool"] -= 1
            s["bad"] = 0
        if s["bad"] > self.patience:
            s["f"] = max(s["f"] * self.factor_, self.min_factor)
            s["cool"], s["bad"] = self.cooldown, 0

    def state_json(self) -> dict:
        return dict(self.state)

    def load_state(self, d: dict) -> None:
        self.state = dict(d)
