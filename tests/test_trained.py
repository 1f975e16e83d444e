"""bkdsl.load_run: a trained run as a model in physical units (normalisation folded in)."""

import json
import shutil

import pytest
import torch

import bkdsl
from bkdsl.diagnostics import BkError
from bkdsl.train.data import split_indices
from bkdsl.train.plan import plan_from_compiled
from tests.tiny_run import train_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("trained"))


def test_load_run_reproduces_the_test_metric_in_physical_units(run):
    """The MAE of load_run's ρ on the test split (computed here from raw fields in fm^-3) is the runner's
    test.mae_rho: inputs and outputs are physical, the normaliser is folded in."""
    m = bkdsl.load_run(run)
    assert m.units == {"inputs": {"shape": "fm"}, "outputs": {"rho": "fm^-3", "A": None}}
    assert not m.training and set(m.normalized) == {"A", "rho", "shape"}
    rec = json.loads((run / "run.json").read_text())
    c = bkdsl.compile_file(str(run.parent / "tiny_regression.bk"), overrides=rec["overrides"])
    plan = plan_from_compiled(c, spec_path=str(run.parent / "tiny_regression.bk"), overrides=rec["overrides"])
    ds, dp = plan.data.dataset, plan.data
    test = split_indices(len(ds), dp.split, dp.seed, ds.groups)["test"]
    with torch.no_grad():
        pred = m(shape=ds.fields["shape"][test])
    mae = float((pred["rho"].double() - ds.fields["rho"][test].double()).abs().mean())
    final = json.loads((run / "final.json").read_text())
    assert mae == pytest.approx(final["test"]["test.mae_rho"], rel=1e-5)
    assert float(ds.fields["rho"][test].max()) > 0.1                      # physical fm^-3, not minmax [0, 1]


def test_load_run_uses_the_copy_when_the_spec_changed_and_refuses_when_both_did(run, tmp_path):
    dst = tmp_path / "moved"
    shutil.copytree(run.parent, dst)
    rd = dst / "run"
    rec = json.loads((rd / "run.json").read_text())
    rec["spec"], rec["spec_abs"] = str(dst / "tiny_regression.bk"), str(dst / "tiny_regression.bk")
    (rd / "run.json").write_text(json.dumps(rec))
    ref = bkdsl.load_run(run)(shape=torch.tensor([[5.0, 0.5]]))["rho"]
    spec = dst / "tiny_regression.bk"
    spec.write_text(spec.read_text().replace("width = 64", "width = 32"))  # a different network
    assert torch.equal(bkdsl.load_run(rd)(shape=torch.tensor([[5.0, 0.5]]))["rho"], ref)  # from run/spec/
    copy = rd / "spec" / "tiny_regression.bk"
    copy.write_text(copy.read_text().replace("width = 64", "width = 32"))
    with pytest.raises(BkError) as e:
        bkdsl.load_run(rd)
    assert e.value.code == "E0622" and "model.kwargs.width: 64 → 32" in str(e.value.diagnostic.message)


def test_load_run_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(BkError) as e:
        bkdsl.load_run(tmp_path)
    assert e.value.code == "E0622"
