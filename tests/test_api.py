"""The embedding API and the component registry users extend from Python."""

from __future__ import annotations

import pytest
import torch

import bkdsl
from bkdsl.diagnostics import BkErrors


def test_compile_source_returns_module_ir_report():
    c = bkdsl.compile_source("model m() {\n  input x : [B, 3]\n  output linear(x, 2)\n}\n", name="m.bk")
    assert c.diagnostics == []
    assert c.module(x=torch.randn(4, 3))["out"].shape == (4, 2)
    assert "m" in c.ir.models and "Compile report" in c.report


def test_compile_raises_with_all_diagnostics():
    with pytest.raises(BkErrors) as e:
        bkdsl.compile_source("const a = b\nconst c = d\n", name="e.bk")
    assert [d.code for d in e.value.diagnostics] == ["E0101", "E0101"]
    assert "e.bk:1:11" in str(e.value)


def test_user_component_extends_the_language():
    from bkdsl.registry import _REGISTRY

    @bkdsl.component("swish_test", kind="function", inputs=("x",))
    class Swish(bkdsl.Component):
        """x·σ(x)"""

        function = staticmethod(lambda x: x * torch.sigmoid(x))

    try:
        c = bkdsl.compile_source("model m() {\n  input x : [B, 3]\n  output swish_test(x)\n}\n")
        x = torch.randn(2, 3)
        assert torch.allclose(c.module(x=x)["out"], x * torch.sigmoid(x))
        with pytest.raises(ValueError):  # a taken name is not silently replaced
            bkdsl.component("swish_test", kind="function")(type("Other", (bkdsl.Component,), {}))
    finally:
        _REGISTRY.pop("swish_test", None)


LOSS_SPEC = '''const dr = 0.4 fm
model mtl() {
  input rho : [B, 1, 4, 6]
  output rho = rho
  output E = squeeze_last(linear(flatten(rho), 1))
}
data d = file("d.npz", rho = field("rho") in fm^-3, E = field("E") in MeV, normalize = minmax)
loss bad = mse(E) + l2_integral(rho, measure = cylinder(dr, dr))
loss good(alpha) = mse(E) + alpha * l2_integral(rho, measure = cylinder(dr, dr))
train t {
  model = mtl()
  data  = d
  loss  = LOSS
  epochs = 1
}
'''


@pytest.fixture
def loss_data(tmp_path, monkeypatch):
    """The data file LOSS_SPEC names, in the working directory (``check`` reads its headers)."""
    import numpy as np

    np.savez(tmp_path / "d.npz", rho=np.ones((4, 1, 4, 6), "f4"), E=np.ones((4,), "f4"))
    monkeypatch.chdir(tmp_path)


def test_loss_units_are_checked_against_the_data(loss_data):
    diags = bkdsl.check_source(LOSS_SPEC.replace("LOSS", "bad"), "l.bk")
    d = next(x for x in diags if x.code == "E0203")
    assert "1" in d.message and "fm^3" in d.message
    from tests.conftest import pos

    assert (d.span.line, d.span.col) == pos(LOSS_SPEC, "mse(E) + l2")
    ok = bkdsl.check_source(LOSS_SPEC.replace("LOSS", "good(alpha = 1e-3 fm^-3)"), "l.bk")
    assert ok == []
    wrong = bkdsl.check_source(LOSS_SPEC.replace("LOSS", "good(alpha = 1e-3 fm^-2)"), "l.bk")
    assert any(x.code == "E0203" for x in wrong)


def test_loss_program_is_unit_consistent_at_run_time(loss_data):
    c = bkdsl.compile_source(LOSS_SPEC.replace("LOSS", "good(alpha = 1e-3 fm^-3)"), "l.bk")
    loss = c.build_loss(c.train_block().get("loss"))
    b = {"rho": torch.zeros(2, 1, 4, 6), "E": torch.zeros(2)}
    o = {"rho": torch.ones(2, 1, 4, 6), "E": torch.ones(2)}
    total, terms = loss(o, b)
    # mse = 1; ∫ 2πr dr dz over r_i = (i+½)·0.4 fm, 6 z points → 2π·0.4³·6·Σ(i+½) = 2π·0.384·8 fm³
    import math

    integral = 2 * math.pi * 0.4 ** 3 * 6 * sum(i + 0.5 for i in range(4))
    assert abs(float(total) - (1.0 + 1e-3 * integral)) < 1e-5
    assert len(terms) == 2
