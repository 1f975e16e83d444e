"""unbind(ph, z, k) in the language: the binding laws through the compiled model, refusals."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from bkdsl import registry
from bkdsl.api import check_source, compile_source
from bkdsl.components.unbinding import UNBINDINGS

SPEC = """
binding ph = phasor_bind()
binding gh = ghrr_bind(k = 2)
binding ob = outer_bind()
binding hr = circular_conv()
model m {
  input k : [B, 16]
  input y : [B, 16]
  output ph_back = unbind(ph, ph(k, y), k)
  output gh_back = unbind(gh, gh(k, y), k)
  output ob_back = unbind(ob, ob(k, y), k)
  output hr_back = unbind(hr, hr(k, y), k, approximate = true)
}
"""


@pytest.fixture(scope="module")
def model():
    c = compile_source(SPEC)
    return c.build_model(c.model_call("m"))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), scale=st.floats(0.1, 10.0))
def test_unbind_of_bind_is_the_value_for_the_exact_bindings(model, seed, scale):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(3, 16, generator=g, dtype=torch.float64)
    y = scale * torch.randn(3, 16, generator=g, dtype=torch.float64)
    out = model(k=k, y=y)
    for name in ("ph_back", "gh_back", "ob_back"):
        assert torch.allclose(out[name], y, rtol=1e-9, atol=1e-9 * scale), name


def test_the_approximate_unbinding_is_only_approximate(model):
    """circular correlation recovers y with crosstalk: correlated with y, but not equal."""
    g = torch.Generator().manual_seed(0)
    k = torch.randn(64, 16, generator=g, dtype=torch.float64) / 4.0  # N(0, 1/d) keys
    y = torch.randn(64, 16, generator=g, dtype=torch.float64)
    back = model(k=k, y=y)["hr_back"]
    cos = torch.nn.functional.cosine_similarity(back, y, dim=-1)
    assert cos.mean() > 0.5 and (back - y).abs().max() > 1e-3


@pytest.mark.parametrize("decl, call, needle", [
    ("binding hr = circular_conv()", "unbind(hr, hr(k, y), k)", "only an approximate inverse"),
    ('binding pb = phasor_bind(normalize = "both")', "unbind(pb, pb(k, y), k)", "keeps only the phases"),
    ("manifold ball = poincare(c = 1.0)", "unbind(ball, y, k)", "needs a binding declaration"),
])
def test_non_invertible_bindings_are_refused_at_check_time(decl, call, needle):
    spec = f"{decl}\nmodel m {{ input k : [B, 16]; input y : [B, 16]; output z = {call}; }}\n"
    errs = [d for d in check_source(spec, "s.bk") if d.is_error]
    assert [d.code for d in errs] == ["E0201"] and needle in errs[0].message
    assert errs[0].span.line == 2


def test_every_registered_binding_has_an_entry_in_the_unbinding_table():
    bindings = {c.name for c in registry.all_components().values() if c.kind == "binding"}
    assert bindings <= set(UNBINDINGS), bindings - set(UNBINDINGS)
