"""The validation rule that picks the AdS network's layer count and regulariser weight."""

import math

import pytest

from bkdsl.nn.ads import metric
from bkdsl.nn.ads_fit import C_GRID, LAYER_GRID, choose, select_and_fit


def row(layers, c, val, se=0.0):
    return {"layers": layers, "c_reg": c, "val_loss": val, "val_se": se}


def test_rule_takes_the_smallest_validation_loss_when_it_stands_out():
    rows = [row(20, 1e-2, 3e-4, 1e-5), row(20, 1e-3, 1e-4, 1e-5), row(40, 1e-3, 2e-4, 1e-5)]
    assert choose(rows) == 1


def test_rule_takes_the_simplest_model_within_one_standard_error():
    """Within one SE of the best: fewest layers first, then the largest weight."""
    rows = [row(40, 1e-4, 1.00e-4, 1e-5), row(20, 1e-4, 1.05e-4, 1e-5), row(20, 1e-2, 1.08e-4, 1e-5),
            row(20, 1e-1, 1.5e-4, 1e-5)]
    assert choose(rows) == 2


def test_rule_ignores_nan_and_refuses_when_nothing_is_finite():
    rows = [row(20, 1e-2, math.nan), row(20, 1e-3, 2e-4, 1e-5)]
    assert choose(rows) == 1
    with pytest.raises(ValueError, match="finite"):
        choose([row(20, 1e-2, math.nan), row(20, 1e-3, math.inf)])
    with pytest.raises(ValueError):
        choose([])


def test_the_grid_is_fixed():
    assert LAYER_GRID == (20, 40) and C_GRID == (1e-4, 1e-3, 1e-2, 1e-1)


def test_select_and_fit_reports_every_candidate_and_follows_the_rule():
    """A 2-point grid on a small set: every candidate reported with its validation loss and the true
    metric's floor; the chosen fit is the one :func:`choose` names."""
    h = metric("ads_schwarzschild", d=3)
    kw = dict(layer_grid=(20,), c_grid=(1e-3, 1e-1), samples=300, noise=0.01, epochs=2)
    s = select_and_fit(h, **kw)
    assert [(c["layers"], c["c_reg"]) for c in s.candidates] == [(20, 1e-3), (20, 1e-1)]
    assert all(math.isfinite(c["val_loss"]) and math.isfinite(c["floor_val"]) for c in s.candidates)
    assert (s.chosen.layers, s.chosen.c_reg) == tuple(
        (s.candidates[choose(s.candidates)][k] for k in ("layers", "c_reg")))
