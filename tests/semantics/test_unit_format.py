"""Unit text (bkdsl/semantics/units.py): pint's formatter registry with the spec's own style ``~bk``,
the one place units become text; what it writes parses back to the same unit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from bkdsl.semantics.units import Q_, UNIT_FORMAT, parse_unit, unit_str, ureg

BASE = ["fm", "MeV", "s", "m", "kg", "b", "keV", "um", "rad"]


@pytest.mark.parametrize("text,shown", [("fm^-3", "fm^-3"), ("MeV*fm^-3", "MeV*fm^-3"), ("fm^-3*MeV", "MeV*fm^-3"),
                                        ("1/fm", "fm^-1"), ("kg*m/s^2", "kg*m*s^-2"), ("MeV*fm^1.5", "MeV*fm^1.5"),
                                        ("fm^3.0", "fm^3"), ("dimensionless", "1"), ("fm/fm", "1")])
def test_spec_style_text(text, shown):
    assert unit_str(parse_unit(text)) == shown


def test_quantities_and_strings():
    assert unit_str(Q_(2.0, "MeV")) == "MeV"
    assert unit_str("fermi**3") == "fm^3"
    assert format(Q_(2.5, "MeV*fm**-3"), UNIT_FORMAT) == "2.5 MeV*fm^-3"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(BASE), st.sampled_from([-3, -2, -1, 1, 2, 3, 0.5, -1.5]), min_size=1, max_size=4))
def test_text_parses_back_to_the_same_unit(powers):
    u = ureg.dimensionless
    for name, p in powers.items():
        u = u * ureg.parse_units(name) ** p
    text = unit_str(u)
    assert parse_unit(text) == u, text
    assert "**" not in text and " " not in text
