"""The run's schedule state (bkdsl/train/schedules.py): plain JSON in the checkpoint, refused unless it
is exactly that, and a resumed schedule continues exactly."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from bkdsl.diagnostics import BkError
from bkdsl.train.loop import run
from bkdsl.train.schedules import LRSchedule, schedule
from tests.train.tiny import tiny_plan

SPECS = [("constant", {}), ("step", {"step_size": 2, "gamma": 0.5}), ("multistep", {"milestones": [1, 3]}),
         ("piecewise", {"values": [0.1, 0.03, 0.01], "milestones": [2, 4]}),
         ("cosine", {"warmup": 1.0, "min_factor": 0.1}), ("cosine", {"warmup_steps": 1}),
         ("reduce_on_plateau", {"factor": 0.5, "patience": 1})]
VALUES = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9]


def _bound(name, params, nb=3, total=30):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    return opt, LRSchedule.bind(schedule(name, **params), opt, steps_per_epoch=nb, total_steps=total)


def _advance(opt, run_, steps, start=0):
    out = []
    for s in range(start, start + steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        run_.after_step()
        if s % 3 == 2:  # an evaluation at the end of each 3-step epoch
            run_.observe(VALUES[(s // 3) % len(VALUES)])
    return out


@pytest.mark.parametrize("name,params", SPECS)
def test_state_round_trips_through_strict_json_and_continues_exactly(name, params):
    opt, a = _bound(name, params)
    _advance(opt, a, 7)
    saved_opt = copy.deepcopy(opt.state_dict())  # the rate itself comes back with the optimizer state
    text = json.dumps(a.state_json(), allow_nan=False)  # standard JSON: no Infinity/NaN literals
    tail = _advance(opt, a, 20, start=7)

    opt2, b = _bound(name, params)
    opt2.load_state_dict(saved_opt)
    b.load_state(json.loads(text))
    assert _advance(opt2, b, 20, start=7) == tail
    if name != "constant":  # without the schedule's state the continuation differs (the test can fail)
        opt3, c = _bound(name, params)
        opt3.load_state_dict(saved_opt)
        assert _advance(opt3, c, 20, start=7) != tail


def test_plateau_state_writes_infinity_as_plain_data():
    _, r = _bound("reduce_on_plateau", {})
    st = r.state_json()
    assert st["best"] == {"float": "inf"}
    json.dumps(st, allow_nan=False)


@pytest.mark.parametrize("edit", [
    lambda s: s.update(extra=1),                          # an unknown key
    lambda s: s.pop("last_epoch"),                        # a missing one
    lambda s: s.update(last_epoch="7"),                   # a string for an integer
    lambda s: s.update(last_epoch=True),                  # a bool for an integer
    lambda s: s.update(_last_lr=[0.1, 0.2]),              # one rate per group: wrong length
    lambda s: s.update(_last_lr={"__reduce__": "os.system"}),  # an object for a list
    lambda s: s.update(best={"float": "1e308"}),          # only inf, -inf and nan have a tagged form
])
def test_load_refuses_what_is_not_this_schedules_plain_state(edit):
    opt, r = _bound("reduce_on_plateau", {})
    st = json.loads(json.dumps(r.state_json()))
    edit(st)
    with pytest.raises(BkError) as e:
        _bound("reduce_on_plateau", {})[1].load_state(st)
    assert e.value.code == "E0606"


def test_load_refuses_the_state_of_another_schedule():
    _, cos = _bound("cosine", {"warmup": 1.0})
    _, step = _bound("step", {"step_size": 1})
    with pytest.raises(BkError) as e:
        step.load_state(cos.state_json())  # SequentialLR's nested schedulers: not a StepLR's state
    assert e.value.code == "E0606"
    with pytest.raises(BkError):
        step.load_state([1, 2])


@pytest.mark.parametrize("name,params", [("piecewise", {"values": [3e-3, 1e-3, 3e-4], "milestones": [1, 3]}),
                                         ("multistep", {"milestones": [1, 3], "gamma": 0.3}),
                                         ("reduce_on_plateau", {"factor": 0.5, "patience": 0})])
def test_a_resumed_run_follows_the_schedule_of_an_uninterrupted_one(tmp_path, name, params):
    """4 epochs in one go against 2 epochs, then resumed to 4: same rates per epoch, same weights."""
    run(tiny_plan(epochs=4, schedule=schedule(name, **params)), tmp_path / "ref", quiet=True)
    run(tiny_plan(epochs=2, schedule=schedule(name, **params)), tmp_path / "run", quiet=True)
    run(tiny_plan(epochs=4, schedule=schedule(name, **params)), tmp_path / "run", resume=True, quiet=True)

    def lrs(d):
        recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        return [r["lr"] for r in recs if r["event"] == "epoch"]

    assert lrs(tmp_path / "run") == lrs(tmp_path / "ref")
    assert len(set(lrs(tmp_path / "ref"))) > 1 or name == "reduce_on_plateau"  # the schedule did act
    a = load_file(str(tmp_path / "ref/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "run/checkpoints/last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
