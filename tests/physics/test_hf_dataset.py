"""The Kohn-Sham (axial HF+BCS) data of thesis ch. 3 through ``nuclear_densities(solver = "hf-bcs")``.

Coarse lattice (6 x 12 cells of 1.2 fm, Omega <= 5/2) so that a sample solves in well under a second.
"""

import math

import pytest
import torch

from bkdsl.components.training import instantiate
from bkdsl.diagnostics import BkError
from bkdsl.physics.dataset import generate_nuclear_densities
from bkdsl.physics.hf_axial import AxialLattice, axial_hf_bcs_batch
from bkdsl.physics.hf_dataset import THESIS_CUTS, generate_hf_densities
from bkdsl.semantics.values import CallValue

COARSE = dict(grid=(6, 12, 1.2), omega_max2=5)


@pytest.fixture(scope="module")
def sho_uncut():
    return generate_hf_densities("Mg24", potential="sho", samples=6, batch=3, seed=3, cuts=False, device="cpu",
                                 **COARSE)


def test_fields_are_finite_and_the_energies_add_up(sho_uncut):
    ds = sho_uncut
    assert len(ds) == 6 and ds.stats["converged"] == 6
    assert ds.fields["rho"].shape == (6, 1, 6, 12) and ds.fields["v"].shape == (6, 1, 6, 12)
    for k, v in ds.fields.items():
        assert bool(torch.isfinite(v.double()).all()), k
    f = ds.fields
    # eq. 3.13-3.15: E_bin = E_kin + E_int + E_pair
    assert torch.allclose(f["E_kin"] + f["E_int"] + f["E_pair"], f["E"], atol=1e-9)
    # eq. 3.16: E_ex = \int v rho with the solver's own cell volumes (float32 fields: 1e-4 relative)
    lat = AxialLattice(6, 12, 1.2, order=8, quadrature="endpoint")
    e_ex = (f["v"][:, 0].double() * f["rho"][:, 0].double() * lat.w).sum((-2, -1))
    assert torch.allclose(e_ex, f["E_ex"], rtol=1e-4, atol=1e-3)
    # particle number A = 24 in every sample, and n = p (N = Z, no Coulomb)
    n = (f["rho"][:, 0].double() * lat.w).sum((-2, -1))
    assert torch.allclose(n, torch.full_like(n, 24.0), atol=1e-4)
    assert torch.equal(f["rho_n"], f["rho_p"])
    # an SHO field v >= 0 costs energy and E_bin lies above the free ground state
    assert bool((f["E_ex"] > 0).all()) and bool((f["E"] >= ds.stats["E_gs"] - 1e-6).all())


def test_samples_do_not_depend_on_the_batch_size(sho_uncut):
    two = generate_hf_densities("Mg24", potential="sho", samples=2, batch=2, seed=3, cuts=False, device="cpu",
                                **COARSE)
    assert torch.equal(two.fields["v"], sho_uncut.fields["v"][:2])
    assert torch.allclose(two.fields["E"], sho_uncut.fields["E"][:2], atol=1e-6)


def test_table_3_1_cuts_keep_exactly_the_samples_inside(sho_uncut):
    cut = generate_hf_densities("Mg24", potential="sho", samples=6, batch=3, seed=3, cuts=True, device="cpu",
                                **COARSE)
    inside = torch.ones(6, dtype=torch.bool)
    for name, (lo, hi) in THESIS_CUTS["sho"].items():
        inside &= (sho_uncut.fields[name] >= lo) & (sho_uncut.fields[name] <= hi)
    assert len(cut) == int(inside.sum())
    assert torch.allclose(cut.fields["E"], sho_uncut.fields["E"][inside])
    drops = sum(v for k, v in cut.stats.items() if k.startswith("dropped_cut_"))
    assert cut.stats["kept"] + drops == cut.stats["converged"]


