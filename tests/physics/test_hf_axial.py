"""Axial Kohn-Sham HF+BCS: stencils, the Hamiltonian as the derivative of the discrete energy, a coarse Mg24,
the 16O validation against the spherical solver, the pairing window, the external field and its batch."""

import math

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.physics.cli import main
from bkdsl.physics.hf_axial import (THESIS_TEXT, AxialLattice, AxialResult, AxialSkyrme, BroydenMixer, _bcs,
                                    axial_hf_bcs,
                                    axial_hf_bcs_batch, central, pairing_window, staggered)
from bkdsl.physics.hf_spherical import hf_extrapolated
from bkdsl.physics.skyrme import SLY4


@pytest.mark.parametrize("order", [2, 4, 6, 8])
def test_stencils_are_exact_on_polynomials_of_their_order(order):
    n, h = 24, 0.5
    x = (torch.arange(n, dtype=torch.float64) - n / 2 + 0.5) * h       # centres, symmetric about 0
    xf = (torch.arange(n + 1, dtype=torch.float64) - n / 2) * h        # faces
    D, I = staggered(n, h, order, None)
    C = central(n, h, order, None)
    k = order // 2 + 1                                                  # interior rows only (walls cut stencils)
    for p in range(order + 1):
        f = x**p
        df = p * xf ** max(p - 1, 0) if p else torch.zeros_like(xf)
        assert torch.allclose((D @ f)[k:-k], df[k:-k], atol=1e-9 * (1 + df.abs().max()))
        if p < order:
            assert torch.allclose((I @ f)[k:-k], (xf**p)[k:-k], atol=1e-9 * (1 + (xf**p).abs().max()))
        dc = p * x ** max(p - 1, 0) if p else torch.zeros_like(x)
        assert torch.allclose((C @ f)[k:-k], dc[k:-k], atol=1e-9 * (1 + dc.abs().max()))


def test_axis_parity_folding():
    n, h = 12, 0.5
    r = (torch.arange(n, dtype=torch.float64) + 0.5) * h
    De, _ = staggered(n, h, 4, 1)
    Do, _ = staggered(n, h, 4, -1)
    assert abs(float((De @ (r**2))[0])) < 1e-12          # an even function has zero slope on the axis
    assert float((Do @ r)[0]) == pytest.approx(1.0)      # an odd one keeps its slope


@pytest.mark.parametrize("variant", [{}, {"j2_terms": "skyrme"}, {"j2_terms": "b1prime"},
                                     {"pairing_density": "species"}])
def test_hamiltonian_is_the_derivative_of_the_discrete_energy(variant):
    """eps_k = g_k^T h g_k must equal (1/2) dE/d(v_k^2) and Delta_k = -(1/2) dE/d(u_k v_k): the fields
    code and the Hamiltonian code are written separately, so this checks one against the other
    (including the spin-orbit cross terms and the axis parities), also with the item-1 variants of the
    functional (J^2 terms, rho_q in the pairing form factor)."""
    lat = AxialLattice(4, 8, 0.8, order=4)
    F = AxialSkyrme(SLY4, 24, lat, V0=-683.344, com_C=0.625, **variant)
    gen = torch.Generator().manual_seed(1)
    M = 4 * 8
    om2 = 3
    g = torch.linalg.qr(torch.randn(2 * M, 3, generator=gen, dtype=torch.float64))[0].T   # 3 orthonormal states
    vv = torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64)
    uv = torch.sqrt(vv * (1 - vv))

    gg = g.reshape(3, 2, 4, 8)
    other = F.fields(gg[:, 0] * lat.S, gg[:, 1] * lat.S, 0.7 * vv, 0.7 * uv, om2)   # the other species, fixed

    def fields_of(vv_, uv_):
        f = F.fields(gg[:, 0] * lat.S, gg[:, 1] * lat.S, vv_, uv_, om2)
        return {k: torch.stack([v, other[k]]) for k, v in f.items()}

    def energy(vv_, uv_):
        return F.energy(fields_of(vv_, uv_))["total"]

    Fr = {k: v.detach().clone().requires_grad_(True) for k, v in fields_of(vv, uv).items()}
    grads = torch.autograd.grad(F.energy(Fr)["total"], [Fr[k] for k in AxialSkyrme.FIELDS])
    G = dict(zip(AxialSkyrme.FIELDS, grads))
    h, K, _ = F.hamiltonian(G, 0, om2)
    for k in range(3):
        d = torch.zeros(3, dtype=torch.float64)
        d[k] = 1e-6
        dE_dv = float((energy(vv + d, uv) - energy(vv - d, uv)) / 2e-6)
        dE_duv = float((energy(vv, uv + d) - energy(vv, uv - d)) / 2e-6)
        assert float(g[k] @ h @ g[k]) == pytest.approx(0.5 * dE_dv, rel=1e-6, abs=1e-6)
        assert float(-0.5 * g[k] @ K @ g[k]) == pytest.approx(-0.5 * dE_duv, rel=1e-6, abs=1e-6)
    assert torch.allclose(h, h.T)


