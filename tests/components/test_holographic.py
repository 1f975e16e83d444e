"""Holographic propagators: the AdS₂ kernel, Stiefel construction, the claims (proven and refused)."""

import math

import geoopt
import pytest
import torch

import bkdsl
from bkdsl.nn import holographic as H

DECL = """
propagator p = {comp}(bulk = {D}, boundary = {d}) : {claim}
model m() {{
  input x : [B, {n_in}]
  output y = p(x)
}}
"""


def _check(comp, D, d, claim):
    n_in = D if comp == "bulk_to_boundary" else d
    return [x for x in bkdsl.check_source(DECL.format(comp=comp, D=D, d=d, claim=claim, n_in=n_in), "h.bk") if x.is_error]


def test_kernel_is_the_discretised_ads2_propagator():
    m = H.bulk_to_boundary_kernel(8, 4, delta=1.5)
    z, x = H.ads2_sites(8, 4)
    assert z.tolist() == [0.5] * 4 + [1.0] * 4 and x.tolist() == [0.5, 1.5, 2.5, 3.5] * 2
    j, i = 2, 5
    k = (z[i] / (z[i] ** 2 + (x[i] - (j + 0.5)) ** 2)) ** 1.5
    assert float(m[j, i]) == pytest.approx(float(k * math.log(2.0) / z[i]), rel=1e-12)
    # the kernel peaks where the bulk site sits over the boundary point, closer to the boundary more sharply
    assert int(m[:, 1].argmax()) == 1 and float(m[1, 1]) > float(m[1, 5])


@pytest.mark.parametrize("D,d", [(64, 16), (32, 32), (10, 3)])
def test_stiefel_construction_and_isometry(D, d):
    w = H.ads_stiefel(D, d)
    assert torch.allclose(w.T @ w, torch.eye(d, dtype=torch.float64), atol=1e-12)
    dec = H.BoundaryToBulk(D, d, dtype=torch.float64)
    enc = H.BulkToBoundary(D, d, dtype=torch.float64)
    assert isinstance(dec.w, geoopt.ManifoldParameter) and isinstance(dec.w.manifold, geoopt.Stiefel)
    phi = torch.randn(5, d, dtype=torch.float64)
    assert torch.allclose(dec(phi).norm(dim=-1), phi.norm(dim=-1), atol=1e-12)
    x = torch.randn(5, D, dtype=torch.float64)
    assert bool((enc(x).norm(dim=-1) <= x.norm(dim=-1) + 1e-12).all())
    # the round trip is the orthogonal projection onto range(W): idempotent
    r = H.holographic_roundtrip(x, w)
    assert torch.allclose(H.holographic_roundtrip(r, w), r, atol=1e-12)
    # the polar factor is the closest Stiefel point to the kernel (no random orthonormal frame is closer)
    mt = H.bulk_to_boundary_kernel(D, d).T
    q = torch.linalg.qr(torch.randn(D, d, dtype=torch.float64))[0]
    assert float((w - mt).norm()) <= float((q - mt).norm())


def test_pca_frame_is_optimal_for_low_rank_data():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(24, 4, generator=g, dtype=torch.float64))[0]
    x = torch.randn(200, 4, generator=g, dtype=torch.float64) @ basis.T
    w = H.fit_stiefel_pca(x, 4)
    assert torch.allclose(H.holographic_roundtrip(x, w), x, atol=1e-10)
    with pytest.raises(ValueError):
        H.fit_stiefel_pca(torch.tensor([[float("nan"), 1.0]]), 1)


def test_isometric_decoder_claim_is_proven():
    assert _check("boundary_to_bulk", 64, 16, "isometric") == []
    assert _check("bulk_to_boundary", 64, 16, "contractive") == []
    assert _check("bulk_to_boundary", 16, 16, "isometric") == []   # square: orthogonal


def test_isometric_encoder_claim_is_refused_by_the_probe():
    (d,) = _check("bulk_to_boundary", 64, 16, "isometric")
    assert d.code == "E0302" and "max|‖Ux‖/‖x‖ − 1|" in d.label and d.span.line == 2
    (d,) = _check("bulk_to_boundary", 64, 16, "unitary")
    assert d.code == "E0302"


def test_bad_sizes_are_diagnostics():
    diags = bkdsl.check_source(DECL.format(comp="boundary_to_bulk", D=8, d=16, claim="isometric", n_in=16), "h.bk")
    assert any(x.code == "E0201" and "boundary" in x.message for x in diags)
    diags = bkdsl.check_source(DECL.format(comp="bulk_to_boundary", D=64, d=16, claim="contractive", n_in=63), "h.bk")
    assert any(x.is_error for x in diags)


def test_worked_spec_claims_established_in_the_report():
    from pathlib import Path

    c = bkdsl.compile_file(Path(__file__).parents[2] / "specs" / "holographic_cache.bk")
    claims = {(r.subject, r.prop): r.proof for r in c.ir.claims}
    assert claims[("decode", "isometric")].holds and claims[("encode", "contractive")].holds
    assert "analytic+probe" in c.report


def test_stiefel_parameter_needs_a_riemannian_optimizer_and_stays_on_the_manifold():
    from bkdsl.diagnostics import BkError
    from bkdsl.train.optim import build_optimizer

    model = torch.nn.Sequential(H.BulkToBoundary(12, 4), H.BoundaryToBulk(12, 4))
    with pytest.raises(BkError) as e:
        build_optimizer("adam", {"lr": 1e-2}, model)
    assert e.value.diagnostic.code == "E0608"
    opt = build_optimizer("riemannian_adam", {"lr": 1e-2}, model)
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(0))
    for _ in range(30):
        opt.zero_grad()
        ((model(x) - x) ** 2).mean().backward()
        opt.step()
    for m in model:
        w = m.w.detach().double()
        assert torch.allclose(w.T @ w, torch.eye(4, dtype=torch.float64), atol=1e-5)
