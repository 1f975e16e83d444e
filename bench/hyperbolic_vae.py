"""Poincaré vs Lorentz in float32 for a Gaussian-manifold VAE on a branching tree (issue #17 item 2).

Two parts, one JSON (CPU is enough):

1. **stress** — points at geodesic distance r = 2 … 40 from the origin, made in float64 and stored in
   float32 on each model; reported: the float32 distance to the origin against r (relative error),
   whether the ball point hit the boundary (√c‖p‖ rounds to ≥ 1) or gave Inf/NaN.
2. **vae** — the same VAE (MLP encoder → tangent mean and log σ at the origin, μ = exp₀, z from the
   wrapped normal, MLP decoder on log₀ z; loss = MSE + β·KL (Monte Carlo: log q(z|x) − log p(z), prior
   the wrapped normal at the origin, σ = 1) + λ·MMD(log₀ z, N(0, I))) trained in float32 on the Poincaré
   ball and on the hyperboloid (geoopt's maps, bkdsl.nn.gmvae), each with λ = 0 and λ > 0. Reported: NaN
   (and the step), points at the float32 boundary, distortion of tree distances by the latent distances of
   the node means (mean |d/(s·d_tree) − 1| with s the median ratio, and Spearman ρ), effective rank of log₀ z.

    python bench/hyperbolic_vae.py --out bench/results/2026-12-03-hyperbolic_vae.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bkdsl.nn import gmvae as G  # noqa: E402
from bkdsl.nn import lorentz as L  # noqa: E402
from bkdsl.nn import poincare as P  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "hyperbolic_vae.bk"
LORENTZ_LINE = "manifold lor = lorentz(k = 1.0)"
BALL_LINE = "manifold lor = poincare(c = 1.0)"
FP32_BALL_SAFE_RADIUS = 15.0  # part 1: beyond r ≈ 15 the float32 ball loses > 0.5 % of the distance
# geoopt's PoincareBall projects every float32 result into ‖p‖ ≤ (1 − 4e-3)/√c (stereographic/math.py
# `_project`, eps = 4e-3 for float32): points there were clamped, i.e. moved to radius ≤ 2 artanh(0.996) ≈ 6.2
GEOOPT_FP32_CLAMP = 1 - 4e-3


def at_clamp(p: torch.Tensor) -> torch.Tensor:
    return p.norm(dim=-1) >= GEOOPT_FP32_CLAMP * (1 - 1e-6)


# ------------------------------------------------------------------------------------------ stress
def stress(radii=(2, 5, 8, 10, 12, 15, 17, 20, 25, 30, 40), d: int = 4) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(64, d, generator=g, dtype=torch.float64), dim=-1)
    ball = P.ball(1.0)
    for r in radii:
        v = r * dirs
        x64 = L.expmap0(v, 1.0)
        p64 = L.to_poincare(x64, 1.0)
        x32, p32 = x64.float(), p64.float()
        d_l = torch.acosh(torch.clamp(x32[:, 0], min=1.0))  # d(o, x) = arcosh(x₀) for k = 1, in float32
        d_p = ball.dist(torch.zeros_like(p32), p32)
        on_boundary = (p32.norm(dim=-1) >= 1).float().mean().item()
        rows.append({
            "r": r,
            "lorentz_fp32_rel_err": float(((d_l.double() - r).abs() / r).max()),
            "poincare_fp32_rel_err": float(((d_p.double() - r).abs() / r).max()) if torch.isfinite(d_p).all() else None,
            "poincare_fp32_nonfinite": bool(not torch.isfinite(d_p).all()),
            "poincare_fp32_fraction_on_boundary": on_boundary,
        })
    return rows


def sampler_stress(radii=(2, 4, 6, 8, 8.5, 9, 10, 12, 15), sigmas=(1e-3, 1e-1), n: int = 2000) -> list[dict]:
    """Wrapped-normal samples in float32 around means at geodesic radius r: the fraction that is non-finite
    on each model (and, on the ball, at the float32 boundary) — what a trained posterior meets when its
    mean drifts out and its σ shrinks."""
    rows = []
    g = torch.Generator().manual_seed(0)
    for r in radii:
        dirs = torch.nn.functional.normalize(torch.randn(n, 2, generator=g, dtype=torch.float64), dim=-1)
        mu_l = L.expmap0(r * dirs, 1.0).float()
        mu_p = P.ball(1.0).expmap0(r * dirs / G.LAMBDA0).float()
        for s in sigmas:
            sig = torch.full((n, 2), s)
            z_l, _ = G.lorentz_wrapped_rsample(mu_l, sig, 1.0, g)
            z_p, _ = G.poincare_wrapped_rsample(mu_p, sig, 1.0, g)
            rows.append({"r": r, "sigma": s,
                         "lorentz_fp32_nonfinite": float((~torch.isfinite(z_l)).any(-1).double().mean()),
                         "poincare_fp32_nonfinite": float((~torch.isfinite(z_p)).any(-1).double().mean()),
                         "poincare_fp32_at_boundary": float((z_p.norm(dim=-1) >= 1 - 1e-6).double().mean()),
                         "poincare_fp32_clamped_by_geoopt": float(at_clamp(z_p).double().mean())})
    return rows


# --------------------------------------------------------------------------------------------- vae
class VAE(torch.nn.Module):
    def __init__(self, d_in: int, d_lat: int, model: str, hidden: int = 64):
        super().__init__()
        self.model, self.d = model, d_lat
        self.enc = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ELU(), torch.nn.Linear(hidden, 2 * d_lat))
        self.dec = torch.nn.Sequential(torch.nn.Linear(d_lat, hidden), torch.nn.ELU(), torch.nn.Linear(hidden, d_in))

    def mean_point(self, t):
        return L.expmap0(t, 1.0) if self.model == "lorentz" else P.ball(1.0).expmap0(t / G.LAMBDA0)

    def log0(self, z):
        return L.logmap0(z, 1.0) if self.model == "lorentz" else G.LAMBDA0 * P.ball(1.0).logmap0(z)

    def forward(self, x, gen):
        h = self.enc(x)
        t, log_s = h[:, :self.d], h[:, self.d:].clamp(-6, 2)
        s = torch.exp(log_s)
        mu = self.mean_point(t)
        if self.model == "lorentz":
            z, _ = G.lorentz_wrapped_rsample(mu, s, 1.0, gen)
            logq = G.lorentz_wrapped_log_prob(z, mu, s, 1.0)
            o = L.expmap0(torch.zeros_like(t), 1.0)
            logp = G.lorentz_wrapped_log_prob(z, o, torch.ones_like(s), 1.0)
        else:
            z, _ = G.poincare_wrapped_rsample(mu, s, 1.0, gen)
            logq = G.poincare_wrapped_log_prob(z, mu, s, 1.0)
            logp = G.poincare_wrapped_log_prob(z, torch.zeros_like(t), torch.ones_like(s), 1.0)
        tz = self.log0(z)
        return self.dec(tz), mu, z, tz, (logq - logp).float()


def latent_dist(model: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if model == "lorentz":
        return L.dist(a.double(), b.double(), 1.0)
    return P.dist(a.double(), b.double(), c=1.0)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def train_vae(model: str, iso: float, data: dict, steps: int, beta: float, seed: int) -> dict:
    torch.manual_seed(seed)
    x = data["x"].float()
    vae = VAE(x.shape[1], 4, model)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    nan_step, t0 = None, time.perf_counter()
    for step in range(steps):
        xr, mu, z, tz, kl = vae(x, gen)
        loss = ((xr - x) ** 2).mean() + beta * kl.mean() + (iso * G.mmd_isotropy(tz) if iso else 0.0)
        if not torch.isfinite(loss):
            nan_step = step
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = {"model": model, "iso_weight": iso, "steps": steps, "nan_step": nan_step,
           "train_s": time.perf_counter() - t0}
    with torch.no_grad():
        xr, mu, z, tz, kl = vae(x, gen)
        out["final_loss_recon"] = float(((xr - x) ** 2).mean())
        out["final_kl"] = float(kl.mean())
        out["nonfinite_latents"] = int((~torch.isfinite(z)).any(-1).sum())
        if model == "poincare":
            norms = z.norm(dim=-1)
            out["max_norm"] = float(norms.max())
            out["fraction_at_fp32_boundary"] = float((1 - norms < 1e-6).float().mean())
        else:
            out["max_x0"] = float(z[:, 0].max())
        out["effective_rank"] = float(G.effective_rank(tz.double()))
        out["mmd_to_normal"] = float(G.mmd_isotropy(tz.double()))
        # node means: the latent mean point of each tree node's first copy
        node = data["node"]
        first = torch.zeros(int(node.max()) + 1, dtype=torch.long)
        first[node.flip(0)] = torch.arange(len(node)).flip(0)
        pts = mu[first]
        n = len(pts)
        iu = torch.triu_indices(n, n, 1)
        dl = latent_dist(model, pts[iu[0]], pts[iu[1]])
        dt = data["tree_d"][iu[0], iu[1]].double()
        ok = torch.isfinite(dl)
        if ok.all():
            ratio = dl / dt
            s = ratio.median()
            out["distortion"] = float((ratio / s - 1).abs().mean())
            out["spearman"] = spearman(dl, dt)
        else:
            out["distortion"] = None
            out["spearman"] = None
        out["depth_vs_radius_spearman"] = spearman(
            latent_dist(model, pts, (L.expmap0(torch.zeros(1, 4), 1.0) if model == "lorentz" else torch.zeros(1, 4)).expand_as(pts)),
            data["tree_depth"].double())
    return out



# -------------------------------------------------------------------------------------------- spec
def spec_variant(tmp: Path, model: str) -> Path:
    """specs/hyperbolic_vae.bk as written (hyperboloid) or with its manifold swapped for the ball."""
    text = SPEC.read_text()
    if LORENTZ_LINE not in text:
        raise SystemExit(f"{SPEC}: the line `{LORENTZ_LINE}` is gone; update the bench")
    out = tmp / f"hyperbolic_vae_{model}.bk"
    out.write_text(text if model == "lorentz" else text.replace(LORENTZ_LINE, BALL_LINE))
    return out


def geodesic_radius(model: str, z: torch.Tensor) -> torch.Tensor:
    """d(o, z) in float64 from the stored float32 point: arcosh(x₀) on ℍ₁, 2 artanh‖p‖ on 𝔻₁."""
    z = z.double()
    if model == "lorentz":
        return torch.acosh(torch.clamp(z[:, 0], min=1.0))
    return 2 * torch.atanh(torch.clamp(z.norm(dim=-1), max=1 - 1e-16))


def train_spec(model: str, lam: float, beta: float, epochs: int, data: dict, tmp: Path) -> dict:
    from bkdsl.train.cli import main as train_main
    from bkdsl.trained import load_run

    spec = spec_variant(tmp, model)
    run = tmp / f"run_{model}_lam{lam:g}_beta{beta:g}"
    t0 = time.perf_counter()
    rc = train_main([str(spec), "--out", str(run), "--quiet", "--device", "cpu",
                     "--set", f"train.loss=elbo(beta = {beta!r}, lam = {lam!r})", "--set", f"train.epochs={epochs}"])
    row = {"model": model, "iso_weight": lam, "beta": beta, "epochs": epochs, "exit_code": rc,
           "train_s": round(time.perf_counter() - t0, 2)}
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    ep = [e for e in last if e.get("event") == "epoch"]
    row["nan_stop"] = rc != 0
    row["epochs_completed"] = len(ep)
    if ep:
        row["final_train_loss"] = ep[-1].get("train.loss")
        row["final_val_loss"] = ep[-1].get("val.loss")
    if not (run / "checkpoints" / "last.safetensors").exists():
        return row
    # a run stopped by a NaN keeps its last good checkpoint: its latent shows where the NaN came from
    net = load_run(run, weights="last")
    row["evaluated_weights"] = f"last checkpoint, step {net.record.get('global_step')}"
    torch.manual_seed(0)
    with torch.no_grad():
        out = net(x=data["x"].float())
    z, mu, tz = out["z"], out["mu"], out["tz"]
    row["nonfinite_latents"] = int((~torch.isfinite(z)).any(-1).sum() + (~torch.isfinite(mu)).any(-1).sum())
    r = geodesic_radius(model, z)[torch.isfinite(z).all(-1)]
    row["max_radius"] = float(r.max())
    row["max_radius_of_means"] = float(geodesic_radius(model, mu).max())
    row["fraction_radius_gt_15"] = float((r > FP32_BALL_SAFE_RADIUS).double().mean())
    if model == "poincare":
        norms = z.norm(dim=-1)
        row["max_norm"] = float(norms.max())
        row["fraction_at_fp32_boundary"] = float((norms >= 1 - 1e-6).double().mean())
        row["fraction_clamped_by_geoopt"] = float(at_clamp(z).double().mean())
    else:
        row["max_x0"] = float(z[:, 0].max())
    fin = torch.isfinite(tz).all(-1)   # a NaN-stopped run's last checkpoint may sample some non-finite z
    row["effective_rank"] = float(G.effective_rank(tz[fin].double()))
    row["latent_dim"] = int(tz.shape[1])
    row["mmd_to_normal"] = float(G.mmd_isotropy(tz[fin].double()))
    node = data["node"]
    first = torch.zeros(int(node.max()) + 1, dtype=torch.long)
    first[node.flip(0)] = torch.arange(len(node)).flip(0)
    pts = mu[first]
    n = len(pts)
    iu = torch.triu_indices(n, n, 1)
    dl = latent_dist(model, pts[iu[0]], pts[iu[1]])
    dt = data["tree_d"][iu[0], iu[1]].double()
    if torch.isfinite(dl).all():
        ratio = dl / dt
        row["distortion"] = float((ratio / ratio.median() - 1).abs().mean())
        row["spearman"] = spearman(dl, dt)
    else:
        row["distortion"] = row["spearman"] = None
    row["depth_vs_radius_spearman"] = spearman(geodesic_radius(model, pts), data["tree_depth"].double())
    row["disc"] = (L.to_poincare(pts.double(), 1.0) if model == "lorentz" else pts.double()).tolist()
    return row


def disc_figure(rows: list[dict], depth: torch.Tensor, path: Path) -> None:
    """The node means of each spec run on the Poincaré disc (the hyperboloid's through π), by depth."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("disc") is not None and r["beta"] > 0]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4), squeeze=False)
    for ax, r in zip(axes[0], shown):
        p = torch.tensor(r["disc"])
        ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.4", lw=0.8))
        sc = ax.scatter(p[:, 0], p[:, 1], c=depth.numpy(), cmap="viridis", s=9)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{r['model']}, λ = {r['iso_weight']:g}\nSpearman {r['spearman']:.2f}, erank {r['effective_rank']:.2f}",
                     fontsize=8)
    fig.colorbar(sc, ax=axes[0].tolist(), shrink=0.8, label="tree depth")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