def test_coarse_mg24_converges_with_pairing():
    """A coarse stand-in for the thesis run (CI budget): 24Mg, no Coulomb, 6 x 12 cells of 1.2 fm."""
    r = axial_hf_bcs("Mg24", grid=(6, 12, 1.2), order=4, omega_max2=5, mix=0.3, tol_e=1e-5, tol_rho=1e-6, max_iter=100)
    assert r.converged and 150 < r.binding_energy < 300
    assert r.components["pairing"] < 0 and min(r.pairing_gap) > 0.1
    assert abs(r.fermi[0] - r.fermi[1]) < 1e-6             # N = Z and no Coulomb: isospin symmetric
    assert abs(r.Q20) < 0.3 and r.iterations < 60        # Broyden: ~26 iterations (an oblate stationary point)
    # held spherical by the quadratic Q20 constraint (as the thesis' state is spherical)
    s = axial_hf_bcs("Mg24", grid=(6, 12, 1.2), order=4, omega_max2=5, tol_e=1e-5, tol_rho=1e-6, max_iter=100,
                     q20_constraint=(0.0, 2000.0))
    assert s.converged and abs(s.Q20) < 0.01 and s.iterations < 60
    assert s.components["q20_constraint"] < 0.01 and s.energy == pytest.approx(s.components["edf"])
    assert 150 < s.binding_energy < 300 and min(s.pairing_gap) > 0.1


def test_refusals():
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=(6, 13, 1.2))
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=(6, 12, 1.2), order=3)
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", coulomb=True)
    assert e.value.code == "E0201"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=(6, 12, 1.2), max_iter=2)
    assert e.value.code == "E0704"


def test_cli_hf_bcs_wiring(capsys):
    assert main(["ground-state", "Mg24", "--method", "hf-bcs", "--grid", "6,13,1.2", "--json"]) == 1
    assert '"E0703"' in capsys.readouterr().out
    assert main(["ground-state", "Mg24", "--method", "hf-bcs", "--grid", "6;12"]) == 1
    assert "E0206" in capsys.readouterr().err


# ---- pairing window, filling, quadrature, the 16O validation, the external field ----

def test_filling_without_pairing_is_sharp_and_shares_a_degenerate_last_shell():
    """B.28 at Delta = 0 is a step, undefined at eps = lambda (the old bisection landed lambda on the last
    occupied level and gave it v^2 = 1/2, so 16O without pairing oscillated by +-10 MeV)."""
    eps = torch.tensor([-3.0, -1.0, -1.0, 2.0], dtype=torch.float64)
    vv, uv, lam = _bcs(eps, torch.zeros(4, dtype=torch.float64), 4)
    assert vv.tolist() == [1.0, 0.5, 0.5, 0.0] and uv.abs().max() == 0
    vv, _, lam = _bcs(eps, torch.zeros(4, dtype=torch.float64), 6)
    assert vv.tolist() == [1.0, 1.0, 1.0, 0.0] and lam == pytest.approx(0.5)
    vv, _, lam = _bcs(eps, torch.zeros(4, dtype=torch.float64), 2)
    assert vv.tolist() == [1.0, 0.0, 0.0, 0.0] and lam == pytest.approx(-2.0)
    # with pairing: particle number exact, lambda inside the spectrum
    vv, uv, lam = _bcs(eps, torch.full((4,), 1.0, dtype=torch.float64), 4)
    assert float(2 * vv.sum()) == pytest.approx(4.0, abs=1e-10) and -3 < lam < 2
    assert torch.allclose(uv, torch.sqrt(vv * (1 - vv)))


