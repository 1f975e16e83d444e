import pytest

from bkdsl.diagnostics import BkError
from bkdsl.physics.constants import TF_KAPPA
from bkdsl.physics.skyrme import SkyrmeParams, get_functional, register_functional


def _e_per_a(p, rho):
    rq = rho / 2
    B = p.hbar2_2m + p.c_eff_total * rho + p.c_eff_q * rq
    kin = 2 * B * TF_KAPPA * rq ** (5 / 3)
    e0 = 0.25 * p.t0 * ((2 + p.x0) * rho**2 - (2 * p.x0 + 1) * 2 * rq**2)
    e3 = p.t3 / 24 * rho**p.alpha * ((2 + p.x3) * rho**2 - (2 * p.x3 + 1) * 2 * rq**2)
    return (kin + e0 + e3) / rho


def test_registry_names():
    assert get_functional("SLy4") is get_functional("sly4") is get_functional("SLY-4")
    assert get_functional("skm*") is get_functional("SkMstar")
    assert get_functional("sly5").j2_terms


def test_sly4_saturation():
    # symmetric nuclear matter with the bulk terms used by the ETF functional: E/A = -15.97 MeV at 0.160
    p = get_functional("sly4")
    assert _e_per_a(p, 0.160) == pytest.approx(-15.97, abs=0.01)
    assert _e_per_a(p, 0.160) < _e_per_a(p, 0.150) and _e_per_a(p, 0.160) < _e_per_a(p, 0.170)


def test_unknown_functional():
    with pytest.raises(BkError) as e:
        get_functional("sly99")
    assert e.value.code == "E0702" and "SLy4" in e.value.diagnostic.help


def test_register():
    p = SkyrmeParams(name="TestSk", t0=-2000, t1=400, t2=-400, t3=12000, x0=0.5, x1=0, x2=0, x3=0.5,
                     alpha=1 / 6, W0=120)
    register_functional(p, overwrite=True)
    assert get_functional("testsk") is p