def spec_epochs() -> int:
    import re

    m = re.search(r"^\s*epochs\s*=\s*(\d+)", SPEC.read_text(), re.M)
    return int(m.group(1)) if m else 60


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--beta", type=float, default=0.05)
    ap.add_argument("--iso", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--parts", default="stress,vae", help="comma-separated: stress, vae, spec")
    ap.add_argument("--spec-epochs", type=int, default=None, help="epochs of the spec runs (default: the spec's)")
    ap.add_argument("--figure", default=None, help="PNG of the spec runs' node means on the disc")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    torch.set_num_threads(1)
    tree = G.branching_tree(depth=6, branching=2, dim=32, noise=1.0, copies=4, seed=args.seed)
    parent = tree["parent"]
    depth_of_node = torch.zeros(len(parent), dtype=torch.long)
    for i in range(1, len(parent)):
        depth_of_node[i] = depth_of_node[int(parent[i])] + 1
    data = {"x": tree["x"], "node": tree["node"], "tree_d": G.tree_distances(parent), "tree_depth": depth_of_node}
    result = {"bench": "hyperbolic_vae", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "torch": torch.__version__, "dtype": "float32", "latent_dim": 4,
              "tree": {"depth": 6, "branching": 2, "nodes": len(parent), "samples": len(tree["x"]), "dim": 32},
              "beta": args.beta, "parts": sorted(parts)}
    if "stress" in parts:
        result["stress"] = stress()
        result["sampler_stress"] = sampler_stress()
        for r in result["stress"] + result["sampler_stress"]:
            print(r)
    if "vae" in parts:
        result["vae"] = []
        for model in ("poincare", "lorentz"):
            for iso in (0.0, args.iso):
                row = train_vae(model, iso, data, args.steps, args.beta, args.seed)
                result["vae"].append(row)
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    if "spec" in parts:
        epochs = args.spec_epochs or spec_epochs()
        result["spec"] = {"spec": "specs/hyperbolic_vae.bk", "epochs": epochs, "latent_dim": 2, "runs": []}
        with tempfile.TemporaryDirectory() as td:
            for model in ("lorentz", "poincare"):
                for lam, beta in ((1.0, args.beta), (0.0, args.beta), (0.0, 0.0)):
                    row = train_spec(model, lam, beta, epochs, data, Path(td))
                    result["spec"]["runs"].append(row)
                    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "disc"})
        if args.figure:
            disc_figure(result["spec"]["runs"], data["tree_depth"], Path(args.figure))
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / \
        f"{datetime.date.today().isoformat()}-hyperbolic_vae.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
