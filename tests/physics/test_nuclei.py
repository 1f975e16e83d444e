import pytest

from bkdsl.diagnostics import BkError
from bkdsl.physics.nuclei import get_nucleus


@pytest.mark.parametrize("name", ["U236", "236U", "u236", "U-236", "236-u", "uranium236"])
def test_names(name):
    n = get_nucleus(name)
    assert (n.Z, n.N, n.A, n.name) == (92, 144, 236, "U236")
    assert n.be_exp == pytest.approx(1790.415)


def test_measured():
    assert get_nucleus("Pb208").rch_exp == pytest.approx(5.5012)
    assert get_nucleus("O16").be_exp == pytest.approx(127.619)
    assert get_nucleus("Mg24").be_exp == pytest.approx(198.257)
    assert get_nucleus("Sn120").be_exp is None     # any nucleus works; data only where known


@pytest.mark.parametrize("bad", ["Xx12", "U", "236", "H500", ""])
def test_unknown(bad):
    with pytest.raises(BkError) as e:
        get_nucleus(bad)
    assert e.value.code == "E0701"
    assert e.value.diagnostic.help
