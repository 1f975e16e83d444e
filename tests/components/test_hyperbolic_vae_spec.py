"""specs/hyperbolic_vae.bk: `bkdsl check` establishes the posterior's `hyperbolic` claim, a short
`bkdsl train --set` run from the command line finishes with finite losses whose KL and MMD terms are
recorded, and the trained latent lies on the hyperboloid; the ball variant of the bench also checks."""

from __future__ import annotations

import json
import math

import torch

import bkdsl
from bkdsl.cli import main
from bkdsl.nn import gmvae as G
from tests.conftest import ROOT

SPEC = ROOT / "specs" / "hyperbolic_vae.bk"


def test_check_ok_and_claim_established(capsys):
    assert main(["check", str(SPEC)]) == 0
    c = bkdsl.compile_file(SPEC)
    (claim,) = c.ir.claims
    assert (claim.subject, claim.prop, claim.proof.holds) == ("posterior", "hyperbolic", True)
    sig = c.model_signature(c.main_call)
    assert sig.outputs["z"].manifold == "lor" and sig.outputs["z"].shape == ("B", 3)


def test_ball_variant_checks():
    text = SPEC.read_text().replace("manifold lor = lorentz(k = 1.0)", "manifold lor = poincare(c = 1.0)")
    assert text != SPEC.read_text()
    c = bkdsl.compile_source(text, name="ball.bk")
    assert not [d for d in c.diagnostics if d.is_error]
    assert c.model_signature(c.main_call).outputs["z"].shape == ("B", 2)


def test_short_training_run_from_the_cli(tmp_path):
    from bkdsl.trained import load_run

    torch.set_num_threads(1)
    run = tmp_path / "run"
    rc = main(["train", str(SPEC), "--out", str(run), "--quiet", "--device", "cpu",
               "--set", "train.epochs=3", "--set", "data.depth=4", "--set", "train.loss=elbo(lam = 0.5)"])
    assert rc == 0
    epochs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in l]
    epochs = [e for e in epochs if e.get("event") == "epoch"]
    assert len(epochs) == 3
    last = epochs[-1]
    kl = next(v for k, v in last.items() if k.startswith("val.kl_wrapped_normal"))
    mmd = next(v for k, v in last.items() if k.startswith("val.mmd_isotropy"))
    assert math.isfinite(last["train.loss"]) and math.isfinite(kl) and kl > 0 and mmd >= -1e-3
    assert epochs[-1]["train.loss"] < epochs[0]["train.loss"]
    net = load_run(run, weights="last")
    x = G.branching_tree(depth=4, branching=2, dim=32, noise=1.0, copies=4, seed=0)["x"]
    with torch.no_grad():
        z = net(x=x)["z"].double()
    assert torch.isfinite(z).all()
    assert (-z[:, 0] ** 2 + (z[:, 1:] ** 2).sum(-1) + 1).abs().max() < 1e-4 * z[:, 0].max() ** 2


def _variant(old: str, new: str) -> str:
    text = SPEC.read_text()
    assert old in text
    return text.replace(old, new)


KL = "kl_wrapped_normal(model.z, mu = model.mu, sigma = model.sigma, manifold = lor)"


def test_check_refuses_a_kl_without_the_posterior_parameters():
    errs = [d for d in bkdsl.check_source(_variant(KL, "kl_wrapped_normal(model.z, manifold = lor)"), "v.bk")
            if d.is_error]
    assert [d.code for d in errs] == ["E0204"] and "mu and sigma" in errs[0].message
    line = next(i for i, l in enumerate(SPEC.read_text().splitlines(), 1) if "kl_wrapped_normal" in l)
    assert errs[0].span.line == line


def test_check_refuses_a_kl_on_a_flat_manifold():
    text = _variant(KL, KL.replace("manifold = lor", "manifold = flat"))
    text = text.replace("manifold lor = lorentz(k = 1.0)\n", "manifold lor = lorentz(k = 1.0)\nmanifold flat = euclidean()\n")
    errs = [d for d in bkdsl.check_source(text, "v.bk") if d.is_error]
    assert [d.code for d in errs] == ["E0201"] and "`flat`" in errs[0].message