def test_pairing_window_sharp_and_smooth():
    e = torch.tensor([0.0, 59.0, 59.999, 60.0, 60.001, 61.0, 80.0], dtype=torch.float64)
    assert pairing_window(e, 60.0, 0.0).tolist() == [1, 1, 1, 0, 0, 0, 0]
    f = pairing_window(e, 60.0, 0.5)
    assert float(f[3]) == pytest.approx(0.5) and float(f[0]) > 1 - 1e-12 and float(f[-1]) < 1e-17
    assert bool((f[1:] <= f[:-1]).all())                     # monotone
    assert abs(float(f[4] - f[2])) < 0.01                    # continuous across the cut (a sharp one jumps by 1)
    with pytest.raises(BkError) as e_:
        axial_hf_bcs("Mg24", grid=(6, 12, 1.2), cut_diffuseness=float("nan"))
    assert e_.value.code == "E0703"


def test_endpoint_corrected_radial_measure():
    """The midpoint measure 2 pi r_i h^2 on the half-step sub-lattice errs by (h^2/24) g(0) per unit
    length of axis (Euler-Maclaurin for the odd integrand r g): +0.9 % on a Gaussian of 2.5 fm at
    h = 0.8 fm, and 1.8 MeV of spurious binding in 16O. The corrected weights are exact to O(h^4)."""
    a = 2.5
    exact = math.pi**1.5 * a**3
    errs = {}
    for quad in ("midpoint", "endpoint"):
        L = AxialLattice(10, 20, 0.8, 8, quad)
        f = torch.exp(-(L.R**2 + L.Z**2) / a**2)
        rf = (torch.arange(11, dtype=torch.float64) * 0.8)[:, None]
        ff = torch.exp(-(rf**2 + L.z[None, :] ** 2) / a**2)
        errs[quad] = (abs(float((f * L.w).sum()) / exact - 1), abs(float((ff * L.w_rf).sum()) / exact - 1))
    assert min(errs["midpoint"]) > 5e-3
    assert max(errs["endpoint"]) < 5e-4
    with pytest.raises(BkError) as e:
        AxialLattice(4, 8, 0.8, 4, "simpson")
    assert e.value.code == "E0703"


def test_o16_without_pairing_matches_the_spherical_solver():
    """J, the spin-orbit sign and the lattice against the spherical HF (same functional, no Coulomb,
    no pairing, h -> 0 by Richardson): on the thesis lattice (0.8 fm, order 8) the energy agrees to
    0.2 % (measured 0.06 %) and the spin-orbit splitting p1/2 - p3/2 to 2 %. With J's sign flipped
    the splitting would change sign; with the midpoint measure the energy is 1.3 % too bound."""
    sph = hf_extrapolated("O16", coulomb=False, step=0.1)
    ax = axial_hf_bcs("O16", V0=0.0, omega_max2=3, order=8, tol_e=1e-7, tol_rho=1e-7, max_iter=60)
    assert ax.converged and ax.iterations < 40
    e_ref = sph.extrapolated["energy"]
    assert abs(ax.energy - e_ref) < 2e-3 * abs(e_ref)
    lv = {lv_.label: lv_.energy for lv_ in sph.levels if lv_.q == "n"}
    occ = sorted(x["energy"] for x in ax.levels if x["q"] == "n" and x["v2"] > 0.5)
    assert len(occ) == 4                                         # 0s1/2, 0p3/2 (Omega 1/2, 3/2), 0p1/2
    so_ax = occ[3] - 0.5 * (occ[1] + occ[2])
    so_sph = lv["1p1/2"] - lv["1p3/2"]
    assert so_sph > 5 and abs(so_ax - so_sph) < 0.02 * so_sph
    assert abs(occ[0] - lv["1s1/2"]) < 0.3


