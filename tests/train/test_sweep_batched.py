"""Batched multi-model training (bkdsl/train/batched.py) against the same runs trained one at a time.

Tolerance: runs without BatchNorm (TinyNet) come out bit-identical on the CPU; with BatchNorm the
vmapped batch-norm backward rounds differently in float32, and Adam (a normalised step) carries that
round-off through training: measured after 24 steps, test metrics within 1.3e-5 relative and weights
within 3.3e-5 absolute (lr 1e-2). The tests allow 1e-4 relative and 2e-4 absolute — an error in the
method (a run stepping with another run's learning rate, loss weight, data order or statistics) moves
these by 1e-2 and more.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from bkdsl.diagnostics import BkError
from bkdsl.train.batched import BatchedGroup, run_group
from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan, run
from bkdsl.train.metrics import Metric
from bkdsl.train.schedules import schedule as make_schedule
from bkdsl.components.data_sources import woods_saxon_dataset
from tests.train.tiny import tiny_plan


class BNNet(torch.nn.Module):
    """A small net with BatchNorm (running statistics are stacked buffers in the batched step). The layer
    before the BatchNorm has no bias, as in ResNets: BatchNorm removes it, its gradient is round-off,
    and Adam (which normalises the gradient) would turn round-off into full-size steps of a parameter
    that does not change the function — a comparison of two correct implementations would then fail."""

    def __init__(self, nr: int = 16, width: int = 24, p_drop: float = 0.0):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, width, bias=False), torch.nn.BatchNorm1d(width), torch.nn.ReLU(),
                                       torch.nn.Dropout(p_drop), torch.nn.Linear(width, nr + 1))

    def forward(self, shape):
        y = self.net(shape)
        return {"rho": y[:, :-1], "A": y[:, -1:]}


def weighted_loss(alpha: float):
    def loss(out, batch):
        a = ((out["rho"] - batch["rho"]) ** 2).mean()
        b = ((out["A"] - batch["A"]) ** 2).mean()
        return a + alpha * b, {"mse_rho": a, "mse_A": b}
    return loss


def bn_plan(seed: int, lr: float, alpha: float, optimizer: str = "adam", p_drop: float = 0.0, epochs: int = 3,
            schedule=None) -> TrainPlan:
    ds = woods_saxon_dataset(160, 16, 0.5, (3.0, 7.0), (0.45, 0.65), 0.16, seed=1)
    data = DataPlan(ds, [0.75, 0.125, 0.125], "minmax", seed=3, name="ws")
    cfg = TrainConfig(batch=16, epochs=epochs, seed=seed, optimizer=optimizer, optimizer_params={"lr": lr},
                      schedule=schedule or make_schedule("reduce_on_plateau", factor=0.5, patience=0), device="cpu",
                      metrics=[Metric("mae", "rho", "rho", "fm^-3", 1.0)])
    return TrainPlan("bn", lambda: BNNet(p_drop=p_drop), weighted_loss(alpha), ["shape"], data, cfg)


def _same_final(a: dict, b: dict, rel: float = 1e-4) -> None:
    assert a["status"] == b["status"] == "completed"
    assert b["test"] == pytest.approx(a["test"], rel=rel, abs=1e-9)
    assert b["best"]["epoch"] == a["best"]["epoch"]
    assert b["best"]["value"] == pytest.approx(a["best"]["value"], rel=rel)


def _same_weights(d1, d2, atol: float = 2e-4) -> None:
    for name in ("best", "last"):
        w1, w2 = load_file(str(d1 / "checkpoints" / f"{name}.safetensors")), load_file(str(d2 / "checkpoints" / f"{name}.safetensors"))
        assert w1.keys() == w2.keys()
        for k in w1:
            assert torch.allclose(w1[k].double(), w2[k].double(), atol=atol, rtol=0), (name, k)


def test_batched_runs_equal_the_same_runs_trained_one_at_a_time(tmp_path):
    # three runs that differ in seed (init and data order), learning rate, loss weight α and optimizer;
    # BatchNorm statistics and a per-run reduce_on_plateau schedule (patience 0: it acts every epoch)
    specs = [dict(seed=0, lr=3e-3, alpha=1.0), dict(seed=1, lr=1e-2, alpha=0.1),
             dict(seed=2, lr=1e-3, alpha=3.0, optimizer="adamw")]
    seq = [run(bn_plan(**s), tmp_path / f"seq{i}", quiet=True) for i, s in enumerate(specs)]
    finals, errors, agg = run_group([bn_plan(**s) for s in specs], [tmp_path / f"bat{i}" for i in range(3)], quiet=True)
    assert errors == {} and agg > 0
    for i, (a, b) in enumerate(zip(seq, finals)):
        _same_final(a, b)
        _same_weights(tmp_path / f"seq{i}", tmp_path / f"bat{i}")
        assert b["samples_per_s"] > 0
    assert len({f["test"]["test.loss"] for f in finals}) == 3
    # the schedule acted per run (its factor is in each run's own checkpoint)
    recs = [[json.loads(x) for x in (tmp_path / f"bat{i}" / "metrics.jsonl").read_text().splitlines()] for i in range(3)]
    seq_recs = [[json.loads(x) for x in (tmp_path / f"seq{i}" / "metrics.jsonl").read_text().splitlines()] for i in range(3)]
    for a, b in zip(seq_recs, recs):
        assert [r.get("lr") for r in a] == pytest.approx([r.get("lr") for r in b])


def test_stacked_adam_with_a_per_run_lr_tensor_equals_per_run_adam():
    """Adam over a stacked parameter P[R, ...] with lr[r] broadcast along the run axis is R independent
    Adams: each update is elementwise and slice r's moments see only slice r's gradient."""
    R, steps = 3, 7
    lr = torch.tensor([1e-3, 3e-3, 1e-2])
    b1, b2, eps = 0.9, 0.999, 1e-8
    g = torch.Generator().manual_seed(0)
    P0 = torch.randn(R, 5, 4, generator=g)
    grads = [torch.randn(R, 5, 4, generator=g) for _ in range(steps)]
    # reference: R torch.optim.Adam, one per run, on separate tensors
    ps = [P0[r].clone().requires_grad_() for r in range(R)]
    opts = [torch.optim.Adam([ps[r]], lr=float(lr[r]), foreach=False) for r in range(R)]
    # the stacked Adam: one update of P with lr a per-run tensor [R, 1, 1]
    P, m, v = P0.clone(), torch.zeros_like(P0), torch.zeros_like(P0)
    lr_b = lr.view(R, 1, 1)
    # what the batched trainer does: per-run torch Adam over aliases of the stack's slices
    Q = P0.clone()
    qs = [torch.nn.Parameter(Q[r]) for r in range(R)]
    qopts = [torch.optim.Adam([qs[r]], lr=float(lr[r])) for r in range(R)]
    for k, gr in enumerate(grads, start=1):
        for r in range(R):
            ps[r].grad = gr[r].clone()
            opts[r].step()
            qs[r].grad = gr[r].clone()
            qopts[r].step()
        m = b1 * m + (1 - b1) * gr
        v = b2 * v + (1 - b2) * gr * gr
        P = P - lr_b / (1 - b1 ** k) * m / ((v / (1 - b2 ** k)).sqrt() + eps)
    ref = torch.stack([p.detach() for p in ps])
    assert torch.allclose(P, ref, atol=1e-7, rtol=1e-6)
    assert torch.equal(Q, ref)   # in place through the aliases, bit for bit
    assert not torch.allclose(ref[0], ref[2])    # the per-run rates made the runs different


def test_a_stopped_run_is_masked_out_and_the_others_continue(tmp_path):
    plans = [tiny_plan(samples=96, epochs=3, lr=lr) for lr in (3e-3, 1e-2, 1e-3)]
    calls = {"n": 0}
    good = plans[1].loss

    def poisoned(out, batch):  # run 1's loss turns NaN at its 9th step (epoch 2)
        total, terms = good(out, batch)
        calls["n"] += 1
        return (total * float("nan") if calls["n"] == 9 else total), terms
    plans[1].loss = poisoned
    finals, errors, _ = run_group(plans, [tmp_path / f"r{i}" for i in range(3)], quiet=True)
    assert list(errors) == [1] and errors[1].code == "E0607"
    assert finals[1]["status"].startswith("stopped: the loss is nan at epoch 2")
    assert json.loads((tmp_path / "r1" / "final.json").read_text())["status"] == finals[1]["status"]
    for i, lr in ((0, 3e-3), (2, 1e-3)):
        _same_final(run(tiny_plan(samples=96, epochs=3, lr=lr), tmp_path / f"s{i}", quiet=True), finals[i], rel=1e-6)
        _same_weights(tmp_path / f"s{i}", tmp_path / f"r{i}", atol=1e-6)


def test_a_model_that_draws_random_numbers_is_refused_with_E0621(tmp_path):
    with pytest.raises(BkError) as e:
        BatchedGroup([bn_plan(0, 1e-3, 1.0, p_drop=0.5), bn_plan(1, 1e-3, 1.0, p_drop=0.5)],
                     [tmp_path / "a", tmp_path / "b"], quiet=True).run()
    assert e.value.code == "E0621" and "one batched step" in e.value.diagnostic.message
    assert not (tmp_path / "a" / "checkpoints").exists()   # refused before anything was trained


def test_runs_of_different_shapes_are_refused_as_one_group_with_E0621(tmp_path):
    a = tiny_plan(samples=96, epochs=1)
    b = tiny_plan(samples=96, epochs=1)
    b.build_model = lambda: type(a.build_model())(width=8)
    with pytest.raises(BkError) as e:
        BatchedGroup([a, b], [tmp_path / "a", tmp_path / "b"], quiet=True).run()
    assert e.value.code == "E0621" and "params" in e.value.diagnostic.message


def test_the_channels_last_stack_computes_the_same_values():
    """StackedModels(channels_last=True) changes the memory layout only: the stacked convolution weights
    lie as [R, O, kh, kw, C] and the inputs as [B, H, W, R, C], outputs and gradients are the same."""
    import copy

    from bkdsl.train.batched import StackedModels

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.n = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 3, stride=2, padding=1, bias=False),
                                         torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.Upsample(scale_factor=2),
                                         torch.nn.Conv2d(6, 3, 3, padding=1))

        def forward(self, x):
            return {"y": self.n(x)}

    models = []
    for i in range(3):
        torch.manual_seed(i)
        models.append(Net())
    a = StackedModels([copy.deepcopy(m) for m in models])
    b = StackedModels([copy.deepcopy(m) for m in models], channels_last=True)
    xs = [torch.randn(4, 2, 8, 16) for _ in range(3)]
    xb = b.stack_inputs(xs)
    assert xb.permute(1, 3, 4, 0, 2).is_contiguous()                      # [B, H, W, R, C] in memory
    assert b.P["n.0.weight"].permute(0, 1, 3, 4, 2).is_contiguous()       # [R, O, kh, kw, C]
    ya, yb = a({"x": a.stack_inputs(xs)})["y"], b({"x": xb})["y"]
    assert torch.allclose(ya, yb, rtol=1e-5, atol=1e-6)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for n in a.pnames:
        ga, gb = a.P[n].grad, b.P[n].grad
        assert float((ga - gb).norm() / ga.norm()) < 1e-5, n
    # and each run's module sees its slice: run 1 alone gives row 1
    with torch.no_grad():
        ref = models[1](xs[1])["y"]
        one = StackedModels([copy.deepcopy(m) for m in models], channels_last=True)
    assert torch.allclose(one({"x": one.stack_inputs(xs)})["y"][1], ref, rtol=1e-5, atol=1e-5)
