"""The delta-rule fast-weight layer: recurrent reference vs chunked form (float64, 1e-5)."""

import pytest
import torch

from bkdsl.nn.fast_weights import (FastWeightLayer, FastWeightRecall, elu_plus_one, fast_weight_chunked,
                                   fast_weight_recurrent)


def _inputs(B=2, H=2, T=45, dk=8, dv=6, seed=0, key_norm=True):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    q, k = elu_plus_one(r(B, H, T, dk)), elu_plus_one(r(B, H, T, dk))
    if key_norm:
        k = k / k.sum(-1, keepdim=True)
    return q, k, r(B, H, T, dv), torch.sigmoid(r(B, H, T))


@pytest.mark.parametrize("rule", ["delta", "additive"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 16, 64])
def test_chunked_equals_recurrent(rule, normalize, chunk):
    q, k, v, b = _inputs()
    y1, (W1, z1) = fast_weight_recurrent(q, k, v, b, rule, normalize)
    y2, (W2, z2) = fast_weight_chunked(q, k, v, b, rule, normalize, chunk)
    assert (y1 - y2).abs().max() < 1e-5 and (W1 - W2).abs().max() < 1e-5 and (z1 - z2).abs().max() < 1e-5
    assert (y1 - y2).abs().max() < 1e-10  # in practice: round-off


def test_delta_rule_matches_source_formula_step_by_step():
    """R_t = v_t − W φ(k_t); W ← W + β R ⊗ φ(k); z ← z + φ(k); y = W φ(q) / zᵀφ(q)."""
    q, k, v, b = _inputs(B=1, H=1, T=5, key_norm=False)
    W = torch.zeros(6, 8, dtype=torch.float64)
    z = torch.zeros(8, dtype=torch.float64)
    ys = []
    for t in range(5):
        R = v[0, 0, t] - W @ k[0, 0, t]
        W = W + b[0, 0, t] * torch.outer(R, k[0, 0, t])
        z = z + k[0, 0, t]
        ys.append(W @ q[0, 0, t] / (z @ q[0, 0, t]))
    y, _ = fast_weight_chunked(q, k, v, b, "delta", True, chunk=4)
    assert torch.allclose(y[0, 0], torch.stack(ys), atol=1e-12)


def test_delta_rule_overwrites_additive_averages():
    """Write (k, v1) then (k, v2) with β = 1 and a unit key: delta returns v2, additive v1 + v2."""
    k = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    k[..., 0] = 1.0
    v = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=torch.float64)
    b = torch.ones(1, 1, 2, dtype=torch.float64)
    yd, _ = fast_weight_recurrent(k, k, v, b, "delta", normalize=False)
    ya, _ = fast_weight_recurrent(k, k, v, b, "additive", normalize=False)
    assert torch.allclose(yd[0, 0, -1], v[0, 0, 1])
    assert torch.allclose(ya[0, 0, -1], v[0, 0, 0] + v[0, 0, 1])


def test_layer_modes_agree_and_backprop():
    torch.manual_seed(0)
    a = FastWeightLayer(16, 8, 8, heads=2, key_norm=True, mode="chunked", chunk=8).double()
    r = FastWeightLayer(16, 8, 8, heads=2, key_norm=True, mode="recurrent").double()
    r.load_state_dict(a.state_dict())
    x = torch.randn(3, 30, 16, dtype=torch.float64, requires_grad=True)
    ya, yr = a(x), r(x)
    assert (ya - yr).abs().max() < 1e-10
    ga, = torch.autograd.grad(ya.square().sum(), x)
    gr, = torch.autograd.grad(yr.square().sum(), x)
    assert (ga - gr).abs().max() < 1e-8


def test_recall_model_shapes():
    m = FastWeightRecall(24)
    assert m(torch.randint(0, 24, (4, 49))).shape == (4, 49, 24)