def test_external_field_enters_as_hellmann_feynman():
    """dE_total/dlam = \\int v rho for E_total(lam) = min E[rho] + lam \\int v rho (thesis eq. 1.25),
    on the coarse lattice with an SHO field (eq. 3.9: k = 0.5 MeV fm^-2, z0 = 0.8 fm). Without pairing
    the iteration is exactly variational (measured 2e-6); HF+BCS is not (its orbitals diagonalise h,
    not v^2 h - u v Delta), and there the theorem holds to 0.6 % only, so pairing is off here."""
    grid = (6, 12, 1.2)
    L = AxialLattice(*grid, 4, "endpoint")
    v = 0.25 * (L.R**2 + (L.Z - 0.8) ** 2)
    kw = dict(grid=grid, order=4, omega_max2=3, tol_e=1e-10, tol_rho=1e-9, max_iter=200, V0=0.0,
              q20_constraint=(0.0, 2000.0))
    d = 0.02
    ep, em = (axial_hf_bcs("Mg24", v_ext=s * d * v, **kw) for s in (1, -1))
    r0 = axial_hf_bcs("Mg24", v_ext=0 * v, **kw)
    fd = (ep.components["total"] - em.components["total"]) / (2 * d)
    vr = float((v * r0.rho.sum(0) * L.w).sum())
    assert fd == pytest.approx(vr, rel=1e-4)
    assert ep.components["external"] == pytest.approx(d * float((v * ep.rho.sum(0) * L.w).sum()))
    assert ep.energy == pytest.approx(ep.components["edf"])   # the reported E leaves the field out
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=grid, v_ext=torch.full((6, 12), float("nan")))
    assert e.value.code == "E0703"
    with pytest.raises(BkError) as e:
        axial_hf_bcs("Mg24", grid=grid, v_ext=torch.zeros(5, 12))
    assert e.value.code == "E0703"


def test_batch_over_external_fields_equals_one_at_a_time():
    """Two SHO fields (eq. 3.9) solved as one batch (batched eigh per Omega) give the same states as
    two separate solves; an element that cannot converge comes back as its E0704, not raised."""
    grid = (6, 12, 1.2)
    L = AxialLattice(*grid, 4, "endpoint")
    vs = torch.stack([0.5 * k * (L.R**2 + (L.Z - z0) ** 2) for k, z0 in ((0.2, 0.8), (0.9, -0.8))])
    kw = dict(grid=grid, order=4, omega_max2=3, tol_e=1e-8, tol_rho=1e-7, max_iter=150,
              q20_constraint=(0.0, 2000.0))
    batch = axial_hf_bcs_batch("Mg24", v_ext=vs, **kw)
    assert len(batch) == 2
    for v, b in zip(vs, batch):
        one = axial_hf_bcs("Mg24", v_ext=v, **kw)
        assert isinstance(b, AxialResult) and b.converged
        assert b.energy == pytest.approx(one.energy, abs=1e-6)
        assert b.components["external"] == pytest.approx(one.components["external"], abs=1e-6)
        assert torch.allclose(b.rho, one.rho, atol=1e-7)
        assert b.pairing_gap[0] == pytest.approx(one.pairing_gap[0], abs=1e-6)
    # the fields matter: a deeper trap (k = 0.9) changes E_edf by MeV
    assert abs(batch[1].energy - batch[0].energy) > 1.0
    short = axial_hf_bcs_batch("Mg24", v_ext=vs[:2], **dict(kw, max_iter=3))
    assert all(isinstance(x, BkError) and x.code == "E0704" for x in short)
    with pytest.raises(BkError) as e:
        axial_hf_bcs_batch("Mg24", v_ext=torch.zeros(12), grid=grid)
    assert e.value.code == "E0703"


