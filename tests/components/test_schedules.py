"""Learning-rate schedules (bkdsl/components/schedules.py): each spec schedule, built as its torch
scheduler and stepped once per optimizer step, gives the rate its closed form says at every step."""

from __future__ import annotations

import math

import pytest
import torch

import bkdsl
from bkdsl.diagnostics import BkError
from bkdsl.train.schedules import LRSchedule, schedule

LR = 0.1


def _opt(lrs=(LR,)):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs], lr=lrs[0])


def rates(spec, steps: int, nb: int, total: int | None = None, lrs=(LR,)) -> list[float]:
    """The rate each of ``steps`` optimizer steps runs at."""
    opt = _opt(lrs)
    run = LRSchedule.bind(spec, opt, steps_per_epoch=nb, total_steps=total or steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        run.after_step()
    return out


def test_constant_step_multistep_follow_the_epoch_formulas():
    nb = 3
    assert rates(schedule("constant"), 20, nb) == [LR] * 20
    got = rates(schedule("step", step_size=2, gamma=0.5), 20, nb)
    assert got == pytest.approx([LR * 0.5 ** ((s // nb) // 2) for s in range(20)], rel=1e-12)
    got = rates(schedule("multistep", milestones=[5, 2], gamma=0.1), 24, nb)
    assert got == pytest.approx([LR * 0.1 ** sum(m <= s // nb for m in (2, 5)) for s in range(24)], rel=1e-12)


@pytest.mark.parametrize("warmup,warmup_steps,min_factor", [(0.0, 0, 0.0), (2.0, 0, 0.1), (0.5, 3, 0.2), (0.0, 1, 0.0)])
def test_cosine_with_linear_warmup(warmup, warmup_steps, min_factor):
    nb, T = 4, 30
    W = round(warmup * nb) + warmup_steps
    got = rates(schedule("cosine", warmup=warmup, warmup_steps=warmup_steps, min_factor=min_factor), T, nb)
    want = [LR * ((s + 1) / W if s < W else
                  min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * (s - W) / (T - W))))
            for s in range(T)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-15)
    if W > 1:
        assert got[0] == pytest.approx(LR / W)  # the first step already learns


def test_piecewise_runs_the_thesis_rates_at_epochs_101_201_301_401():
    values = [1e-4, 1e-5, 1e-6, 5e-7, 1e-7]
    spec = schedule("piecewise", values=values, milestones=[100, 200, 300, 400])
    nb = 2
    got = rates(spec, 450 * nb, nb, lrs=(1e-4,))
    per_epoch = {e + 1: got[e * nb] for e in range(450)}  # epochs numbered from 1, as in metrics.jsonl
    assert all(got[e * nb + 1] == per_epoch[e + 1] for e in range(450))  # constant within an epoch
    for first, last, v in ((1, 100, 1e-4), (101, 200, 1e-5), (201, 300, 1e-6), (301, 400, 5e-7), (401, 450, 1e-7)):
        assert per_epoch[first] == pytest.approx(v, rel=1e-12) and per_epoch[last] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("params", [
    {"values": [1e-3, 1e-4], "milestones": []},           # one milestone short
    {"values": [1e-3, 1e-4], "milestones": [5, 10]},      # one too many
    {"values": [1e-3, 1e-4, 1e-5], "milestones": [10, 10]},  # not increasing
    {"values": [1e-3, 0.0], "milestones": [10]},           # not a rate
    {"values": [1e-3, float("nan")], "milestones": [10]},
    {"values": [], "milestones": []},
])
def test_piecewise_refuses_malformed_pieces(params):
    with pytest.raises(BkError) as e:
        schedule("piecewise", **params)
    assert e.value.code == "E0201"


def test_piecewise_refuses_an_optimizer_rate_other_than_its_first_value():
    spec = schedule("piecewise", values=[1e-4, 1e-5], milestones=[3])
    with pytest.raises(BkError) as e:
        rates(spec, 2, 1, lrs=(1e-3,))
    assert e.value.code == "E0609" and "values[0]" in e.value.diagnostic.message


def test_absolute_rates_refuse_parameter_groups_with_different_rates():
    with pytest.raises(BkError) as e:
        rates(schedule("cosine", min_factor=0.1), 4, 1, lrs=(0.1, 0.01))
    assert e.value.code == "E0609"
    # relative schedules scale each group's own rate
    opt = _opt((0.1, 0.01))
    run = LRSchedule.bind(schedule("multistep", milestones=[1], gamma=0.5), opt, steps_per_epoch=1, total_steps=3)
    opt.step()
    run.after_step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.005])


def test_reduce_on_plateau_acts_on_evaluations_and_reaches_small_rates():
    opt = _opt((1e-7,))
    run = LRSchedule.bind(schedule("reduce_on_plateau", factor=0.5, patience=2), opt, steps_per_epoch=5,
                          total_steps=50)
    for _ in range(5):
        run.after_step()  # steps never change a plateau schedule
    assert opt.param_groups[0]["lr"] == 1e-7
    for v in (1.0, 0.9, 0.9, 0.9):
        run.observe(v)
    assert opt.param_groups[0]["lr"] == 1e-7  # patience 2: two bad evaluations are allowed
    run.observe(0.9)
    # torch's default eps = 1e-8 would drop this 5e-8 reduction; the schedule sets eps = 0
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-8, rel=1e-12)


def test_check_refuses_a_piecewise_start_that_is_not_the_optimizer_rate(tmp_path):
    spec = '''data ws = woods_saxon(samples = 64, nr = 8, step = 0.25 fm)
model m {
  input shape : [B, 2]
  output rho = linear(tanh(linear(shape, 8)), 8)
}
loss l = mse(rho)
train t {
  model = m
  data = ws
  loss = l
  optimizer = adam(lr = LR)
  schedule = piecewise(values = [1e-4, 1e-5], milestones = [2])
  epochs = 3
}
'''
    # without an optimizer line the runner's default adam(lr = 1e-3) is what check compares with
    for lr, refused in (("1e-3", True), ("1e-4", False), (None, True)):
        p = tmp_path / f"s{lr}.bk"
        p.write_text(spec.replace("LR", lr) if lr else spec.replace("  optimizer = adam(lr = LR)\n", ""))
        codes = [d.code for d in bkdsl.check_file(p)]
        assert ("E0609" in codes) == refused, codes


def test_a_schedule_registered_from_python_is_built_like_the_built_ins():
    from pydantic import BaseModel, ConfigDict

    from bkdsl import registry

    class ExpParams(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gamma: float = 0.5

    @bkdsl.component("test_exponential_schedule", kind="schedule")
    class Exponential(bkdsl.Component):
        Params = ExpParams

        def build(self, optimizer, *, steps_per_epoch, total_steps):
            return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.params.gamma)

    assert rates(schedule("test_exponential_schedule", gamma=0.5), 4, 1) == pytest.approx([LR * 0.5 ** s for s in range(4)])
    with pytest.raises(TypeError, match="build"):
        bkdsl.component("test_schedule_without_build", kind="schedule")(type("NoBuild", (bkdsl.Component,), {}))
    assert registry.lookup("test_schedule_without_build") is None
