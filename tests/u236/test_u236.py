"""The ²³⁶U multi-task model (issue 5): specs compile, the unit check, the eager ≡ compiled architecture,
the parity-symmetry metrics (thesis eqs. 4.15–4.16), model plots and the speed keys on a small run.

Runs use a tiny width (`width = 4`) and synthetic stand-in data (tests/u236/synthetic.py): mechanics
only, no physics numbers."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

import bkdsl
from bkdsl.diagnostics import BkErrors

ROOT = Path(__file__).resolve().parents[2]
SPECS = ["u236_mtl", "u236_energy", "u236_autoencoder", "u236_multipole"]


def _bench():
    spec = importlib.util.spec_from_file_location("u236_throughput", ROOT / "bench" / "u236_throughput.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["u236_throughput"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", SPECS)
def test_specs_check(name):
    diags = bkdsl.check_file(ROOT / "specs" / f"{name}.bk")
    assert [d for d in diags if d.severity == "error"] == []


def test_loss_without_alpha_is_a_unit_error():
    text = (ROOT / "specs" / "u236_mtl.bk").read_text().replace(
        "loss mtl_loss(alpha) = mse(E) + alpha * l2_integral", "loss mtl_loss(alpha) = mse(E) + l2_integral")
    diags = bkdsl.check_source(text, name=str(ROOT / "specs" / "u236_mtl_noalpha.bk"))
    errs = [d for d in diags if d.code == "E0203"]
    assert errs, [str(d) for d in diags]
    msg = " ".join(str(getattr(d, "message", d)) for d in errs)
    assert "fm" in msg and "3" in msg


def test_shapes_and_even_kernel_option():
    c = bkdsl.compile_file(ROOT / "specs" / "u236_mtl.bk", overrides={
        "train.model": "mtl(d_z = 3, width = 4, stem_kernel = 8, kernel = 4, skip_kernel = 2)"})
    m = c.build_model(c.train_block().get("model")).eval()
    x = torch.rand(2, 1, 48, 128)
    with torch.no_grad():
        out = m(rho=x)
    assert out["z"].shape == (2, 3) and out["E"].shape == (2, 1) and out["rho"].shape == (2, 1, 48, 128)
    convs = [mod for mod in m.latent.modules() if isinstance(mod, torch.nn.Conv2d) and mod.stride == (2, 2)]
    assert sorted({mod.kernel_size[0] for mod in convs}) == [2, 4, 8]


def test_eager_and_compiled_are_the_same_architecture():
    b = _bench()
    torch.manual_seed(0)
    eager = b.EagerMTL(2)
    ours = b.bkdsl_model(2)
    assert b.n_params(eager) == b.n_params(ours) == 24_781_988
    b.copy_weights(eager, ours)
    eager.eval(), ours.eval()
    x = torch.rand(2, 1, 48, 128)
    with torch.no_grad():
        a, o = eager(x), ours(rho=x)
    for k in ("z", "E", "rho"):
        torch.testing.assert_close(a[k], o[k])


def _patched_source(monkeypatch, n=64):
    from bkdsl.components import data_sources as T
    from tests.u236 import synthetic

    monkeypatch.setattr(T.NuclearDensitiesSource, "load",
                        lambda self, seed, base_dir=None: T.name_grid_axes(synthetic.make(n, seed)))


def _run(tmp_path, monkeypatch, spec, model, extra=None, n=64):
    from bkdsl.train.loop import run
    from bkdsl.train.plan import plan_from_compiled

    _patched_source(monkeypatch, n)
    ov = {"train.epochs": "1", "data.samples": str(n), "train.model": model, "train.batch": "16", **(extra or {})}
    c = bkdsl.compile_file(ROOT / "specs" / f"{spec}.bk", overrides=ov)
    plan = plan_from_compiled(c, spec_path=str(ROOT / "specs" / f"{spec}.bk"), overrides=ov, device="cpu")
    return plan, run(plan, tmp_path / spec, quiet=True)


def test_mtl_run_reports_parity_metrics_and_model_plots(tmp_path, monkeypatch):
    plan, final = _run(tmp_path, monkeypatch, "u236_mtl", "mtl(d_z = 2, width = 4)",
                       {"train.time_limit": "600"})
    t = final["test"]
    for k in ("test.mae_E", "test.l1_integral_rho", "test.parity_mae_E", "test.parity_l1_integral_rho"):
        assert k in t and math.isfinite(t[k]), k
    assert final["units"]["parity_mae_E"] == "MeV"
    assert final["speed"]["channels_last"] is True
    plots = tmp_path / "u236_mtl" / "plots"
    assert (plots / "latent.png").exists() and (plots / "decode_line.png").exists()


def test_multipole_run(tmp_path, monkeypatch):
    _, final = _run(tmp_path, monkeypatch, "u236_multipole", "multipole(hidden = 8)")
    assert math.isfinite(final["test"]["test.mae_E"]) and math.isfinite(final["test"]["test.parity_mae_E"])


class _Toy(torch.nn.Module):
    """E = Σ ρ·wz (wz odd or even in z), ρ_out = ρ or ρ shifted along z."""

    def __init__(self, odd: bool, shift: bool):
        super().__init__()
        z = torch.linspace(-1, 1, 8)
        self.register_buffer("wz", z if odd else z * z)
        self.shift = shift
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, rho):
        E = (rho * self.wz).flatten(1).sum(1, keepdim=True) + self.dummy
        out = torch.roll(rho, 1, dims=3) if self.shift else rho
        return {"E": E, "rho": out + 0 * self.dummy}


def _toy_trainer(odd, shift):
    from bkdsl.train.data import Dataset, FieldInfo
    from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan, Trainer
    from bkdsl.train.metrics import ParityMetric

    g = torch.Generator().manual_seed(0)
    rho = torch.rand(6, 1, 3, 8, generator=g)
    E = torch.rand(6, 1, generator=g)
    ds = Dataset({"rho": rho, "E": E}, {"rho": FieldInfo("rho", shape=(1, 3, 8), axes=("c", "r", "z")),
                                        "E": FieldInfo("E", shape=(1,), unit="MeV")})
    w = torch.ones(3, 8)
    term = lambda p, q: ((p - q).abs() * w).flatten(1).sum(1).mean()  # noqa: E731
    mets = [ParityMetric("parity_mae", "E", "z", "MeV"), ParityMetric("parity_l1_integral", "rho", 3, None, term=term)]
    cfg = TrainConfig(batch=4, epochs=1, metrics=mets, device="cpu")
    loss = lambda out, b: (((out["E"] - b["E"]) ** 2).mean(), {})  # noqa: E731
    plan = TrainPlan("toy", lambda: _Toy(odd, shift), loss, ["rho"], DataPlan(ds, [1.0]), cfg)
    tr = Trainer(plan, "/nonexistent")
    tr.device = torch.device("cpu")
    tr.dist = type("D", (), {"enabled": False, "rank": 0, "world": 1, "is_main": True})()
    tr._prepare_data()
    tr.raw_model = _Toy(odd, shift)
    return tr, rho, E


@pytest.mark.parametrize("odd,shift", [(False, False), (True, False), (False, True)])
def test_parity_metrics_by_hand(odd, shift):
    tr, rho, _ = _toy_trainer(odd, shift)
    res = tr.evaluate("train")
    m = tr.raw_model
    with torch.no_grad():
        a, b = m(rho), m(rho.flip(3))
    want_E = float((a["E"] - b["E"]).abs().mean())
    want_rho = float((a["rho"] - b["rho"].flip(3)).abs().flatten(1).sum(1).mean())
    assert res["train.parity_mae_E"] == pytest.approx(want_E, abs=1e-6)
    assert res["train.parity_l1_integral_rho"] == pytest.approx(want_rho, abs=1e-5)
    if not odd:
        assert res["train.parity_mae_E"] < 1e-6          # an even weight: E is exactly parity invariant
    else:
        assert res["train.parity_mae_E"] > 1e-3
    if not shift:
        assert res["train.parity_l1_integral_rho"] < 1e-6  # identity: exactly equivariant
    else:
        assert res["train.parity_l1_integral_rho"] > 1e-3


def test_reflect_negates_odd_fields():
    from bkdsl.train.data import FieldInfo
    from bkdsl.train.metrics import reflect

    b = {"Q20": torch.tensor([[1.0]]), "Q30": torch.tensor([[2.0]]), "rho": torch.arange(4.0).reshape(1, 1, 1, 4)}
    info = {"Q20": FieldInfo("Q20"), "Q30": FieldInfo("Q30", odd_under=("z",)),
            "rho": FieldInfo("rho", shape=(1, 1, 4), axes=("c", "r", "z"))}
    r = reflect(b, "z", info)
    assert float(r["Q20"]) == 1.0 and float(r["Q30"]) == -2.0
    assert r["rho"].flatten().tolist() == [3.0, 2.0, 1.0, 0.0]


def test_subgraph_decoder_matches_model():
    from bkdsl.train.plots import subgraph

    c = bkdsl.compile_file(ROOT / "specs" / "u236_mtl.bk", overrides={"train.model": "mtl(d_z = 2, width = 4)"})
    m = c.build_model(c.train_block().get("model")).eval()
    dec = subgraph(m, "z", "rho")
    x = torch.rand(3, 1, 48, 128)
    with torch.no_grad():
        out = m(rho=x)
        torch.testing.assert_close(dec(out["z"]), out["rho"])
    with pytest.raises(ValueError):
        subgraph(m, "E", "rho")


def test_bad_speed_keys_are_diagnostics(monkeypatch):
    from bkdsl.diagnostics import BkError
    from bkdsl.train.plan import plan_from_compiled

    _patched_source(monkeypatch, 32)
    from bkdsl.diagnostics import BkErrors

    for key, val in (("train.compile", '"fast"'), ("train.channels_last", "3"), ("train.time_limit", "-1")):
        with pytest.raises((BkError, BkErrors)):  # refused by `check` now, before a plan is made
            plan_from_compiled(bkdsl.compile_file(ROOT / "specs" / "u236_multipole.bk", overrides={key: val}))


def test_energy_baseline_output_is_not_dead_at_initialisation(tmp_path, monkeypatch):
    """The thesis' E[ρ] net ended in a ReLU, which was dead at initialisation (every output ≤ 0, no
    gradient) in the 2026-12-01 H200 run: its training loss never moved. The spec's output is linear
    now; at the real width and seed the loss must change from the first epoch to the second."""
    _, final = _run(tmp_path, monkeypatch, "u236_energy", "energy(width = 64)", {"train.epochs": "2"}, n=32)
    recs = [json.loads(l) for l in (tmp_path / "u236_energy" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train.loss"] for r in recs if r["event"] == "epoch"]
    assert len(losses) == 2 and abs(losses[1] - losses[0]) > 1e-3 * losses[0], losses
