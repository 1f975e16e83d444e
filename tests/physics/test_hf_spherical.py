import dataclasses
import json
import math

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.physics.cli import main
from bkdsl.physics.constants import E2_MEV_FM
from bkdsl.physics.hf_spherical import SphericalSkyrme, hf_ground_state, richardson
from bkdsl.physics.nuclei import get_nucleus
from bkdsl.physics.skyrme import SLY4


@pytest.fixture(scope="module")
def o16():
    return hf_ground_state("O16", step=0.1)


def test_o16_shells_and_numbers(o16):
    occ = {q: sorted((lv.label, lv.occupation) for lv in o16.levels if lv.q == q and lv.occupation > 0)
           for q in ("n", "p")}
    assert occ["n"] == occ["p"] == [("1p1/2", 1.0), ("1p3/2", 1.0), ("1s1/2", 1.0)]
    assert 127.0 < o16.binding_energy < 131.0 and 2.7 < o16.r_ch < 2.9
    e = {(lv.q, lv.label): lv.energy for lv in o16.levels}
    assert e[("n", "1p3/2")] < e[("n", "1p1/2")] < 0          # spin-orbit splitting, right sign
    assert e[("p", "1s1/2")] > e[("n", "1s1/2")]              # Coulomb lifts the proton levels
    assert set(o16.components) >= {"kinetic", "spin_orbit", "coulomb_direct", "coulomb_exchange", "total"}


def test_mean_fields_are_the_derivatives_of_the_discrete_energy():
    nuc = get_nucleus("O16")
    r = (torch.arange(1, 121, dtype=torch.float64) - 0.5) * 0.1
    F = SphericalSkyrme(SLY4, nuc, r)
    prof = 1 / (1 + torch.exp((r - 2.8) / 0.5))
    rho = torch.stack([0.08 * prof, 0.079 * prof])
    tau = 0.6 * (3 * math.pi**2) ** (2 / 3) * rho ** (5 / 3)
    J = 0.01 * prof * (1 - prof)
    U, B, W = F.mean_fields(rho, tau, J)
    g = torch.Generator().manual_seed(0)
    for field, pot, k in ((rho, U, 0), (tau, B, 1), (J, W, 2)):
        d = 1e-6 * torch.randn(field.shape, generator=g, dtype=torch.float64) * prof
        args = [rho, tau, J]
        args[k] = field + d
        e1 = F.energy(*args)["total"]
        args[k] = field - d
        e0 = F.energy(*args)["total"]
        assert float((e1 - e0) / 2) == pytest.approx(float((pot * d * F.w).sum()), rel=1e-6)


def test_coulomb_energy_of_a_uniform_sphere():
    nuc = get_nucleus("Pb208")
    r = (torch.arange(1, 401, dtype=torch.float64) - 0.5) * 0.05
    F = SphericalSkyrme(SLY4, nuc, r)
    R, Z = 7.0, 82
    rp = torch.where(r < R, Z / (4 / 3 * math.pi * R**3), 0.0).to(torch.float64)
    z = torch.zeros_like(rp)
    e = F.energy(torch.stack([z, rp]), torch.stack([z, z]), torch.stack([z, z]))["coulomb_direct"]
    assert float(e) == pytest.approx(0.6 * Z * Z * E2_MEV_FM / R, rel=5e-3)


def test_mesh_error_is_second_order(o16):
    """E(h) = E0 + c h^2: the Richardson limit of (0.2, 0.1) fm hits the limit of the fine pair
    (0.05, 0.025) fm, 128.4965 MeV (docs/physics.md), which a first-order error would miss by ~0.4 MeV."""
    coarse = hf_ground_state("O16", step=0.2).binding_energy
    assert coarse - o16.binding_energy > 1.0
    assert richardson(coarse, o16.binding_energy) == pytest.approx(128.4965, abs=0.03)


def test_without_spin_orbit_the_partners_are_degenerate():
    p = dataclasses.replace(SLY4, name="SLy4-noSO", W0=0.0, aliases=())
    res = hf_ground_state("O16", p, step=0.2, coulomb=False)
    e = {(lv.q, lv.label): lv.energy for lv in res.levels}
    assert e[("n", "1p3/2")] == pytest.approx(e[("n", "1p1/2")], abs=1e-9)
    assert e[("n", "1p3/2")] == pytest.approx(e[("p", "1p3/2")], abs=1e-6)   # no Coulomb, N = Z


def test_refusals():
    with pytest.raises(BkError) as e:
        hf_ground_state("O16", step=0.2, max_iter=3)
    assert e.value.code == "E0704"
    with pytest.raises(BkError) as e:
        hf_ground_state("O16", step=0.0)
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        hf_ground_state("O16", step=float("nan"))
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        hf_ground_state("O16", "sly5")
    assert e.value.code == "E0702"
    with pytest.raises(BkError) as e:
        hf_ground_state("O16", step=0.2, n_radial=1)
    assert e.value.code == "E0704"


def test_cli_hf_json(capsys):
    assert main(["ground-state", "O16", "--method", "hf", "--step", "0.3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "hf" and d["converged"] is True
    x = d["extrapolated"]
    assert x["steps"] == [0.3, 0.15] and 126 < x["binding_energy"] < 131
    assert any(lv["label"] == "1p1/2" and lv["occupation"] == 1.0 for lv in d["levels"])
