"""The GPT baseline's components: attention against a plain softmax reference, the MLP, positions, and
their coded diagnostics."""

from __future__ import annotations

import math

import pytest
import torch

import bkdsl
from bkdsl.components.transformer import LearnedPositions, SelfAttention


def _attention_reference(m: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(QKᵀ/√d_h + M) V per head, written out, with M = −∞ above the diagonal when causal."""
    b, n, d = x.shape
    h = m.heads
    q, k, v = m.qkv(x).split(d, dim=-1)
    q, k, v = (t.view(b, n, h, d // h).transpose(1, 2) for t in (q, k, v))
    s = q @ k.transpose(-1, -2) / math.sqrt(d // h)
    if m.causal:
        s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    o = torch.softmax(s, -1) @ v
    return m.out(o.transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("causal", [True, False])
def test_self_attention_matches_the_softmax_reference(causal):
    torch.manual_seed(0)
    m = SelfAttention(24, 3, causal=causal)
    x = torch.randn(2, 11, 24)
    torch.testing.assert_close(m(x), _attention_reference(m, x), atol=1e-5, rtol=1e-5)


def test_causal_attention_output_i_ignores_later_positions():
    torch.manual_seed(1)
    m = SelfAttention(16, 2, causal=True)
    x = torch.randn(1, 10, 16)
    x2 = x.clone()
    x2[:, 6:] += torch.randn(1, 4, 16)
    assert torch.equal(m(x)[:, :6], m(x2)[:, :6])
    assert not torch.allclose(m(x)[:, 6:], m(x2)[:, 6:])


def test_positions_add_a_learned_row_per_position_and_refuse_long_sequences():
    p = LearnedPositions(4, max_len=8)
    x = torch.zeros(2, 5, 4)
    torch.testing.assert_close(p(x), p.table[:5].expand(2, 5, 4))
    with pytest.raises(ValueError):
        p(torch.zeros(1, 9, 4))


SRC = """
model m(d: int = 8, heads: int = 3) {
  input x : [B, 16, d]
  output y = gelu_mlp(self_attention(position_embedding(x, max_len = 16), heads = heads))
}
"""


def test_the_components_compile_and_build():
    gm = bkdsl.compile_source(SRC.replace("heads: int = 3", "heads: int = 2")).module
    y = gm(torch.randn(2, 16, 8))["y"]
    assert y.shape == (2, 16, 8) and torch.isfinite(y).all()
    mlp = [m for m in gm.modules() if isinstance(m, torch.nn.Sequential)][0]
    assert mlp[0].out_features == 32  # default inner width 4d


@pytest.mark.parametrize("src,code,says", [
    (SRC, "E0201", "divisible"),                                 # 8 is not divisible by 3 heads
    (SRC.replace("heads: int = 3", "heads: int = 2").replace("max_len = 16", "max_len = 8"), "E0201", "max_len"),
])
def test_bad_configurations_are_coded_diagnostics(src, code, says):
    diags = bkdsl.check_source(src)
    assert any(d.code == code and says in d.message and d.span is not None for d in diags), \
        [d.render() for d in diags]
