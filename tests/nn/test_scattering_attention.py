"""The reference scattering attention is the rule, token by token; the module is a residual gate."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bkdsl.kernels import dispatch
from bkdsl.nn.scattering_attention import (
    ScatteringAttention,
    active_tokens,
    block_keep_mask,
    block_sparsity_stats,
    scattering_attention_reference,
    scattering_score,
    block_leading_score,
)

LEVELS = st.sampled_from([0.0, 0.125, 0.5, 1.0, 1.5, 2.0, 4.0])  # exact binary fractions: ties happen


def _rule_by_hand(s: torch.Tensor, tau: float, block: int, causal: bool):
    """The rule written out with loops over blocks and tokens (float32 scalars, as the spec says)."""
    n = s.shape[0]
    nb = -(-n // block)
    t = torch.tensor(tau, dtype=torch.float32)
    sigma = [max([s[j].float() for j in range(jb * block, min(n, (jb + 1) * block))]) for jb in range(nb)]
    keep = [[bool(sigma[i] * sigma[j] > t) and (j <= i or not causal) for j in range(nb)] for i in range(nb)]
    m = [max(sigma[j] for j in range(nb) if j <= i or not causal) for i in range(nb)]
    active = [bool(s[i].float() * m[i // block] > t) for i in range(n)]
    keys = [
        [j for j in range(n) if keep[i // block][j // block] and (j <= i or not causal)] for i in range(n)
    ]
    return keep, active, keys


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 40),
    block=st.sampled_from([4, 8, 16]),
    causal=st.booleans(),
    tau=st.sampled_from([0.25, 1.0, 2.0]),
)
def test_reference_is_the_rule(data, n, block, causal, tau):
    s = torch.tensor([data.draw(st.lists(LEVELS, min_size=n, max_size=n))])
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    q, k, v = (torch.randn(1, 2, n, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    keep, active, keys = _rule_by_hand(s[0], tau, block, causal)

    got_keep, _ = block_keep_mask(s, tau, block, causal)
    assert got_keep[0].tolist() == keep
    assert active_tokens(s, tau, block, causal)[0].tolist() == active

    o = scattering_attention_reference(q, k, v, s, tau, block, causal)
    scale = 1.0 / math.sqrt(8)
    for i in range(n):
        if not active[i]:
            assert (o[0, :, i] == 0).all(), "an inactive token takes the identity path: output exactly 0"
            continue
        assert keys[i], "an active token always has a kept key"
        kk, vv = k[0][:, keys[i]], v[0][:, keys[i]]
        p = torch.softmax(scale * torch.einsum("hd,hjd->hj", q[0, :, i], kk), dim=-1)
        torch.testing.assert_close(o[0, :, i], torch.einsum("hj,hjd->hd", p, vv))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(1, 64), block=st.sampled_from([4, 16]), causal=st.booleans())
def test_stats_count_the_skipped_pairs(data, n, block, causal):
    s = torch.tensor([data.draw(st.lists(LEVELS, min_size=n, max_size=n))])
    keep, _, _ = _rule_by_hand(s[0], 1.0, block, causal)
    nb = len(keep)
    total = nb * (nb + 1) // 2 if causal else nb * nb
    stats = block_sparsity_stats(s, 1.0, block, causal)
    assert stats.kept_blocks[0].tolist() == [sum(row) for row in keep]
    assert stats.skipped_fraction[0].item() == pytest.approx(1 - sum(map(sum, keep)) / total, abs=1e-6)


def test_reference_gradients_are_finite_and_vanish_on_inactive_tokens():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 48, 8, generator=gen, requires_grad=True) for _ in range(3))
    s = torch.rand(1, 48, generator=gen) * 2
    s[:, :16] = 0.1  # a block whose tokens are all inactive and whose pairs are all skipped
    o = scattering_attention_reference(q, k, v, s, 1.0, 16, True)
    o.square().sum().backward()
    inactive = ~active_tokens(s, 1.0, 16, True)[0]
    assert inactive[:16].all()
    for x in (q, k, v):
        assert torch.isfinite(x.grad).all()
    assert (q.grad[0, :, inactive] == 0).all()
    assert (k.grad[0, :, :16] == 0).all() and (v.grad[0, :, :16] == 0).all()  # skipped block


def _green_diagonal(b: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """A plausible G_ii: amplitudes spread over two decades, random phases."""
    amp = torch.exp(2.5 * torch.randn(b, n, generator=gen))
    return torch.polar(amp, 2 * math.pi * torch.rand(b, n, generator=gen))


def test_scattering_score_is_normalised_per_sequence():
    gen = torch.Generator().manual_seed(1)
    g = _green_diagonal(3, 50, gen)
    s = scattering_score(g)
    torch.testing.assert_close(s.mean(-1), torch.ones(3))
    torch.testing.assert_close(scattering_score(7.5j * g), s)  # invariant to a global complex factor
    assert (scattering_score(torch.zeros(1, 5, dtype=torch.complex64)) == 0).all()


@pytest.mark.parametrize("causal", [False, True])
def test_module_leaves_inactive_tokens_on_the_identity_path(causal):
    gen = torch.Generator().manual_seed(2 + causal)
    torch.manual_seed(2)
    layer = ScatteringAttention(d_model=32, heads=4, tau=1.0, block=8, causal=causal)
    h = torch.randn(2, 64, 32, generator=gen, requires_grad=True)
    g = _green_diagonal(2, 64, gen).requires_grad_()
    with dispatch.force("reference"):
        out = layer(h, g)
    assert out.shape == h.shape
    s = block_leading_score(scattering_score(g, causal=True), 8) if causal else scattering_score(g)
    inactive = ~active_tokens(s, 1.0, 8, causal)
    assert inactive.any() and not inactive.all()
    assert (out[inactive] == 0).all()
    y = h + out
    assert torch.equal(y[inactive], h[inactive])
    y.sum().backward()
    assert g.grad is None, "the gate is piecewise constant: no gradient reaches the Green function"
    assert layer.w_q.weight.grad is not None and torch.isfinite(layer.w_q.weight.grad).all()
    stats = layer.last_stats
    assert 0 < stats.skipped_fraction.mean() < 1
    torch.testing.assert_close(layer.skipped_fraction, 0.1 * stats.skipped_fraction.mean())
