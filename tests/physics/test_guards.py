import json
import math

import pytest

from bkdsl.diagnostics import BkError
from bkdsl.physics.cli import main
from bkdsl.physics.guards import DEFAULT_BOUNDS, check_physical, liquid_drop_rms, require_physical

PB = dict(A=208, energy=-1636.0, rms_radius=5.56, rho_max=0.16, rho_min=0.0)


def test_a_real_ground_state_passes():
    assert check_physical(**PB) == []
    assert check_physical(A=16, energy=-128.0, rms_radius=2.6, rho_max=0.19) == []


@pytest.mark.parametrize("change, phrase", [
    ({"rho_max": 1.6}, "max density"),
    ({"rho_min": -1e-3}, "negative"),
    ({"rms_radius": 2.0}, "rms radius"),
    ({"rms_radius": 12.0}, "rms radius"),
    ({"energy": -861.6 * 208 / 48}, "per nucleon"),
    ({"energy": +10.0}, "per nucleon"),
])
def test_each_bound_refuses(change, phrase):
    bad = check_physical(**{**PB, **change})
    assert len(bad) == 1 and phrase in bad[0]


@pytest.mark.parametrize("key", ["energy", "rms_radius", "rho_max", "rho_min"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_fails_closed(key, value):
    assert check_physical(**{**PB, key: value})


def test_require_physical_raises_e0705_with_notes():
    with pytest.raises(BkError) as e:
        require_physical("Sn132", A=132, energy=-13641.0, rms_radius=4.5, rho_max=3.0)
    d = e.value.diagnostic
    assert d.code == "E0705" and "max density" in d.message and d.help
    assert any("per nucleon" in n for n in d.notes)


def test_bounds_are_loose_around_systematics():
    assert DEFAULT_BOUNDS.rho_max > 0.22 and DEFAULT_BOUNDS.be_per_nucleon[1] > 8.8 + 1.5
    assert abs(liquid_drop_rms(208) - 5.51) < 0.01


def test_collapsed_etf_is_not_reported_converged(capsys):
    """The ETF collapse of the issue (48Ca at k_cut 3.5: 861.6 MeV with a vanishing gradient) is E0705."""
    assert main(["ground-state", "Ca48", "--k-cut", "3.5", "--order", "2", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["code"] == "E0705" and d.get("converged") is False
    assert "max density" in d["message"]


def test_default_band_limit_still_passes(capsys):
    assert main(["ground-state", "Ca48", "--order", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["converged"] is True and 400 < d["binding_energy"] < 460
