"""The AdS components: bad parameters are coded diagnostics at check time; a data set the generator
cannot make (E0640) or a metric that is not finite on the layer grid (E0641) is refused at load time;
the data source reports the true metric's loss (the floor)."""

import math
from pathlib import Path

import pytest
import torch

from bkdsl.api import check_file, compile_file
from bkdsl.diagnostics import BkError
from bkdsl.nn import ads as ads_nn
from bkdsl.train.plan import plan_from_compiled

SPEC = Path(__file__).resolve().parents[2] / "specs" / "ads_bulk.bk"
HORIZON = SPEC.with_name("ads_horizon.bk")


@pytest.mark.parametrize("key, value, needle", [
    ("data.metric", "reissner_nordstrom_ads(d = 3, q = 2.0)", "extremal"),
    ("data.metric", "ads_schwarzschild(d = 1)", "integer ≥ 2"),
    ("data.metric", "flat(d = 3)", "unknown bulk metric"),
    ("data.metric", "deformed_bh(width = 0.0)", "width"),
    ("data.noise", "-0.1", "noise"),
    ("data.eta_fin", "1.5", "eta_fin"),
    ("data.grid", '"chebyshev"', "grid"),
    ("data.phi_h_range", "[2.0, 1.0]", "phi_h_range"),
])
def test_bad_parameters_are_coded_diagnostics(key, value, needle):
    errs = [d for d in check_file(SPEC, {key: value}) if d.is_error]
    assert [d.code for d in errs] == ["E0201"], errs
    assert needle in errs[0].message and errs[0].span.line == 34 and errs[0].help


def test_both_specs_check():
    assert not [d for d in check_file(SPEC) if d.is_error]
    assert not [d for d in check_file(HORIZON) if d.is_error]


def test_a_band_outside_the_box_is_E0640():
    over = {"data.phi_h_range": "[5.0, 6.0]", "data.samples": "4", "data.substeps": "20"}
    c = compile_file(HORIZON, over)
    with pytest.raises(BkError) as e:
        plan_from_compiled(c, "ads_horizon", overrides=over)
    d = e.value.diagnostic
    assert d.code == "E0640" and "regular" in d.message and d.span is not None and d.help


def test_a_metric_that_is_nan_everywhere_is_refused():
    ads_nn.METRICS["_nan_metric"] = lambda: (lambda eta: torch.full_like(eta, math.nan))
    try:
        over = {"data.metric": "_nan_metric()", "data.samples": "8", "data.substeps": "10"}
        c = compile_file(SPEC, over)
        with pytest.raises(BkError) as e:
            plan_from_compiled(c, "ads", overrides=over)
        assert e.value.diagnostic.code == "E0640"  # every solve is NaN: no sample survives
    finally:
        del ads_nn.METRICS["_nan_metric"]


def test_the_data_source_reports_the_true_metric_floor():
    over = {"data.samples": "300", "data.substeps": "400"}
    plan = plan_from_compiled(compile_file(SPEC, over), "ads", overrides=over)
    floor = plan.data.dataset.meta["true_metric_loss"]
    assert 0.7e-4 < floor < 1.4e-4  # 1 % noise on asinh F: 1e-4, plus a small discretisation part


def test_a_metric_not_finite_at_a_layer_midpoint_is_E0641():
    """Finite wherever the generator integrates, NaN at one of the network's layer midpoints: the h field
    (what rel_l2(h) compares with) would be NaN, so the source refuses it."""
    mid = float(ads_nn.layer_midpoints(ads_nn.Bulk(), 20, "log")[5])

    def spiky():
        base = ads_nn.ads_schwarzschild(3)
        return lambda eta: torch.where((eta - mid).abs() < 1e-12, torch.full_like(eta, math.nan), base(eta))

    ads_nn.METRICS["_spiky"] = spiky
    try:
        over = {"data.metric": "_spiky()", "data.samples": "8", "data.substeps": "10"}
        with pytest.raises(BkError) as e:
            plan_from_compiled(compile_file(SPEC, over), "ads", overrides=over)
        assert e.value.diagnostic.code == "E0641"
    finally:
        del ads_nn.METRICS["_spiky"]


@pytest.mark.parametrize("key, value, needle", [
    ("data.grid", '"uniform"', 'grid = \'log\' in the model, \'uniform\' in the data'),
    ("data.eta_fin", "0.2", "eta_fin = 0.1 in the model, 0.2 in the data"),
    ("data.m2", "-2.0", "m2 = -1.0 in the model, -2.0 in the data"),
])
def test_data_and_network_on_different_grids_are_E0642(key, value, needle):
    """Same shapes, different η: rel_l2(h) would compare the metric at other points — refused at check."""
    errs = [d for d in check_file(SPEC, {key: value}) if d.is_error]
    assert {d.code for d in errs} == {"E0642"}, errs
    assert needle in errs[0].message and errs[0].help and errs[0].span is not None


def test_the_grid_agreement_looks_into_nested_blocks():
    text = SPEC.read_text().replace("model adsnet(layers: int = 20) {",
                                    "block inner(layers: int) {").replace(
        "train ads {", "model adsnet(layers: int = 20) {\n  input x : [B, 2]\n  r = inner(x, layers)\n"
        "  output F = r.F\n  output h = r.h\n}\n\ntrain ads {", 1)
    from bkdsl.api import check_source
    ok = [d for d in check_source(text, str(SPEC)) if d.is_error]
    bad = [d for d in check_source(text, str(SPEC), {"data.grid": '"uniform"'}) if d.is_error]
    assert not ok, ok
    assert {d.code for d in bad} == {"E0642"}, bad
