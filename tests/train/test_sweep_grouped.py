"""The grouped form of R runs (bkdsl/train/grouped.py) and batched training through it, against the same
runs one at a time, on the ²³⁶U multi-task model of specs/u236_mtl.bk at a tiny width (ResNet18 encoder
and decoder: convolutions, batch norm, nearest upsampling, reshape, linear layers).

Tolerance: in float64 the grouped module is the per-run modules to round-off (1e-12); trained in float32
through the runner (grouped convolution and batch norm over R·C channels sum in another order, Adam
normalises that round-off into its steps) the test metrics agree to 5e-4 relative (measured ≤ 1e-4 after
4 steps at lr 3e-3), SGD runs' weights to 1e-3 (measured ≤ 6.3e-5), while two runs of one group differ by
more than 1e-2 in their metrics and a run with another run's α is 0.18 away in its weights — an error in
the method
(a run reading another run's channels, batch-norm statistics over the wrong channels, another run's α or
data order) moves them by far more.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
import torch
import torch.fx as fx
from safetensors.torch import load_file

import bkdsl
from bkdsl.diagnostics import BkError
from bkdsl.train.batched import BatchedGroup, auto_strategy, grouping_refusal, run_group
from bkdsl.train.data import Dataset, FieldInfo
from bkdsl.train.grouped import GroupedLinear, GroupedModels, GroupingRefused, group_modules
from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan, run
from bkdsl.train.metrics import Metric

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def _compiled(d_z: int):
    return bkdsl.compile_file(str(ROOT / "specs" / "u236_mtl.bk"),
                              overrides={"train.model": f"mtl(d_z = {d_z}, width = 4, hidden = 8)"})


def mtl(d_z: int, seed: int) -> torch.nn.Module:
    c = _compiled(d_z)
    torch.manual_seed(seed)
    return c.build_model(c.train_block().get("model"))


def _runs(d_z: int = 2, n: int = 3, dtype=torch.float64) -> list[torch.nn.Module]:
    return [mtl(d_z, s).to(dtype) for s in range(n)]


def _loss(out: dict, x: torch.Tensor) -> torch.Tensor:
    return out["rho"].square().mean() + (out["E"] - 1).square().mean() + out["z"].square().mean()


# -- the grouped module ------------------------------------------------------------------------------
def test_the_grouped_module_computes_each_run_exactly():
    models = _runs()
    ref = [copy.deepcopy(m) for m in models]
    gm = GroupedModels(models)
    stem = gm.module.get_submodule("latent.x.conv2d")
    assert stem.groups == 3 and stem.in_channels == 3 and stem.out_channels == 12     # one conv for 3 runs
    assert isinstance(gm.module.get_submodule("rho_1.linear"), GroupedLinear)
    xs = [torch.rand(4, 1, 48, 128, dtype=torch.float64) for _ in range(3)]
    out = gm({"rho": gm.stack_inputs(xs)})
    sum(_loss({k: v[r] for k, v in out.items()}, xs[r]) for r in range(3)).backward()
    gm.grads_to_models()
    for r in range(3):
        alone = ref[r](rho=xs[r])
        _loss(alone, xs[r]).backward()
        for k in ("z", "E", "rho"):
            assert out[k][r].shape == alone[k].shape
            torch.testing.assert_close(out[k][r], alone[k], rtol=1e-12, atol=1e-12)
        for (n, p), q in zip(models[r].named_parameters(), ref[r].parameters()):
            assert float((p.grad - q.grad).norm() / q.grad.norm()) < 1e-10, n
        for (n, b), c in zip(models[r].named_buffers(), ref[r].buffers()):    # batch-norm statistics per run
            torch.testing.assert_close(b, c, rtol=1e-12, atol=1e-12)


def test_the_runs_modules_alias_the_grouped_storage():
    models = _runs(n=2)
    gm = GroupedModels(models)
    w = gm.P["latent.x.conv2d.weight"]
    assert models[1].latent.x.conv2d.weight.data_ptr() == w[w.shape[0] // 2:].data_ptr()
    with torch.no_grad():
        models[1].latent.x.conv2d.weight.add_(1.0)        # a per-run optimizer step writes the group
    assert torch.equal(w[w.shape[0] // 2:], models[1].latent.x.conv2d.weight)
    # and loading a checkpoint into a run writes its slice only
    sd = copy.deepcopy(models[0].state_dict())
    models[1].load_state_dict(sd)
    assert torch.equal(w[: w.shape[0] // 2], w[w.shape[0] // 2:])


def test_one_adam_over_the_grouped_parameters_equals_one_adam_per_run_channels_last():
    """Adam is elementwise: one (fused) Adam over the grouped parameters [R·n, …] is R Adams, each over its
    slice; NHWC weights and inputs change the layout only."""
    models = _runs()
    ref = [copy.deepcopy(m) for m in models]
    gm = GroupedModels(models, channels_last=True)
    w = gm.P["latent.basic_block.conv2d.weight"]
    assert w.is_contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(gm.parameters(), lr=1e-2, fused=True)
    ref_opts = [torch.optim.Adam(m.parameters(), lr=1e-2, foreach=False) for m in ref]
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        xs = [torch.rand(4, 1, 48, 128, generator=g, dtype=torch.float64) for _ in range(3)]
        out = gm({"rho": gm.stack_inputs(xs)})
        opt.zero_grad()
        sum(_loss({k: v[r] for k, v in out.items()}, xs[r]) for r in range(3)).backward()
        opt.step()
        for r in range(3):
            ref_opts[r].zero_grad()
            _loss(ref[r](rho=xs[r]), xs[r]).backward()
            ref_opts[r].step()
    for r in range(3):
        for (n, p), q in zip(models[r].named_parameters(), ref[r].parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-9, msg=n)
        for (n, b), c in zip(models[r].named_buffers(), ref[r].buffers()):
            torch.testing.assert_close(b, c, rtol=0, atol=1e-9, msg=n)
    # each run's own module (NHWC aliases of the grouped storage) evaluates as the run alone
    x = torch.rand(2, 1, 48, 128, generator=g, dtype=torch.float64)
    for r in range(3):
        models[r].eval(), ref[r].eval()
        with torch.no_grad():
            torch.testing.assert_close(models[r](rho=x)["rho"], ref[r](rho=x)["rho"], rtol=1e-9, atol=1e-9)


def test_runs_of_different_d_z_share_one_module_with_masked_padded_linear_layers():
    """d_z ∈ {1, 2, 3} in one grouped module: the linear layers that d_z sizes are padded to 3 under a mask;
    each run's outputs (z cut to its d_z), its Adam steps with weight decay and its weights are those of the
    run alone, and the padded weights stay exactly 0."""
    models = [mtl(d, s).double() for s, d in enumerate((1, 2, 3))]
    ref = [copy.deepcopy(m) for m in models]
    gm = GroupedModels(models)
    enc = gm.module.get_submodule("latent.linear")
    assert gm.ragged and enc.sizes == [(32, 1), (32, 2), (32, 3)]
    g = torch.Generator().manual_seed(0)
    gm.calibrate([{"rho": torch.rand(2, 1, 48, 128, generator=g, dtype=torch.float64)} for _ in range(3)])
    assert gm.out_sizes == {"z": [1, 2, 3]}
    opt = torch.optim.Adam(gm.parameters(), lr=1e-2, weight_decay=0.1)
    ref_opts = [torch.optim.Adam(m.parameters(), lr=1e-2, weight_decay=0.1) for m in ref]
    for _ in range(3):
        xs = [torch.rand(4, 1, 48, 128, generator=g, dtype=torch.float64) for _ in range(3)]
        out = gm({"rho": gm.stack_inputs(xs)})
        per_run = [{k: gm.run_output(out, k, r) for k in out} for r in range(3)]
        assert [o["z"].shape[1] for o in per_run] == [1, 2, 3]
        opt.zero_grad()
        sum(_loss(o, x) for o, x in zip(per_run, xs)).backward()
        opt.step()
        for r in range(3):
            ref_opts[r].zero_grad()
            _loss(ref[r](rho=xs[r]), xs[r]).backward()
            ref_opts[r].step()
    for r in range(3):
        for (n, p), q in zip(models[r].named_parameters(), ref[r].parameters()):
            assert p.shape == q.shape
            torch.testing.assert_close(p, q, rtol=0, atol=1e-9, msg=n)
    w = enc.weight.view(3, 3, 32)
    assert float(w[0, 1:].abs().max()) == 0.0 and float(w[1, 2:].abs().max()) == 0.0


def test_the_calibration_refuses_a_grouped_form_that_computes_something_else(monkeypatch):
    from bkdsl.train import grouped as G

    monkeypatch.setattr(G, "grouped_reshape", lambda x, shape, runs: x.reshape(x.shape[0], runs * shape[0],
                                                                                    *shape[1:]).flip(1))
    gm = GroupedModels(_runs(n=2))
    with pytest.raises(GroupingRefused, match="differs from the run alone"):
        gm.calibrate([{"rho": torch.rand(2, 1, 48, 128, dtype=torch.float64)} for _ in range(2)])


def test_padding_overhead_counts_the_padded_linear_elements():
    from bkdsl.train.batched import linear_sizes, padding_overhead

    runs = [linear_sizes(mtl(d, 0)) for d in (1, 2, 3)]
    n = sum(k for _, k in runs)
    # latent.linear 32→d (pad 3·3·33 − (1+2+3)·33), E.dense.linear d→8 (3·8·4 − 8·(2+3+4)),
    # rho_1.linear d→768 (3·768·4 − 768·(2+3+4))
    extra = (9 * 33 - 6 * 33) + (96 - 72) + (3 * 768 * 4 - 768 * 9)
    assert padding_overhead(runs) == pytest.approx(extra / n)
    assert padding_overhead([runs[1], runs[1]]) == 0.0


# -- what has no grouped form ---------------------------------------------------------------------------
class _Softmax(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return {"p": torch.softmax(self.lin(x), dim=-1)}          # mixes the feature axis


class _Norm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.ln = torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)

    def forward(self, x):
        return {"y": self.ln(self.lin(x))}


class _Drop(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.drop = torch.nn.Linear(4, 3), torch.nn.Dropout(0.5)

    def forward(self, x):
        return {"y": self.drop(self.lin(x))}


class _Const(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("shift", torch.ones(3))

    def forward(self, x):
        return {"y": self.lin(x) + self.shift}                   # a per-run tensor broadcast over the runs


@pytest.mark.parametrize("cls, what", [(_Softmax, "softmax"), (_Norm, "LayerNorm"), (_Drop, "Dropout"),
                                       (_Const, "get_attr")])
def test_ops_that_mix_the_feature_axis_or_draw_random_numbers_are_refused(cls, what):
    m = fx.symbolic_trace(cls())
    with pytest.raises(GroupingRefused, match=what):
        group_modules([m, copy.deepcopy(m)])
    assert what in grouping_refusal(m)


def test_a_model_that_is_not_an_fx_graph_is_refused_and_auto_keeps_it_off_the_grouped_form():
    m = _Softmax()
    assert "not a compiled spec" in grouping_refusal(m)
    assert auto_strategy(m, "cpu")["strategy"] == "sequential"          # CPU: auto never batches
    assert auto_strategy(mtl(2, 0), "cpu")["strategy"] == "sequential"


def test_auto_trains_grouped_convolutional_models_one_at_a_time_on_cuda():
    """The H200 measured the grouped u236 grid at 0.79x one run alone (issue20.json): auto must not batch it."""
    choice = auto_strategy(mtl(2, 0), "cuda")      # a device object only: no CUDA needed to decide
    assert choice["strategy"] == "sequential" and "AUTO_GROUP_CONV" in choice["reason"]


def test_a_linear_layer_on_a_3d_input_is_refused_at_run_time():
    lin = GroupedLinear.from_runs([torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)])
    assert lin(torch.randn(5, 8)).shape == (5, 6)
    with pytest.raises(GroupingRefused, match="3-D input"):
        lin(torch.randn(5, 7, 8))


# -- batched training through the grouped form --------------------------------------------------------
def _dataset(n: int = 32) -> Dataset:
    g = torch.Generator().manual_seed(5)
    rho = torch.rand(n, 1, 48, 128, generator=g)
    E = rho.mean(dim=(1, 2, 3))[:, None] * 3 + 0.1 * torch.randn(n, 1, generator=g)
    info = {"rho": FieldInfo("rho", shape=(1, 48, 128), unit=None), "E": FieldInfo("E", shape=(1,), unit=None)}
    return Dataset({"rho": rho, "E": E}, info, meta={"source": "test"})


def _mtl_loss(alpha: float):
    def loss(out, batch):
        e = ((out["E"] - batch["E"]) ** 2).mean()
        r = ((out["rho"] - batch["rho"]) ** 2).mean()
        return e + alpha * r, {"mse_E": e, "mse_rho": r}
    return loss


def u236_plan(d_z: int, alpha: float, seed: int, optimizer: str = "adam", params: dict | None = None,
              epochs: int = 2) -> TrainPlan:
    data = DataPlan(_dataset(), [0.5, 0.25, 0.25], "minmax", seed=3, name="u")
    cfg = TrainConfig(batch=8, epochs=epochs, seed=seed, optimizer=optimizer, optimizer_params=params or {"lr": 3e-3},
                      device="cpu", metrics=[Metric("mae", "E", "E", None, 1.0)])
    c = _compiled(d_z)          # the runner seeds (cfg.seed) before it builds the model
    return TrainPlan("u236", lambda: c.build_model(c.train_block().get("model")), _mtl_loss(alpha), ["rho"], data, cfg)


def test_a_grouped_sweep_over_a_d_z_grid_equals_the_runs_one_at_a_time(tmp_path):
    """The thesis' grid in small: d_z ∈ {1, 2} × α; one grouped group per d_z (the runs differ in seed, α,
    optimizer and learning rate), against each run trained alone by the single-run runner. Weights are
    compared tightly for the SGD runs (a step linear in the gradient keeps round-off round-off); Adam's
    first steps are lr·sign(g), so a weight whose gradient is round-off (batch norm over channels that vary
    only through one latent scalar, d_z = 1) may step either way: its runs are compared by their test
    metrics, and Adam itself by test_one_adam_over_the_grouped_parameters_equals_one_adam_per_run_channels_last."""
    sgd = {"lr": 3e-2, "momentum": 0.9}
    grid = [(2, 0.1, 0, "adam", {"lr": 3e-3}), (2, 1.0, 1, "sgd", sgd), (3, 0.1, 2, "sgd", sgd),
            (3, 1.0, 3, "adam", {"lr": 1e-3})]
    seq = [run(u236_plan(*g), tmp_path / f"seq{i}", quiet=True) for i, g in enumerate(grid)]
    finals = []
    for d_z in (2, 3):
        idx = [i for i, g in enumerate(grid) if g[0] == d_z]
        grp = BatchedGroup([u236_plan(*grid[i]) for i in idx], [tmp_path / f"bat{i}" for i in idx], quiet=True,
                           strategy="grouped")
        finals += grp.run()
        assert grp.strategy == "grouped" and grp.errors == {}
        assert isinstance(grp.stack, GroupedModels)
    # all four in ONE grouped module, d_z padded under a mask: the same results
    grp = BatchedGroup([u236_plan(*g) for g in grid], [tmp_path / f"pad{i}" for i in range(4)], quiet=True)
    padded = grp.run()
    assert grp.strategy == "grouped" and grp.stack.ragged and grp.stack.out_sizes == {"z": [2, 2, 3, 3]}
    for a, b in zip(seq, padded):
        assert b["test"] == pytest.approx(a["test"], rel=5e-4, abs=1e-7)
    # the tolerance separates: two runs of one group differ by more than 1e-2 in some test metric
    for i, j in ((0, 1), (2, 3)):
        assert max(abs(seq[i]["test"][k] / seq[j]["test"][k] - 1) for k in seq[i]["test"]) > 1e-2
    for i, (a, b) in enumerate(zip(seq, finals)):
        assert a["status"] == b["status"] == "completed"
        assert b["test"] == pytest.approx(a["test"], rel=5e-4, abs=1e-7)
        assert b["best"]["epoch"] == a["best"]["epoch"]
        assert json.loads((tmp_path / f"bat{i}" / "final.json").read_text())["samples_per_s"] > 0
        if grid[i][3] != "sgd":
            continue
        for d in (f"bat{i}", f"pad{i}"):
            assert _max_weight_diff(tmp_path / f"seq{i}", tmp_path / d) < 1e-3, (i, d)
    # ... and it can refute: run 1 with run 0's α, alone, is far outside it (measured 0.18)
    wrong = grid[1][:1] + grid[0][1:2] + grid[1][2:]
    run(u236_plan(*wrong), tmp_path / "wrong", quiet=True)
    assert _max_weight_diff(tmp_path / "seq1", tmp_path / "wrong") > 1e-2


def _max_weight_diff(d1: Path, d2: Path) -> float:
    """max |w₁ − w₂| over the last checkpoints' parameters. Measured between a run alone and the same run
    grouped: 6.3e-5 and 5.5e-6 on weights of size 0.2 (the SGD runs; float32 round-off of the grouped
    convolution and batch norm, amplified by batch norm over 8 samples at width 4)."""
    w1 = load_file(str(d1 / "checkpoints" / "last.safetensors"))
    w2 = load_file(str(d2 / "checkpoints" / "last.safetensors"))
    assert w1.keys() == w2.keys()
    return max(float((w1[k].double() - w2[k].double()).abs().max()) for k in w1 if "running" not in k)


def test_forced_grouped_strategy_on_a_model_without_the_form_is_E0625(tmp_path):
    from tests.train.tiny import tiny_plan   # TinyNet: an nn.Module, not an fx graph

    with pytest.raises(BkError) as e:
        run_group([tiny_plan(samples=96, epochs=1), tiny_plan(samples=96, epochs=1, lr=1e-2)],
                  [tmp_path / "a", tmp_path / "b"], quiet=True, strategy="grouped")
    assert e.value.code == "E0625" and "not a compiled spec" in e.value.diagnostic.message
    assert not (tmp_path / "a" / "checkpoints").exists()


def test_an_interrupted_padded_group_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Two runs of different d_z in one padded module, interrupted in epoch 2 and resumed from their own
    checkpoints (the per-run weights and optimizer states load into their slices of the grouped storage)."""
    from bkdsl.train import batched as Bt

    grid = [(2, 0.1, 0, "adam", {"lr": 3e-3}), (3, 1.0, 1, "sgd", {"lr": 3e-2, "momentum": 0.9})]

    def group(prefix: str, resume: bool = False):
        return BatchedGroup([u236_plan(*g, epochs=2) for g in grid], [tmp_path / f"{prefix}{i}" for i in range(2)],
                            resume=resume, quiet=True)
    whole = group("w").run()
    real = Bt.apply_all

    def apply_all(augs, raw, info, seed, epoch, b):
        if epoch == 1 and b == 0:
            raise KeyboardInterrupt
        return real(augs, raw, info, seed, epoch, b)
    with monkeypatch.context() as m:
        m.setattr(Bt, "apply_all", apply_all)
        with pytest.raises(KeyboardInterrupt):
            group("c").run()
    assert (tmp_path / "c1" / "checkpoints" / "last.safetensors").exists()
    assert not (tmp_path / "c1" / "final.json").exists()
    g = group("c", resume=True)
    resumed = g.run()
    assert g.strategy == "grouped" and g.stack.ragged
    for a, b in zip(whole, resumed):
        assert b["status"] == "completed"
        assert b["test"] == pytest.approx(a["test"], rel=1e-6, abs=1e-9)
