"""Algebraic laws of the binding ops (hypothesis): unbind∘bind, commutativity where claimed."""

import math

import torch
from hypothesis import given, settings, strategies as st

from bkdsl.nn.binding import (CirculantLinear, HolographicStack, circular_conv, ghrr_bind, ghrr_unbind,
                              hrr_unbind, outer_bind, outer_unbind, phasor_bind, phasor_unbind, random_phasor)

dims = st.sampled_from([8, 15, 16, 64, 127, 256])
seeds = st.integers(0, 2**31 - 1)


def vecs(seed, *shape):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@settings(max_examples=40, deadline=None)
@given(d=dims, seed=seeds)
def test_phasor_unbind_is_exact(d, seed):
    x, y = vecs(seed, 3, d), vecs(seed + 1, 3, d)
    z = phasor_bind(x, y)
    assert torch.allclose(phasor_unbind(z, x), y, atol=1e-12, rtol=0)
    assert torch.allclose(z.norm(dim=-1), y.norm(dim=-1), rtol=1e-12)  # unitary in y


@settings(max_examples=30, deadline=None)
@given(d=dims, seed=seeds)
def test_phasor_both_is_the_source_formula_and_commutes(d, seed):
    x, y = vecs(seed, d), vecs(seed + 1, d)
    z = phasor_bind(x, y, normalize="both")
    assert torch.allclose(z, phasor_bind(y, x, normalize="both"), atol=1e-12)
    # flat unit spectrum (the complex torus); exact recovery of a phasor value
    assert torch.allclose(torch.fft.rfft(z).abs(), torch.ones(d // 2 + 1, dtype=torch.float64), atol=1e-10)
    yp = random_phasor(d, generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(phasor_unbind(phasor_bind(x, yp, "both"), x), yp, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(d=dims, seed=seeds)
def test_circular_conv_matches_definition_and_commutes(d, seed):
    x, y = vecs(seed, d), vecs(seed + 1, d)
    ref = torch.stack([sum(x[j] * y[(i - j) % d] for j in range(d)) for i in range(d)]) if d <= 16 else None
    z = circular_conv(x, y)
    if ref is not None:
        assert torch.allclose(z, ref, atol=1e-12)
    assert torch.allclose(z, circular_conv(y, x), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_hrr_unbind_within_capacity(seed):
    """HRR recovers the value approximately: cosine ≈ 0.7 for one pair at d = 1024, and a clean-up
    memory of 64 items retrieves every value of a 4-pair superposition."""
    d = 1024
    keys = vecs(seed, 4, d) / math.sqrt(d)
    vals = vecs(seed + 1, 64, d) / math.sqrt(d)
    z = circular_conv(keys[0], vals[0])
    cos = torch.nn.functional.cosine_similarity(hrr_unbind(z, keys[0]), vals[0], dim=0)
    assert cos > 0.5
    mem = sum(circular_conv(keys[i], vals[i]) for i in range(4))
    for i in range(4):
        sims = vals @ hrr_unbind(mem, keys[i])
        assert int(sims.argmax()) == i


def test_hrr_capacity_collapses_beyond_limit():
    d, n = 64, 200
    keys, vals = vecs(0, n, d) / math.sqrt(d), vecs(1, n, d) / math.sqrt(d)
    mem = circular_conv(keys, vals).sum(0)
    hits = sum(int((vals @ hrr_unbind(mem, keys[i])).argmax()) == i for i in range(n))
    assert hits < n // 2  # far past capacity (~d / few): retrieval fails


@settings(max_examples=30, deadline=None)
@given(k=st.sampled_from([2, 3, 4]), m=st.integers(1, 6), seed=seeds)
def test_ghrr_exact_inverse_and_noncommutative(k, m, seed):
    d = m * k * k
    x, y = vecs(seed, 2, d), vecs(seed + 1, 2, d)
    z = ghrr_bind(x, y, k)
    assert torch.allclose(ghrr_unbind(z, x, k), y, atol=1e-10)
    assert torch.allclose(z.norm(dim=-1), y.norm(dim=-1), rtol=1e-10)
    assert (ghrr_bind(x, y, k) - ghrr_bind(y, x, k)).abs().max() > 1e-3


@settings(max_examples=30, deadline=None)
@given(d=dims, seed=seeds)
def test_outer_unbind_exact_for_one_pair_and_orthogonal_keys(d, seed):
    x, y = vecs(seed, d), vecs(seed + 1, d)
    assert torch.allclose(outer_unbind(outer_bind(x, y), x), y, atol=1e-10)
    q, _ = torch.linalg.qr(vecs(seed + 2, d, d))
    ys = vecs(seed + 3, min(d, 5), d)
    W = sum(outer_bind(q[:, i], ys[i]) for i in range(len(ys)))
    for i in range(len(ys)):
        assert torch.allclose(outer_unbind(W, q[:, i]), ys[i], atol=1e-10)


def test_circulant_layer_params_and_phasor_orthogonal():
    m = CirculantLinear(128, "phasor").double()
    assert sum(p.numel() for p in m.parameters()) == 128
    x = vecs(0, 4, 128)
    assert torch.allclose(m(x).norm(dim=-1), x.norm(dim=-1), rtol=1e-12)
    assert torch.allclose(m.inverse(m(x)), x, atol=1e-12)
    c = CirculantLinear(128, "contractive").double()
    with torch.no_grad():
        c.weight.mul_(5)
    assert (c(x).norm(dim=-1) <= x.norm(dim=-1) * (1 + 1e-12)).all()


def test_circulant_equals_dense_circulant_matrix():
    m = CirculantLinear(16).double()
    w = m.weight.detach()
    C = torch.stack([torch.roll(w, i) for i in range(16)], 1)  # C[i, j] = w[(i − j) mod n]
    x = vecs(0, 16)
    assert torch.allclose(m(x), C @ x, atol=1e-12)


def test_holographic_stack_phasor_is_orthogonal_hrr_is_not():
    x = vecs(0, 8, 64)
    ph = HolographicStack(64, 8, "phasor").double()
    hr = HolographicStack(64, 8, "hrr").double()
    assert torch.allclose(ph(x).norm(dim=-1), x.norm(dim=-1), rtol=1e-10)
    assert not torch.allclose(hr(x).norm(dim=-1), x.norm(dim=-1), rtol=1e-2)
