"""docs/figures/u236_densities.png: 12 generated 236U densities and the Q20-Q30 scatter coloured by E
(cf. thesis figs. 4.2 and 4.9).

    python docs/figures/make_u236_figure.py [--data /tmp/u236_ds.pt] [--samples 1000]

With --data, uses a data set saved by ``bench/physics_gen.py --save``; otherwise generates the default
236U data set (seed 0) first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "u236_densities.png"))
    a = ap.parse_args()
    if a.data:
        d = torch.load(a.data, weights_only=False)
        fields, stats, config = d["fields"], d["stats"], d["config"]
    else:
        from bkdsl.physics.dataset import generate_nuclear_densities
        ds = generate_nuclear_densities(samples=a.samples, seed=0)
        fields, stats, config = ds.fields, ds.stats, ds.config
    rho, E, Q20, Q30 = fields["rho"][:, 0], fields["E"], fields["Q20"], fields["Q30"]
    nr, nz, h = config["grid"]
    n = len(E)
    Egs = stats["E_gs"]
    fig = plt.figure(figsize=(15, 8.5))
    gsp = fig.add_gridspec(4, 6, width_ratios=[1, 1, 1, 1, 0.12, 2.2], wspace=0.45, hspace=0.45)
    order = torch.argsort(E)
    pick = order[torch.linspace(0, n - 1, 12).round().long()] if n >= 12 else order
    vmax = float(rho.max())
    ext = [-nz * h / 2, nz * h / 2, 0, nr * h]
    for k, i in enumerate(pick.tolist()):
        ax = fig.add_subplot(gsp[k // 4, k % 4] if k < 16 else None)
        # mirror r -> -r so each panel shows the full (z, x) plane
        img = torch.cat([rho[i].flip(0), rho[i]], 0).numpy()
        im = ax.imshow(img, origin="lower", extent=[ext[0], ext[1], -ext[3], ext[3]], vmin=0, vmax=vmax,
                       cmap="viridis", aspect="equal")
        ax.set_xlim(-16, 16)
        ax.set_ylim(-12, 12)
        ax.set_title(f"E-E_gs={float(E[i]) - Egs:.2f} MeV\nQ20={float(Q20[i]):.1f} b  Q30={float(Q30[i]):.2f}",
                     fontsize=8)
        ax.tick_params(labelsize=7)
        if k % 4 == 0:
            ax.set_ylabel("r (fm)", fontsize=8)
        if k // 4 == 2:
            ax.set_xlabel("z (fm)", fontsize=8)
    cax = fig.add_subplot(gsp[0:3, 4])
    fig.colorbar(im, cax=cax)
    cax.yaxis.set_ticks_position("left")
    cax.yaxis.set_label_position("left")
    cax.set_ylabel(r"$\rho$ (fm$^{-3}$)")
    ax = fig.add_subplot(gsp[0:3, 5])
    sc = ax.scatter(Q20.numpy(), Q30.numpy(), c=E.numpy(), s=10, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="E (MeV)")
    ax.set_xlabel(r"$Q_{20}$ (b)")
    ax.set_ylabel(r"$Q_{30}$ (b$^{3/2}$)")
    ax.set_title(f"{n} kept of {stats['generated']} generated", fontsize=9)
    ax.axhline(0, color="k", lw=0.5)
    fig.suptitle(r"$^{236}$U, SLy4 ETF ($\hbar^2$), random HO-basis potentials (thesis eq. 4.6), "
                 f"grid {nr}x{nz} at {h} fm", fontsize=11)
    ax2 = fig.add_subplot(gsp[3, 0:4])
    ax2.hist((E - Egs).numpy(), bins=50, color="gray")
    ax2.set_xlabel(r"$E - E_{gs}$ (MeV)", fontsize=8)
    ax2.set_ylabel("count", fontsize=8)
    ax2.tick_params(labelsize=7)
    fig.savefig(a.out, dpi=110, bbox_inches="tight")
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