def test_rnd_fields_follow_eqs_3_9_to_3_12():
    ds = generate_hf_densities("Mg24", potential="rnd", samples=3, batch=3, seed=1, cuts=False, device="cpu", **COARSE)
    v = ds.fields["v"][:, 0].double()
    assert len(ds) == 3 and bool(torch.isfinite(v).all())
    # the mask exp(-4 max(0, R - r0)^2 / r0^2) with r0 = 1.4 * 1.2 * 24^(1/3) = 4.84 fm bounds |v| far out:
    # |sr| <= 1.1 * sum exp(-d^2 / 1.2) over the lattice
    lat = AxialLattice(6, 12, 1.2)
    R = torch.sqrt(lat.R**2 + lat.Z**2)
    r0 = 1.4 * 1.2 * 24 ** (1 / 3)
    mask = torch.exp(-4 * (R - r0).clamp_min(0) ** 2 / r0**2)
    bound = 1.1 * torch.exp(-((lat.R.reshape(-1, 1) - lat.R.reshape(1, -1)) ** 2
                              + (lat.Z.reshape(-1, 1) - lat.Z.reshape(1, -1)) ** 2) / 1.2).sum(1).reshape(6, 12)
    assert bool((v.abs() <= mask * bound + 1e-5).all())
    assert float(v.abs().max()) > 0.05         # not a zero field


def test_solver_keyword_through_the_etf_entry_point_and_coulomb_refused():
    ds = generate_nuclear_densities("Mg24", potential="sho", samples=1, batch=1, solver="hf-bcs", device="cpu",
                                    cuts=False, **COARSE)
    assert ds.config["solver"] == "hf-bcs" and len(ds) == 1
    with pytest.raises(BkError) as e:
        generate_nuclear_densities("Mg24", potential="sho", samples=1, solver="hf-bcs", coulomb=True, **COARSE)
    assert e.value.code == "E0706"
    with pytest.raises(BkError) as e:
        generate_nuclear_densities("Mg24", potential="sho", samples=1, solver="ks")
    assert e.value.code == "E0706"
    with pytest.raises(BkError) as e:
        generate_hf_densities("Mg24", potential="random_ho", samples=1, **COARSE)
    assert e.value.code == "E0706"


def test_data_source_generates_caches_and_declares_the_ks_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path / "cache"))
    kw = {"nucleus": "Mg24", "potential": "sho", "solver": "hf-bcs", "samples": 2, "batch": 2, "cuts": False,
          "grid": [6, 12, 1.2], "omega_max2": 5, "device": "cpu"}
    call = CallValue("nuclear_densities", [], kw)
    src = instantiate(call, "data")
    declared = type(src).declared_fields(call)
    assert {"E_kin", "E_int", "E_pair", "E_ex"} <= set(declared) and "Q30" not in declared
    ds = src.load(seed=0)
    files = list((tmp_path / "cache").rglob("*.safetensors"))
    assert files, "the Kohn-Sham data set is cached as safetensors"
    again = instantiate(call, "data").load(seed=0)          # read back, not regenerated
    assert len(ds) == 2 and ds.info["E_pair"].unit == "MeV"
    assert torch.equal(ds.fields["E"], again.fields["E"])


def test_an_unphysical_ks_state_is_refused_not_a_sample():
    """Guard (issue 18 item 5) on the Kohn-Sham path: a -400 MeV well of 1 fm squeezes the nucleus
    beyond rho_max = 0.30 fm^-3; the element comes back as E0705, never as a result."""
    lat = AxialLattice(6, 12, 1.2)
    deep = -400.0 * torch.exp(-(lat.R**2 + lat.Z**2) / 1.0)
    out = axial_hf_bcs_batch("Mg24", v_ext=torch.stack([deep, 0 * deep]), max_iter=80, order=4, **COARSE)
    assert isinstance(out[0], BkError) and out[0].code == "E0705"        # measured: rho_max 0.49 fm^-3
    assert "max density" in out[0].diagnostic.message
    assert not isinstance(out[1], BkError) and math.isfinite(out[1].energy)
