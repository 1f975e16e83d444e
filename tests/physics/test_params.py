"""Every parameter of ``nuclear_densities(...)`` is validated: a bad value is E0201, never a NaN field."""

import pytest
import torch

from bkdsl.components.training import instantiate
from bkdsl.diagnostics import BkError
from bkdsl.physics.dataset import generate_nuclear_densities
from bkdsl.physics.params import NuclearDensitiesParams, validate_generator_kwargs
from bkdsl.semantics.values import CallValue

BAD = [
    ({"nucleus": "Xx7"}, "nucleus"),
    ({"nucleus": "U1"}, "nucleus"),
    ({"functional": "nope"}, "functional"),
    ({"potential": "square_well"}, "potential"),
    ({"samples": 0}, "samples"),
    ({"samples": 2.5}, "samples"),
    ({"grid": [10, 21, 0.8]}, "grid"),
    ({"grid": [10, 20]}, "grid"),
    ({"grid": [10, 20, -0.8]}, "grid"),
    ({"grid": [0, 20, 0.8]}, "grid"),
    ({"device": "tpu"}, "device"),
    ({"batch": 0}, "batch"),
    ({"v0": -1.0}, "v0"),
    ({"v0": []}, "v0"),
    ({"v0": [0.6, float("nan")]}, "v0"),
    ({"potential": "rnd", "v0": 1.0}, "v0"),
    ({"solve_box": [0, 20]}, "solve_box"),
    ({"solve_box": "big"}, "solve_box"),
    ({"k_cut": 0.0}, "k_cut"),
    ({"k_cut": float("inf")}, "k_cut"),
    ({"k_cut": float("nan")}, "k_cut"),
    ({"com_C": -1.0}, "com_C"),
    ({"coulomb": "maybe"}, "coulomb"),
    ({"excitation_window": [5.0, 1.0]}, "excitation_window"),
    ({"excitation_window": [0.0]}, "excitation_window"),
    ({"q20_window": [float("nan"), 1.0]}, "q20_window"),
    ({"q20_relative": "x"}, "q20_relative"),
    ({"flatten": "x"}, "flatten"),
    ({"hist_bins": 0}, "hist_bins"),
    ({"hist_cap": 0}, "hist_cap"),
    ({"max_iter": 0}, "max_iter"),
    ({"tol_res": 0.0}, "tol_res"),
    ({"tol_de": -1e-3}, "tol_de"),
    ({"hessian": "x"}, "hessian"),
    ({"chunk": 0}, "chunk"),
    ({"compile": "yes"}, "compile"),
    ({"potential": "sho", "potential_kwargs": {"v_min": 1.0}}, "v_min"),
    ({"potential": "rnd", "potential_kwargs": {"v_min": 2.0, "v_max": 1.0}}, "v_min"),
    ({"potential": "rnd", "potential_kwargs": {"mu2_min": -1.0}}, "mu2_min"),
    ({"potential_kwargs": {"n_shell": 2.5}}, "n_shell"),
    ({"potential_kwargs": {"q": float("inf")}}, "q"),
    ({"nuclues": "U236"}, "nuclues"),
    # solver = "hf-bcs" (the Kohn-Sham data of thesis ch. 3) and its own keywords
    ({"solver": "dft"}, "solver"),
    ({"solver": "hf-bcs"}, "random_ho"),                                  # default family is random_ho
    ({"solver": "hf-bcs", "potential": "sho", "k_cut": 2.0}, "k_cut"),
    ({"solver": "hf-bcs", "potential": "rnd", "excitation_window": [0, 5]}, "excitation_window"),
    ({"solver": "hf-bcs", "potential": "sho", "coulomb": True}, "coulomb"),
    ({"solver": "hf-bcs", "potential": "sho", "stencil": 3}, "stencil"),
    ({"stencil": 8}, "stencil"),                                           # an hf-bcs keyword with etf
    ({"solver": "hf-bcs", "potential": "sho", "omega_max2": 4}, "omega_max2"),
    ({"solver": "hf-bcs", "potential": "sho", "omega_max2": 0}, "omega_max2"),
    ({"solver": "hf-bcs", "potential": "sho", "cuts": "x"}, "cuts"),
    ({"cuts": False}, "cuts"),
    ({"solver": "hf-bcs", "potential": "sho", "tol_e": 0.0}, "tol_e"),
    ({"solver": "hf-bcs", "potential": "sho", "tol_rho": float("nan")}, "tol_rho"),
]


@pytest.mark.parametrize("kw, where", BAD, ids=[f"{i}-{w}" for i, (_, w) in enumerate(BAD)])
def test_bad_parameter_is_a_coded_diagnostic(kw, where):
    with pytest.raises(BkError) as e:
        instantiate(CallValue("nuclear_densities", [], kw), "data")
    assert e.value.code == "E0201" and where in e.value.diagnostic.message + (e.value.diagnostic.help or "")
    with pytest.raises(BkError) as e2:           # the Python entry point refuses it the same way
        validate_generator_kwargs(kw)
    assert e2.value.code == "E0201"


def test_every_schema_field_is_covered_by_a_bad_case():
    covered = {k for kw, _ in BAD for k in kw}
    missing = set(NuclearDensitiesParams.model_fields) - covered
    assert missing == set(), f"no bad-value test for {sorted(missing)}"


def test_good_call_passes_only_what_was_written():
    c = instantiate(CallValue("nuclear_densities", [], {"nucleus": "Mg24", "potential": "rnd", "coulomb": False,
                                                         "grid": [10, 20, 0.8], "split": [0.8, 0.1, 0.1]}), "data")
    assert c.params.generator_kwargs() == {"nucleus": "Mg24", "potential": "rnd", "coulomb": False,
                                           "grid": (10, 20, 0.8)}


def test_mg24_rnd_without_coulomb_has_no_nan_field():
    """The v0 NaN of issue 18: the rnd family draws no random-HO amplitude, so there is no v0 field."""
    ds = generate_nuclear_densities(nucleus="Mg24", potential="rnd", coulomb=False, samples=4, batch=4,
                                    seed=0, device="cpu")
    assert "v0" not in ds.fields and "v0" not in ds.units and len(ds) > 0
    for k, v in ds.fields.items():
        assert bool(torch.isfinite(v.double()).all()), k
    assert ds.stats["dropped_unphysical"] == 0


def test_good_hf_bcs_call_passes_its_own_keywords():
    c = instantiate(CallValue("nuclear_densities", [], {"nucleus": "Mg24", "potential": "rnd", "solver": "hf-bcs",
                                                         "stencil": 6, "coulomb": False, "cuts": False}), "data")
    assert c.params.generator_kwargs() == {"nucleus": "Mg24", "potential": "rnd", "solver": "hf-bcs", "stencil": 6,
                                           "coulomb": False, "cuts": False}
