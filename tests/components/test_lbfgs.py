"""The lbfgs optimizer: torch.optim.LBFGS under the runner's one-step protocol."""

from __future__ import annotations

import json

import torch

from bkdsl.nn.lbfgs import ClosureLBFGS
from bkdsl.train.loop import run
from bkdsl.train.optim import build_optimizer, load_optimizer_state, optimizer_state
from tests.train.tiny import tiny_plan


def _quadratic():
    torch.manual_seed(0)
    A = torch.randn(6, 6, dtype=torch.float64)
    A = A @ A.T + 0.1 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    x = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    return A, b, x, lambda: 0.5 * x @ A @ x - b @ x


def test_prepared_step_equals_torch_lbfgs_with_its_own_closure():
    """The runner's protocol (loss + backward done, then prepare + step) takes exactly torch's step."""
    A, b, x, f = _quadratic()
    ours = build_optimizer("lbfgs", {"max_iter": 50}, torch.nn.ParameterList([x]))
    assert isinstance(ours, ClosureLBFGS)
    loss = f()
    ours.prepare(loss, f)
    ours.zero_grad()
    loss.backward()
    ours.step()
    A2, b2, y, g = _quadratic()
    ref = torch.optim.LBFGS([y], max_iter=50, history_size=100, line_search_fn="strong_wolfe")

    def closure():
        ref.zero_grad()
        v = g()
        v.backward()
        return v

    ref.step(closure)
    assert torch.equal(x.detach(), y.detach())
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-6)  # a 6-dim quadratic: solved


def test_a_step_into_non_finite_values_is_undone_and_the_step_length_halved():
    x = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = ClosureLBFGS([x], lr=1.0, max_iter=5, line_search_fn=None)
    f = lambda: torch.where(x.abs() < 1.5, (x - 3.0) ** 2, torch.full_like(x, float("nan"))).sum()  # noqa: E731
    loss = f()
    opt.prepare(loss, f)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.equal(x.detach(), torch.tensor([1.0], dtype=torch.float64)) and opt.backoff == 0.5


def test_state_round_trips_through_the_checkpoint_format_without_pickles():
    A, b, x, f = _quadratic()
    opt = ClosureLBFGS([x], max_iter=3, line_search_fn="strong_wolfe")
    for _ in range(2):
        loss = f()
        opt.prepare(loss, f)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tensors, meta = optimizer_state(opt)
    json.dumps(meta)  # JSON only
    assert any(k.startswith("optim.0.old_dirs.") for k in tensors)
    A2, b2, y, g = _quadratic()
    y.data.copy_(x.data)
    opt2 = ClosureLBFGS([y], max_iter=3, line_search_fn="strong_wolfe")
    load_optimizer_state(opt2, meta, tensors)
    for o, fn in ((opt, f), (opt2, g)):
        loss = fn()
        o.prepare(loss, fn)
        o.zero_grad()
        loss.backward()
        o.step()
    assert torch.equal(x.detach(), y.detach())


def test_the_runner_trains_with_lbfgs(tmp_path):
    plan = tiny_plan(epochs=3, batch=144)  # full batch
    plan.config.optimizer, plan.config.optimizer_params = "lbfgs", {"max_iter": 10}
    final = run(plan, tmp_path, quiet=True)
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["val.loss"] for r in recs if r.get("event") == "epoch"]
    assert final["status"] == "completed" and losses[-1] < 0.5 * losses[0]
