import pint
import torch

from bkdsl.physics.dataset import generate_nuclear_densities

KW = dict(nucleus="O16", grid=(19, 38, 0.5), samples=12, batch=6, seed=3,
          excitation_window=(0.0, 3.0), q20_window=(-0.5, 0.5), hist_cap=3)


def test_fields_units_stats_and_determinism():
    a = generate_nuclear_densities(**KW)
    b = generate_nuclear_densities(**{**KW, "batch": 12})
    s = a.stats
    n = s["kept"]
    assert s["generated"] == 12
    assert s["converged"] + s["dropped_unconverged"] == 12
    assert s["converged"] - s["dropped_flatten"] - s["dropped_energy_window"] - s["dropped_q20_window"] == n
    f = a.fields
    assert f["rho"].shape == (n, 1, 19, 38) and f["v"].shape == (n, 1, 19, 38)
    for k in ("E", "Q20", "Q30"):
        assert f[k].shape == (n,)
    assert (f["E"] >= s["E_gs"] - 1e-6).all()
    assert torch.allclose(f["rho"], f["rho_n"] + f["rho_p"])
    ureg = pint.UnitRegistry()
    for k, u in a.units.items():
        ureg.parse_expression(u)
    assert ureg.parse_expression(a.units["rho"]).dimensionality == ureg.parse_expression("1/fm**3").dimensionality
    # deterministic given the seed, independent of the batch size
    assert torch.allclose(a.fields["E"], b.fields["E"], atol=1e-9, rtol=0)
    assert torch.equal(a.fields["v"], b.fields["v"])
