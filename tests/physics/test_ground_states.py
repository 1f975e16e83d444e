"""Ground-state binding energies of the SLy4 ETF functional against measurement (issue #4).

Required: Pb208 and U236 within 2 %, O16 and Mg24 within 8 % of AME2020; Pb208 charge radius within 3 %.

``ground_state`` reports the order-hbar^2 ETF energy of the free (band-limited) variation plus the
order-hbar^4 kinetic term evaluated on restricted generalised-Fermi densities (Brack, Guet &
Hakansson 1985; bkdsl/physics/etf4.py; docs/physics.md). With it all four binding energies are inside
the required windows (measured: O16 +1.95 %, Mg24 +3.0 %, Pb208 -0.09 %, U236 +0.49 %). At order hbar^2
alone three of them are not (O16 +9.0 %, Mg24 +8.6 %, U236 +2.46 %): that is pinned by the strict
xfails below, so the suite says so if the order-hbar^2 numbers ever change.
"""

import pytest

from bkdsl.physics.solver import ground_state

MEASURED = {"O16": 127.62, "Mg24": 198.26, "Pb208": 1636.43, "U236": 1790.42}
REQUIRED = {"O16": 0.08, "Mg24": 0.08, "Pb208": 0.02, "U236": 0.02}
# ETF-2 / SLy4 results on the default grids and the restricted hbar^4 shifts (docs/physics_ground_states.json)
ETF2 = {"O16": 139.12, "Mg24": 215.37, "Pb208": 1668.12, "U236": 1834.53}
HBAR4 = {"O16": 9.02, "Mg24": 11.17, "Pb208": 33.23, "U236": 35.31}
XFAIL2 = pytest.mark.xfail(strict=True, reason="order hbar^2 alone overbinds: O16 +9.0 %, Mg24 +8.6 %, "
                                               "U236 +2.46 % (tolerances 8 % / 8 % / 2 %)")

_cache = {}


def _gs(name):
    # one solve per nucleus per test session (each test checks a different property of it)
    if name not in _cache:
        _cache[name] = ground_state(name, "sly4", device="cpu")
    return _cache[name]


def _etf2_only(gs):
    return gs.binding_energy + gs.components["hbar4"]


@pytest.mark.parametrize("name", list(MEASURED))
def test_binding_energy_within_required_tolerance(name):
    gs = _gs(name)
    assert gs.order == 4
    assert abs(gs.binding_energy - MEASURED[name]) / MEASURED[name] <= REQUIRED[name]


@pytest.mark.parametrize("name", [pytest.param("O16", marks=XFAIL2), pytest.param("Mg24", marks=XFAIL2),
                                  "Pb208", pytest.param("U236", marks=XFAIL2)])
def test_order_hbar2_alone_within_required_tolerance(name):
    be2 = _etf2_only(_gs(name))
    assert abs(be2 - MEASURED[name]) / MEASURED[name] <= REQUIRED[name]


@pytest.mark.parametrize("name", list(MEASURED))
def test_binding_energy_components_band(name):
    gs = _gs(name)
    assert gs.converged and gs.gradient_norm < 1e-4
    assert _etf2_only(gs) == pytest.approx(ETF2[name], abs=0.5)
    assert -gs.components["edf"] == pytest.approx(ETF2[name], abs=0.5)
    assert gs.components["hbar4"] == pytest.approx(HBAR4[name], abs=0.1)
    assert gs.binding_energy == pytest.approx(-(gs.components["edf"] + gs.components["hbar4"]), abs=1e-9)
    # the restricted order-hbar^2 minimum reproduces the free one (an independent radial code)
    assert -gs.hbar4_restricted["E_hbar2"] == pytest.approx(ETF2[name], abs=0.5)


def test_hbar4_flag_off_gives_order_hbar2():
    gs = ground_state("O16", "sly4", device="cpu", hbar4=False)
    assert gs.order == 2 and "hbar4" not in gs.components and gs.r_ch_hbar4 is None
    assert gs.binding_energy == pytest.approx(ETF2["O16"], abs=0.05)


def test_pb208_charge_radius():
    gs = _gs("Pb208")
    assert abs(gs.r_ch - 5.501) / 5.501 < 0.03                # order-hbar^2 density: +0.11 %
    assert abs(gs.r_ch_hbar4 - 5.501) / 5.501 < 0.03          # with the hbar^4 shift of r_p
    assert abs(gs.Q20) < 0.5 and abs(gs.Q30) < 1e-3          # spherical (up to the grid's anisotropy)
    assert gs.grid == (44, 88, 0.3)
