"""Figures of docs/optics.md and docs/geometry.md (PNG in docs/figures/), from a trained diffractive run
and a short GM-VAE run; also times one propagation of the digits network's field.

    python bench/optics_figures.py --run runs/d2nn            # after `bkdsl train specs/diffractive_digits.bk --out runs/d2nn`

Writes docs/figures/optics_gaussian_beam.png (ASM vs closed form), optics_d2nn_masks.png (the trained
phase masks), optics_d2nn_propagation.png (a test digit through the network, with the detectors),
geometry_latent_disc.png (node means of the branching tree on the Poincaré disc, coloured by depth,
Lorentz model mapped by the isometry) and prints a JSON line with the propagation time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bkdsl  # noqa: E402
from bkdsl.components.optical_data import digits_fields  # noqa: E402
from bkdsl.nn import lorentz as L  # noqa: E402
from bkdsl.nn import optics as O  # noqa: E402

FIG = ROOT / "docs" / "figures"


def gaussian_figure() -> None:
    lam, dx, n = 0.5e-6, 50e-6, 256
    w0 = 6 * dx
    zr = math.pi * w0 ** 2 / lam
    x = O.centred_coords(n, dx) * 1e3
    u0 = O.gaussian_beam(n, dx, lam, w0, 0.0)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for m in (0.0, 1.0, 2.0, 3.0):
        u = O.angular_spectrum(u0, dx, lam, m * zr) if m else u0
        ref = O.gaussian_beam(n, dx, lam, w0, m * zr)
        ax[0].plot(x, (u.abs() ** 2)[n // 2].numpy(), label=f"ASM z = {m:g} z_R")
        ax[0].plot(x, (ref.abs() ** 2)[n // 2].numpy(), "k:", lw=1)
        if m:
            err = float((u - ref).norm() / ref.norm())
            ax[1].bar(f"{m:g} z_R", err)
    ax[0].set_xlim(-3, 3)
    ax[0].set_xlabel("x (mm)")
    ax[0].set_ylabel("|U|² on the axis row")
    ax[0].legend(fontsize=7)
    ax[0].set_title("Gaussian beam, λ = 0.5 µm, w0 = 300 µm (dotted: closed form)", fontsize=9)
    ax[1].set_yscale("log")
    ax[1].axhline(1e-6, color="r", lw=1)
    ax[1].set_title("relative L2 error vs closed form (complex128); red: 1e-6", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG / "optics_gaussian_beam.png", dpi=110)
    plt.close(fig)


def d2nn_figures(run: Path) -> dict:
    c = bkdsl.compile_file(ROOT / "specs" / "diffractive_digits.bk")
    gm = c.module
    w = load_file(str(run / "checkpoints" / "best.safetensors"))
    gm.load_state_dict(w, strict=False)
    masks = [w[k] for k in sorted(w)]
    fig, ax = plt.subplots(1, len(masks), figsize=(3.4 * len(masks), 3.2))
    for i, m in enumerate(masks):
        im = ax[i].imshow(torch.atan2(m[..., 1], m[..., 0]).numpy(), cmap="twilight", vmin=-math.pi, vmax=math.pi)
        ax[i].set_title(f"phase mask {i + 1} (rad)", fontsize=9)
        ax[i].axis("off")
    fig.colorbar(im, ax=ax, fraction=0.02)
    fig.savefig(FIG / "optics_d2nn_masks.png", dpi=110)
    plt.close(fig)

    data = digits_fields(64, 4)
    img, y = data["image"], data["digit"]
    prop = c.ir.decls["free"].component.build()
    u = O.amplitude_field(img[-1:])
    planes = [("input |U|²", O.intensity(u))]
    u = prop(u)
    for i, m in enumerate(masks):
        u = prop(O.phase_modulate(u, m))
        planes.append((f"after layer {i + 1}", O.intensity(u)))
    fig, ax = plt.subplots(1, len(planes), figsize=(3.2 * len(planes), 3.2))
    for i, (t, im) in enumerate(planes):
        ax[i].imshow(im[0].detach().numpy(), cmap="inferno")
        ax[i].set_title(t, fontsize=9)
        ax[i].axis("off")
    for k, (r0, c0) in enumerate(O.detector_regions(64, 10, 6)):
        ax[-1].add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), 6, 6, fill=False, ec="cyan", lw=0.8))
        ax[-1].text(c0, r0 - 1, str(k), color="cyan", fontsize=6)
    pred = int(gm(image=img[-1:])["digit"].argmax())
    ax[-1].set_title(f"detector plane (label {int(y[-1])}, predicted {pred})", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG / "optics_d2nn_propagation.png", dpi=110)
    plt.close(fig)

    # propagation speed: one ASM propagation of a [64, 64, 64] complex64 batch (×2 padded to 128²)
    batch = O.amplitude_field(img[:64])
    with torch.no_grad():
        prop(batch)
        ts = []
        for _ in range(20):
            t0 = time.perf_counter()
            prop(batch)
            ts.append(time.perf_counter() - t0)
        full = []
        for _ in range(5):
            t0 = time.perf_counter()
            gm(image=img[:64])
            full.append(time.perf_counter() - t0)
    ts.sort()
    full.sort()
    return {"propagation_ms_batch64_64x64": 1e3 * ts[len(ts) // 2],
            "forward_ms_batch64_4_propagations": 1e3 * full[len(full) // 2], "threads": torch.get_num_threads()}


def latent_disc_figure(steps: int) -> None:
    import hyperbolic_vae as HV
    from bkdsl.nn import gmvae as G

    tree = G.branching_tree(depth=6, branching=2, dim=32, noise=1.0, copies=4, seed=0)
    parent = tree["parent"]
    depth = torch.zeros(len(parent), dtype=torch.long)
    for i in range(1, len(parent)):
        depth[i] = depth[int(parent[i])] + 1
    fig, ax = plt.subplots(1, 2, figsize=(9, 4.4))
    for j, (model, iso) in enumerate((("lorentz", 0.0), ("lorentz", 1.0))):
        torch.manual_seed(0)
        x = tree["x"].float()
        vae = HV.VAE(32, 2, model)
        opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(1)
        for _ in range(steps):
            xr, mu, z, tz, kl = vae(x, gen)
            loss = ((xr - x) ** 2).mean() + 0.05 * kl.mean() + (iso * G.mmd_isotropy(tz) if iso else 0.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            _, mu, _, _, _ = vae(x, gen)
            p = L.to_poincare(mu.double(), 1.0)
        ax[j].add_patch(plt.Circle((0, 0), 1, fill=False, color="k", lw=0.8))
        sc = ax[j].scatter(p[:, 0], p[:, 1], c=tree["depth"], cmap="viridis", s=8)
        ax[j].set_xlim(-1.05, 1.05)
        ax[j].set_ylim(-1.05, 1.05)
        ax[j].set_aspect("equal")
        ax[j].set_title(f"GM-VAE (Lorentz, 2-d), isotropy weight {iso:g}", fontsize=9)
    fig.colorbar(sc, ax=ax, label="tree depth", fraction=0.03)
    fig.savefig(FIG / "geometry_latent_disc.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/d2nn")
    ap.add_argument("--vae-steps", type=int, default=300)
    args = ap.parse_args(argv)
    FIG.mkdir(parents=True, exist_ok=True)
    gaussian_figure()
    timing = d2nn_figures(Path(args.run))
    latent_disc_figure(args.vae_steps)
    print(json.dumps(timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
