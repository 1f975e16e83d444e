"""The training loop in-process: outputs, selection, units, non-finite losses, exact resume."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from bkdsl.diagnostics import BkError
from bkdsl.train.checkpoint import load_checkpoint
from bkdsl.train.loop import run
from bkdsl.train.metrics import Metric
from bkdsl.train.schedules import constant

from .tiny import mse_loss, tiny_plan


def test_run_writes_every_output_with_finite_metrics(tmp_path):
    final = run(tiny_plan(epochs=3), tmp_path, quiet=True)
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs if r["event"] == "epoch"] == [1, 2, 3]
    assert recs[-1]["event"] == "test"
    for r in recs:
        assert all(math.isfinite(v) for k, v in r.items() if isinstance(v, float))
    assert recs[0]["units"]["mae_rho"] == "fm^-3"
    f = json.loads((tmp_path / "final.json").read_text())
    assert f["status"] == "completed" and f["device"] == "cpu" and f["samples_per_s"] > 0
    assert f["first_step_s"] > 0  # the warm-up step, timed alone and left out of samples/s
    assert set(f["test"]) >= {"test.loss", "test.mae_rho", "test.rmse_A"} and "torch" in f["versions"]
    for p in ("checkpoints/last.safetensors", "checkpoints/best.safetensors", "plots/loss.png", "train.log"):
        assert (tmp_path / p).exists(), p
    assert f["best"]["value"] == min(r["val.loss"] for r in recs if r["event"] == "epoch")
    best = load_checkpoint(tmp_path / "checkpoints/best.safetensors")
    assert best.state["global_step"] == f["best"]["global_step"]
    assert "norm.rho.scale" in best.tensors  # normalisation travels with the weights


def test_samples_per_s_leaves_out_the_first_step(tmp_path, monkeypatch):
    """A slow first step (compilation) must not drag the steady-state rate: patch the model's forward to
    sleep 0.5 s once; the reported rate must stay above what counting that step would allow."""
    import time as _time

    from .tiny import TinyNet

    fwd, calls = TinyNet.forward, []

    def slow_once(self, *a, **k):
        if not calls:
            _time.sleep(0.5)
        calls.append(1)
        return fwd(self, *a, **k)

    monkeypatch.setattr(TinyNet, "forward", slow_once)
    plan = tiny_plan(epochs=2, batch=16)
    f = run(plan, tmp_path, quiet=True)
    assert f["first_step_s"] >= 0.5
    steps = f["global_step"] - 1
    assert steps > 0
    # counting the sleep, the rate could not exceed (steps + 1)·batch / 0.5 s
    assert f["samples_per_s"] > (steps + 1) * 16 / 0.5


def test_samples_per_s_leaves_out_the_first_step_at_each_batch_size(tmp_path, monkeypatch):
    """An epoch's short last batch is a new shape (Triton recompiles for it on the GPU): its first step is
    warm-up too. Slow the first training forward at each batch size by 0.4 s: both slow steps land in
    warmup_s and the rate stays above what counting either would allow."""
    import time as _time

    from .tiny import TinyNet

    fwd, seen = TinyNet.forward, set()

    def slow_per_size(self, *a, **k):
        n = (list(a) + list(k.values()))[0].shape[0]
        if self.training and n not in seen:
            seen.add(n)
            _time.sleep(0.4)
        return fwd(self, *a, **k)

    monkeypatch.setattr(TinyNet, "forward", slow_per_size)
    plan = tiny_plan(samples=200, epochs=2, batch=16)      # 150 training samples: 9 × 16 + 6
    f = run(plan, tmp_path, quiet=True)
    assert seen == {16, 6}
    assert f["warmup_s"] >= 0.8 and f["first_step_s"] >= 0.4
    assert f["samples_per_s"] > f["global_step"] * 16 / 0.4


def test_metrics_are_inverted_and_converted_to_the_declared_unit(tmp_path):
    a = run(tiny_plan(epochs=1, metrics=[Metric("mae", "rho", "rho", "fm^-3", 1.0)]), tmp_path / "a", quiet=True)
    # the same metric reported in nm^-3: 1 fm^-3 = 1e18 nm^-3
    b = run(tiny_plan(epochs=1, metrics=[Metric("mae", "rho", "rho", "nm^-3", 1e18)]), tmp_path / "b", quiet=True)
    assert b["test"]["test.mae_rho"] == pytest.approx(a["test"]["test.mae_rho"] * 1e18, rel=1e-9)
    # de-normalised: densities are <= 0.16 fm^-3, errors of a barely trained net are well below 1
    assert 1e-5 < a["test"]["test.mae_rho"] < 0.16


def test_nonfinite_loss_stops_with_E0607_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def poisoned(out, batch):
        total, terms = mse_loss(out, batch)
        calls["n"] += 1
        if calls["n"] == 30:  # during epoch 3 of 12 batches per epoch (eval calls count too)
            total = total * float("nan")
        return total, terms

    plan = tiny_plan(epochs=5)
    plan.loss = poisoned
    with pytest.raises(BkError) as e:
        run(plan, tmp_path, quiet=True)
    assert e.value.code == "E0607" and "nan" in e.value.diagnostic.message.lower()
    ck = load_checkpoint(tmp_path / "checkpoints/last.safetensors")
    assert ck.state["epoch"] >= 1 and all(torch.isfinite(v).all() for v in ck.weights.values())
    f = json.loads((tmp_path / "final.json").read_text())
    assert f["status"].startswith("stopped")


class _Crash(Exception):
    pass


@pytest.mark.parametrize("every,crash_at", [(None, 17), (5, 17)])
def test_resume_after_a_crash_ends_at_the_same_weights(tmp_path, every, crash_at):
    """A crash (without cleanup) mid-epoch, then --resume: bit-identical final weights.
    every=None resumes from the end of the last epoch; every=5 from a mid-epoch checkpoint."""
    ref = run(tiny_plan(epochs=3, checkpoint_every=every), tmp_path / "ref", quiet=True)
    steps = {"n": 0}

    def crashing(out, batch):
        if torch.is_grad_enabled():
            steps["n"] += 1
            if steps["n"] == crash_at:
                raise _Crash()
        return mse_loss(out, batch)

    plan = tiny_plan(epochs=3, checkpoint_every=every)
    plan.loss = crashing
    with pytest.raises(_Crash):
        run(plan, tmp_path / "run", quiet=True)
    torch.manual_seed(1234)  # the resumed process starts from unrelated RNG state
    res = run(tiny_plan(epochs=3, checkpoint_every=every), tmp_path / "run", resume=True, quiet=True)
    a = load_file(str(tmp_path / "ref/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "run/checkpoints/last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert res["test"] == ref["test"]
    recs = [json.loads(l) for l in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs if r["event"] == "epoch"] == [1, 2, 3]  # replayed epochs not duplicated


def test_resume_continues_to_more_epochs(tmp_path):
    run(tiny_plan(epochs=4, schedule=constant()), tmp_path / "ref", quiet=True)
    run(tiny_plan(epochs=2, schedule=constant()), tmp_path / "run", quiet=True)
    run(tiny_plan(epochs=4, schedule=constant()), tmp_path / "run", resume=True, quiet=True)
    a = load_file(str(tmp_path / "ref/checkpoints/last.safetensors"))
    b = load_file(str(tmp_path / "run/checkpoints/last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_steps_instead_of_epochs_and_bad_config(tmp_path):
    f = run(tiny_plan(epochs=None, steps=20), tmp_path / "s", quiet=True)
    assert f["global_step"] == 20
    with pytest.raises(BkError) as e:
        run(tiny_plan(epochs=None), tmp_path / "n", quiet=True)
    assert e.value.code == "E0609"
    if not torch.cuda.is_available():
        with pytest.raises(BkError) as e:
            run(tiny_plan(device="cuda"), tmp_path / "c", quiet=True)
        assert e.value.code == "E0801"


def test_checkpoint_interval_writes_fewer_checkpoints_and_the_same_best(tmp_path):
    """With ``checkpoint_interval`` the end-of-epoch checkpoints are skipped until the interval has
    passed; the best weights are held in memory and written before the next `last` and at the end, so
    the test metrics and the best checkpoint equal those of a run that writes every epoch."""
    ref = run(tiny_plan(epochs=4), tmp_path / "ref", quiet=True)
    plan = tiny_plan(epochs=4)
    plan.config.checkpoint_interval = 1e6
    res = run(plan, tmp_path / "iv", quiet=True)
    assert res["best"] == ref["best"] and res["test"] == ref["test"] and res["test_weights"] == "best"
    a = load_checkpoint(tmp_path / "ref/checkpoints/best.safetensors")
    b = load_checkpoint(tmp_path / "iv/checkpoints/best.safetensors")
    assert a.state["global_step"] == b.state["global_step"]
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    last = load_checkpoint(tmp_path / "iv/checkpoints/last.safetensors")
    assert last.state["epoch"] == 4            # the final epoch always writes `last`
    recs = [json.loads(l) for l in (tmp_path / "iv/metrics.jsonl").read_text().splitlines()]
    assert sum(1 for r in recs if r.get("best")) >= 1


def test_checkpoint_interval_keeps_the_held_back_best_when_a_nan_stops_the_run(tmp_path):
    """A best held in memory by ``checkpoint_interval`` is written even when E0607 stops the run."""
    calls = {"n": 0}

    def poisoned(out, batch):
        total, terms = mse_loss(out, batch)
        calls["n"] += 1
        if calls["n"] == 30:  # during epoch 3, after two improving epochs were held back
            total = total * float("nan")
        return total, terms

    plan = tiny_plan(epochs=5)
    plan.loss = poisoned
    plan.config.checkpoint_interval = 1e6
    with pytest.raises(BkError) as e:
        run(plan, tmp_path, quiet=True)
    assert e.value.code == "E0607"
    recs = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    last_best = max(r["global_step"] for r in recs if r.get("best"))
    best = load_checkpoint(tmp_path / "checkpoints/best.safetensors")
    assert best.state["global_step"] == last_best > 12      # the epoch-2 best, held back, not epoch 1's
    assert all(torch.isfinite(v).all() for v in best.weights.values())
