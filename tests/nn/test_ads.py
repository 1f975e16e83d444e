"""The AdS/CFT network: physics of the data, and recovery of every registered metric."""

import pytest
import torch

from bkdsl.nn.ads import (METRICS, AdSNetwork, Bulk, fit_metric, generate_response, horizon_residual,
                          integrate_true, metric)


def test_ads_schwarzschild_form():
    h = metric("ads_schwarzschild", d=3)
    eta = torch.tensor([0.1, 1.0, 5.0], dtype=torch.float64)
    assert torch.allclose(h(eta), 3 / torch.tanh(3 * eta))
    assert abs(float(h(torch.tensor(1e-4, dtype=torch.float64))) * 1e-4 - 1) < 1e-6  # ≈ 1/η at the horizon


def test_regular_solution_has_small_residual():
    """Integrating *outward* from a regular horizon point and back gives F ≈ 0 at η_fin."""
    h = metric("ads_schwarzschild")
    b = Bulk()
    phi_h = torch.tensor([0.4], dtype=torch.float64)
    eta0 = b.eta_fin
    # regular data at η_fin: π = η (m²φ + λφ³)/2
    pi_h = eta0 * (b.m2 * phi_h + b.lam * phi_h ** 3) / 2
    out = Bulk(b.m2, b.lam, eta_ini=b.eta_fin, eta_fin=b.eta_ini)
    phi1, pi1 = integrate_true(h, phi_h, pi_h, out, 2000)
    phi2, pi2 = integrate_true(h, phi1, pi1, b, 2000)
    assert abs(float(horizon_residual(phi2, pi2, b.eta_fin, b.m2, b.lam))) < 1e-6


def test_network_with_true_metric_reproduces_data():
    h = metric("ads_schwarzschild")
    d = generate_response(h, 200, seed=1)
    net = AdSNetwork(40, "rk4")
    with torch.no_grad():
        net.h.copy_(h(net.eta))
    rel = ((net(d["x"]) - d["y"]).abs() / (1 + d["y"].abs())).max()
    assert rel < 0.02


def test_horizon_labels_balanced():
    d = generate_response(metric("ads_schwarzschild"), 40, label="horizon", seed=0, substeps=200)
    assert d["y"].sum() == 20 and ((d["F"].abs() < 0.1) == (d["y"] == 0)).all()


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_is_recovered(name):
    """Any metric the generator accepts: train from h ≡ 1, recover to < 15 % relative RMS."""
    r = fit_metric(metric(name), layers=20, samples=800, epochs=15, c_reg=1e-4)
    assert r.rel_rms < 0.15, (name, r.rel_rms)


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown bulk metric"):
        metric("flat_space")
