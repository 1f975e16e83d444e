"""The AdS data generators: the outward horizon sampler of the paper's classification data, the split."""

import pytest
import torch

from bkdsl.nn.ads import Bulk, metric
from bkdsl.nn.ads_data import AdSDataError, generate_response, horizon_samples, inward_residual, split


@pytest.mark.parametrize("name, kw", [("ads_schwarzschild", {"d": 3}), ("reissner_nordstrom_ads", {"d": 3, "q": 1.5})])
def test_horizon_sampler_reaches_the_paper_scale_with_correct_labels(name, kw):
    """1000 regular + 1000 irregular samples (uniform box draws find a regular one in ~4000): every label
    agrees with the inward solve from its boundary point, and every point lies in the box."""
    h = metric(name, **kw)
    d = horizon_samples(h, 2000, seed=0, substeps=300)
    reg = d["y"] == 0
    assert int(reg.sum()) == 1000 and int((~reg).sum()) == 1000
    assert (d["F"][reg].abs() < 0.1).all() and (d["F"][~reg].abs() >= 0.1).all()
    assert torch.equal(d["F"], inward_residual(h, d["x"], Bulk(), 300))
    x = d["x"]
    assert (x[:, 0] >= 0).all() and (x[:, 0] <= 1.5).all() and (x[:, 1].abs() <= 0.2).all()
    # the regular samples spread along the band, not one point
    assert float(x[reg, 0].max() - x[reg, 0].min()) > 0.8


def test_inward_rejection_alone_is_too_rare():
    """Why the outward sampler: box draws integrated inward are regular well under 1 % of the time."""
    d = generate_response(metric("ads_schwarzschild"), 2000, seed=0, substeps=300)
    assert float((d["F"].abs() < 0.1).double().mean()) < 0.01


def test_horizon_sampler_refuses_a_band_outside_the_box():
    with pytest.raises(AdSDataError, match="regular"):
        horizon_samples(metric("ads_schwarzschild"), 20, seed=0, substeps=100, phi_h_range=(5.0, 6.0), max_rounds=2)
    with pytest.raises(ValueError):
        horizon_samples(metric("ads_schwarzschild"), 1)


def test_generate_response_labels_via_horizon_mode_and_rejects_unknown():
    d = generate_response(metric("ads_schwarzschild"), 40, label="horizon", seed=0, substeps=200)
    assert d["y"].sum() == 20 and ((d["F"].abs() < 0.1) == (d["y"] == 0)).all()
    with pytest.raises(ValueError):
        generate_response(metric("ads_schwarzschild"), 40, label="regression")


def test_split_is_disjoint_and_complete():
    d = {"x": torch.arange(10.0).unsqueeze(1), "y": torch.arange(10.0)}
    a, b = split(d, (0.8, 0.2), seed=1)
    assert len(a["y"]) == 8 and len(b["y"]) == 2
    assert sorted(torch.cat([a["y"], b["y"]]).tolist()) == list(range(10))
    assert torch.equal(a["x"][:, 0], a["y"])