def test_pairing_rearrangement_switch_changes_the_mean_field_only():
    """pairing_rearrangement=False (the thesis' choice) keeps the energy and removes exactly
    dE_pair/drho_q = -(V0 / 4 rho0) sum_q' rho~_q'^2 (gamma = 1) from U_q."""
    lat = AxialLattice(4, 8, 0.8, order=4)
    gen = torch.Generator().manual_seed(2)
    fields = {k: torch.rand(2, *shape, generator=gen, dtype=torch.float64) * 0.05 for k, shape in
              (("rho", (4, 8)), ("tau_rf", (5, 8)), ("tau_zf", (4, 9)), ("tau_c", (4, 8)), ("J_r", (4, 8)),
               ("J_z", (4, 8)), ("kappa", (4, 8)))}
    out = {}
    for rearr in (True, False):
        F = AxialSkyrme(SLY4, 24, lat, V0=-683.344, com_C=0.625, pairing_rearrangement=rearr)
        Fr = {k: v.clone().requires_grad_(True) for k, v in fields.items()}
        e = F.energy(Fr)["total"]
        out[rearr] = (float(e.detach()), torch.autograd.grad(e, Fr["rho"])[0])
    assert out[True][0] == out[False][0]
    expect = -(-683.344 / (4 * 0.16)) * (fields["kappa"] ** 2).sum(0) * lat.w
    assert torch.allclose(out[True][1] - out[False][1], expect.expand(2, 4, 8), rtol=1e-10, atol=1e-12)


def test_isospin_shortcut_equals_the_two_species_solve():
    """N = Z, no Coulomb: solving one species and copying it (as the thesis does) gives the state of the
    full two-species iteration (forced here by a 1e-12 MeV difference between the n and p fields)."""
    grid = (6, 12, 1.2)
    kw = dict(grid=grid, order=4, omega_max2=3, tol_e=1e-8, tol_rho=1e-7, max_iter=100, q20_constraint=(0.0, 2000.0))
    one = axial_hf_bcs("Mg24", **kw)
    tiny = torch.zeros(2, 6, 12, dtype=torch.float64)
    tiny[1] = 1e-12
    two = axial_hf_bcs("Mg24", v_ext=tiny, **kw)
    assert one.energy == pytest.approx(two.energy, abs=1e-6)
    assert abs(two.fermi[0] - two.fermi[1]) < 1e-9 and torch.allclose(two.rho[0], two.rho[1], atol=1e-9)


def test_broyden_restarts_when_the_residual_grows():
    m = BroydenMixer(0.3, restart=2.0)
    x = {"a": torch.zeros(3, dtype=torch.float64)}
    m(x, {"a": torch.full((3,), 1.0, dtype=torch.float64)})
    m(x, {"a": torch.full((3,), 0.9, dtype=torch.float64)})
    assert m.restarts == 0 and len(m.dF) == 1
    out = m(x, {"a": torch.full((3,), 5.0, dtype=torch.float64)})      # residual x5: history dropped
    assert m.restarts == 1 and m.dF == [] and torch.allclose(out["a"], torch.full((3,), 1.5, dtype=torch.float64))


def _random_fields(lat, seed=2):
    gen = torch.Generator().manual_seed(seed)
    F = AxialSkyrme(SLY4, 24, lat, V0=-683.344)
    g = torch.linalg.qr(torch.randn(2 * lat.nr * lat.nz, 3, generator=gen, dtype=torch.float64))[0].T
    gg = g.reshape(3, 2, lat.nr, lat.nz)
    vv = torch.tensor([0.9, 0.5, 0.2], dtype=torch.float64)
    f = F.fields(gg[:, 0] * lat.S, gg[:, 1] * lat.S, vv, torch.sqrt(vv * (1 - vv)), 3)
    return {k: torch.stack([v, 0.5 * v]) for k, v in f.items()}


