import pytest

from bkdsl.verify.composition import closure, compose, why_not


def test_sequential_rules():
    assert "unitary" in compose("sequential", [{"unitary"}, {"unitary"}])
    assert "isometric" in compose("sequential", [{"isometric"}, {"unitary"}])
    assert "contractive" in compose("sequential", [{"isometric"}, {"contractive"}])  # contraction after isometry
    assert "isometric" not in compose("sequential", [{"isometric"}, {"contractive"}])
    assert "symplectic" in compose("sequential", [{"symplectic", "reversible"}] * 3)
    assert "symplectic" not in compose("sequential", [{"symplectic"}, set()])
    assert "reversible" in compose("repeat", [{"unitary"}, {"reversible"}])
    assert "commutative" not in compose("sequential", [{"commutative"}, {"commutative"}])


def test_parallel_and_residual():
    assert "symplectic" in compose("parallel", [{"symplectic"}, {"symplectic"}])
    assert compose("residual", [{"unitary"}]) == set()
    assert "unitary" in compose("sequential", [])  # identity


def test_closure_and_why_not():
    assert closure({"unitary"}) == {"unitary", "isometric", "contractive", "reversible"}
    msg = why_not("sequential", [{"symplectic"}, set()], "symplectic", ["leap", "rk"])
    assert "`rk`" in msg and "`leap`" not in msg
    assert why_not("sequential", [{"symplectic"}], "symplectic") is None
    with pytest.raises(ValueError):
        compose("diagonal", [])
