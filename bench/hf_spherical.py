"""Spherical SLy4 Hartree-Fock against the ETF of the same functional, for six doubly magic nuclei.

For 16O, 40Ca, 48Ca, 56Ni, 132Sn, 208Pb: the HF binding energy and radii (steps 0.1 and 0.05 fm and their
Richardson limit, :func:`bkdsl.physics.hf_spherical.hf_extrapolated`), the ETF ground state at order
hbar^2 and with the restricted hbar^4 term (:func:`bkdsl.physics.solver.ground_state`, defaults), the
measured values, and ETF - HF: the part of the binding a smooth semiclassical energy cannot carry
(the shell correction, with the sign convention E_HF = E_ETF + dE_shell, so dE_shell = E_HF - E_ETF).

Checks before writing: every HF run converged and passed the physical guards (they raise otherwise);
the two HF meshes agree to 1 % (a larger gap means the O(h^2) extrapolation is not trustworthy);
the Richardson limit lies beyond the fine value on the coarse->fine line.

    python bench/hf_spherical.py [--out bench/results/2026-12-03-hf_spherical.json] [--nuclei O16,Pb208]

About 2-4 min on one CPU core (HF ~1 min, ETF the rest).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bkdsl.physics.hf_spherical import hf_extrapolated  # noqa: E402
from bkdsl.physics.nuclei import get_nucleus  # noqa: E402
from bkdsl.physics.solver import ground_state  # noqa: E402

NUCLEI = ["O16", "Ca40", "Ca48", "Ni56", "Sn132", "Pb208"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/2026-12-03-hf_spherical.json")
    ap.add_argument("--nuclei", default=",".join(NUCLEI))
    ap.add_argument("--step", type=float, default=0.1)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    t_all = time.perf_counter()
    for name in args.nuclei.split(","):
        nuc = get_nucleus(name)
        hf = hf_extrapolated(name, step=args.step)
        x = hf.extrapolated
        coarse, fine = (x["raw"][str(s)]["binding_energy"] for s in x["steps"])
        if abs(coarse - fine) > 0.01 * fine:
            raise SystemExit(f"{name}: HF meshes differ by {coarse - fine:.3f} MeV (> 1 %), refusing to extrapolate")
        if not (x["binding_energy"] - fine) * (fine - coarse) > 0:
            raise SystemExit(f"{name}: the Richardson limit is not beyond the fine value")
        e2 = ground_state(name, hbar4=False)
        e4 = ground_state(name, hbar4=True)
        occ = {q: [(lv.label, round(lv.energy, 3)) for lv in hf.levels if lv.q == q and lv.occupation > 0]
               for q in ("n", "p")}
        row = {
            "nucleus": nuc.name, "Z": nuc.Z, "N": nuc.N,
            "hf": {"binding_energy": x["binding_energy"], "r_ch": x["r_ch"], "r_n": x["r_n"], "r_p": x["r_p"],
                   "raw": x["raw"], "iterations": hf.iterations, "components_fine_mesh": hf.components,
                   "occupied_levels": occ, "wall_s": hf.wall_s},
            "etf_hbar2": {"binding_energy": e2.binding_energy, "r_ch": e2.r_ch, "wall_s": e2.wall_s},
            "etf_hbar4": {"binding_energy": e4.binding_energy, "r_ch": e4.r_ch_hbar4, "wall_s": e4.wall_s},
            "measured": {"binding_energy": nuc.be_exp, "r_ch": nuc.rch_exp},
            "etf2_minus_hf_binding": e2.binding_energy - x["binding_energy"],
            "etf4_minus_hf_binding": e4.binding_energy - x["binding_energy"],
            "hf_minus_measured_binding": (x["binding_energy"] - nuc.be_exp) if nuc.be_exp else None,
        }
        rows.append(row)
        print(f"{nuc.name:6s} HF {x['binding_energy']:9.3f} MeV r_ch {x['r_ch']:.4f} | ETF2 {e2.binding_energy:9.3f} "
              f"ETF4 {e4.binding_energy:9.3f} | ETF4-HF {row['etf4_minus_hf_binding']:+7.3f} | "
              f"measured {nuc.be_exp} / {nuc.rch_exp}", flush=True)
    out = {
        "bench": "hf_spherical", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "torch": torch.__version__, "threads": 1, "device": "cpu", "dtype": "float64",
        "functional": "SLy4 (Chabanat et al. 1998), no J^2 terms, one-body CoM (1 - 1/A)",
        "hf": {"mesh": f"staggered radial mesh, steps {args.step} and {args.step / 2} fm, Richardson h -> 0",
               "coulomb": "direct (point protons) + Slater exchange", "pairing": "none"},
        "etf": "bkdsl.physics.solver.ground_state defaults (k_cut 2.5 fm^-1, grid 0.3 fm)",
        "rows": rows, "wall_s": time.perf_counter() - t_all,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out} ({out['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