def test_j2_forms_and_pairing_density_match_their_formulas():
    """Issue 18 item 1 flags: the J^2 energies are the printed formulas (Engel et al. 1975; (b1'/2) sum J_q^2
    for B.10's dropped term), the 'species' pairing puts rho_q in the form factor; unknown forms: E0703."""
    lat = AxialLattice(4, 8, 0.8, order=4)
    F_ = _random_fields(lat)
    p = SLY4
    Jr, Jz = F_["J_r"], F_["J_z"]
    jq2 = (Jr**2 + Jz**2)
    j2 = Jr.sum(0) ** 2 + Jz.sum(0) ** 2
    engel = float(((-(p.t1 * p.x1 + p.t2 * p.x2) / 16 * j2 + (p.t1 - p.t2) / 16 * jq2.sum(0)) * lat.w).sum())
    b1p = (p.t1 * (1 + 2 * p.x1) - p.t2 * (1 + 2 * p.x2)) / 8
    bprime = float((0.5 * b1p * jq2.sum(0) * lat.w).sum())
    e = {form: AxialSkyrme(SLY4, 24, lat, V0=-683.344, j2_terms=form).energy(F_) for form in ("none", "skyrme", "b1prime")}
    assert float(e["none"]["j2"]) == 0.0
    assert float(e["skyrme"]["j2"]) == pytest.approx(engel, rel=1e-12) and abs(engel) > 1e-6
    assert float(e["b1prime"]["j2"]) == pytest.approx(bprime, rel=1e-12)
    assert float(e["skyrme"]["edf"] - e["none"]["edf"]) == pytest.approx(engel, rel=1e-10)
    rho, rq, kap = F_["rho"].sum(0), F_["rho"], F_["kappa"]
    spec = float((0.25 * -683.344 * ((1 - rq / 0.16) * kap**2).sum(0) * lat.w).sum())
    tot = float((0.25 * -683.344 * (1 - rho / 0.16) * (kap**2).sum(0) * lat.w).sum())
    assert float(e["none"]["pairing"]) == pytest.approx(tot, rel=1e-12)
    es = AxialSkyrme(SLY4, 24, lat, V0=-683.344, pairing_density="species").energy(F_)
    assert float(es["pairing"]) == pytest.approx(spec, rel=1e-12) and abs(spec - tot) > 1e-6
    with pytest.raises(BkError) as ex:
        AxialSkyrme(SLY4, 24, lat, V0=-683.344, j2_terms="tensor")
    assert ex.value.code == "E0703"
    with pytest.raises(BkError) as ex:
        AxialSkyrme(SLY4, 24, lat, V0=-683.344, pairing_density="neutron")
    assert ex.value.code == "E0703"


def test_kinetic_free_is_eq_3_13():
    """E_kin = hbar^2/2m (1 - 1/A) int tau on the lattice's face and cell weights; the effective-mass part
    is not in it (it is in E_int = E_Skyrme - E_kin)."""
    lat = AxialLattice(4, 8, 0.8, order=4)
    F_ = _random_fields(lat)
    F = AxialSkyrme(SLY4, 24, lat, V0=-683.344)
    h2m = SLY4.hbar2_2m * (1 - 1 / 24)
    want = h2m * float((F_["tau_rf"].sum(0) * lat.w_rf).sum() + (F_["tau_zf"].sum(0) * lat.w_zf).sum()
                       + (F_["tau_c"].sum(0) * lat.w).sum())
    e = F.energy(F_)
    assert float(e["kinetic_free"]) == pytest.approx(want, rel=1e-12)
    assert abs(float(e["kinetic"]) - want) > 1e-3          # the effective-mass terms make a difference


def test_thesis_text_preset_runs_and_differs_from_the_default():
    """THESIS_TEXT (eq. 3.19 midpoint measure, ch. 3 sharp window, App. B no rearrangement) is a valid set
    of solver keywords and changes the solution (coarse lattice)."""
    kw = dict(grid=(6, 12, 1.2), omega_max2=5, tol_e=1e-6, tol_rho=1e-6, max_iter=150, q20_constraint=(0.0, 2000.0))
    a = axial_hf_bcs("Mg24", **kw)
    b = axial_hf_bcs("Mg24", **kw, **THESIS_TEXT)
    assert a.converged and b.converged and abs(a.energy - b.energy) > 0.1
