"""`bkdsl physics ground-state NUCLEUS [--method etf|hf|hf-bcs] [--functional sly4] [--json]`.

The lead hooks :func:`add_parser` / :func:`run` into ``bkdsl/cli.py``; meanwhile
``python -m bkdsl.physics.cli ground-state Pb208 --json`` works on its own.
"""

from __future__ import annotations

import argparse
import json
import sys

from bkdsl.diagnostics import BkError

from .hf_axial import THESIS_GRID, axial_hf_bcs
from .hf_spherical import H_STEP, hf_extrapolated
from .nuclei import get_nucleus


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("physics", help="nuclear-physics tools (Skyrme ETF)")
    sub = p.add_subparsers(dest="physics_cmd", required=True)
    gs = sub.add_parser("ground-state", help="ETF ground state of a nucleus: binding energy, radii, moments")
    gs.add_argument("nucleus", help="e.g. Pb208, 208Pb, U236, O16")
    gs.add_argument("--functional", default="sly4", help="Skyrme parameter set (default sly4)")
    gs.add_argument("--grid", default=None, help="NR,NZ,STEP_FM (default: box of 1.2 A^1/3 + 6 fm at 0.3 fm)")
    gs.add_argument("--k-cut", type=float, default=None, help="band limit of sqrt(rho) in fm^-1 (default 2.5)")
    gs.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    gs.add_argument("--order", type=int, choices=(2, 4), default=4,
                    help="ETF order in hbar: 4 (default) adds the restricted hbar^4 kinetic term to the "
                         "binding energy, 2 gives the pure order-hbar^2 result")
    gs.add_argument("--method", choices=("etf", "hf", "hf-bcs"), default="etf",
                    help="etf (default): orbital-free extended Thomas-Fermi; hf: spherical Skyrme "
                         "Hartree-Fock with orbitals (no pairing, Coulomb on); hf-bcs: axial Kohn-Sham "
                         "HF+BCS on the thesis' ch. 3 lattice (no Coulomb, DDDI pairing)")
    gs.add_argument("--stencil", type=int, choices=(2, 4, 6, 8), default=8,
                    help="hf-bcs: finite-difference order on the lattice (default 8, the bench's headline; orders 6 and 8 agree within 0.08 MeV on 24Mg)")
    gs.add_argument("--step", type=float, default=None,
                    help="hf: the coarser radial step in fm (default 0.1); hf solves at STEP and STEP/2 "
                         "and reports their Richardson h -> 0 limit")
    gs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def _table(gs) -> str:
    def vs(x, ref, fmt):
        if ref is None:
            return f"{x:{fmt}}"
        return f"{x:{fmt}}   (measured {ref:{fmt}}, {100 * (x - ref) / ref:+.2f} %)"

    rows = [
        ("nucleus", gs.nucleus), ("functional", f"{gs.functional} (ETF, order hbar^{gs.order})"),
        ("binding energy", vs(gs.binding_energy, gs.be_exp, ".3f") + " MeV"),
        *([("  hbar^4 energy", f"{gs.components['hbar4']:+.3f} MeV (unbinds; restricted Fermi profiles)")]
          if gs.order == 4 else []),
        ("rms radius n", f"{gs.r_n:.4f} fm"), ("rms radius p", f"{gs.r_p:.4f} fm"),
        ("charge radius", vs(gs.r_ch, gs.rch_exp, ".4f") + " fm" + (" (hbar^2 density)" if gs.order == 4 else "")),
        *([("charge radius + hbar^4 shift", vs(gs.r_ch_hbar4, gs.rch_exp, ".4f") + " fm")]
          if gs.order == 4 else []),
        ("Q20", f"{gs.Q20:+.4f} b"), ("Q30", f"{gs.Q30:+.4f} b^3/2"),
        ("iterations", str(gs.iterations)), ("final gradient norm", f"{gs.gradient_norm:.2e} MeV"),
        ("grid", f"{gs.grid[0]} x {gs.grid[1]} x {gs.grid[2]} fm, k_cut {gs.k_cut} fm^-1"),
        ("wall time", f"{gs.wall_s:.1f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def _hf_table(res) -> str:
    def vs(x, ref, fmt):
        if ref is None:
            return f"{x:{fmt}}"
        return f"{x:{fmt}}   (measured {ref:{fmt}}, {100 * (x - ref) / ref:+.2f} %)"

    nuc = get_nucleus(res.nucleus)
    x = res.extrapolated or {k: getattr(res, k) for k in ("binding_energy", "r_n", "r_p", "r_ch")}
    raw = (res.extrapolated or {}).get("raw", {})
    rows = [
        ("nucleus", res.nucleus), ("functional", f"{res.functional} (spherical Hartree-Fock, no pairing)"),
        ("binding energy", vs(x["binding_energy"], nuc.be_exp, ".3f") + " MeV"),
        *([("  at steps " + " / ".join(raw), " / ".join(f"{v['binding_energy']:.3f}" for v in raw.values())
            + " MeV (limit h -> 0 above)")] if raw else []),
        ("rms radius n", f"{x['r_n']:.4f} fm"), ("rms radius p", f"{x['r_p']:.4f} fm"),
        ("charge radius", vs(x["r_ch"], nuc.rch_exp, ".4f") + " fm"),
        ("iterations", str(res.iterations)),
        ("mesh", f"step {res.step} fm, box {res.box:.1f} fm"), ("wall time", f"{res.wall_s:.1f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = [f"{k:<{w}}  {v}" for k, v in rows]
    for q in ("n", "p"):
        occ = [lv for lv in res.levels if lv.q == q and lv.occupation > 0]
        lines.append(f"{q} levels (occupied): " + ", ".join(f"{lv.label} {lv.energy:.2f}" for lv in occ))
    return "\n".join(lines)


def run(args) -> int:
    from .solver import K_CUT, ground_state

    try:
        if args.physics_cmd == "ground-state" and getattr(args, "method", "etf") == "hf":
            res = hf_extrapolated(args.nucleus, args.functional,
                                  step=args.step if args.step is not None else H_STEP)
            print(json.dumps(res.to_json(), indent=2) if args.json else _hf_table(res))
            return 0
        if args.physics_cmd == "ground-state" and getattr(args, "method", "etf") == "hf-bcs":
            grid = THESIS_GRID
            if args.grid:
                try:
                    a, b, c = args.grid.split(",")
                    grid = (int(a), int(b), float(c))
                except ValueError:
                    raise BkError("E0206", f"bad --grid `{args.grid}`", help="write NR,NZ,STEP_FM, e.g. 10,20,0.8")
            res = axial_hf_bcs(args.nucleus, args.functional, grid=grid, order=args.stencil)
            if args.json:
                print(json.dumps(res.to_json(), indent=2))
            else:
                print(f"{res.nucleus}  {res.functional} axial Kohn-Sham HF+BCS (no Coulomb), grid {res.grid}, "
                      f"stencil order {res.order}\n"
                      f"E = {res.energy:.3f} MeV   pairing gap n/p {res.pairing_gap[0]:.3f}/{res.pairing_gap[1]:.3f} MeV"
                      f"   lambda {res.fermi[0]:.3f} MeV   Q20 {res.Q20:+.4f} b   r_m {res.r_m:.3f} fm   "
                      f"{res.iterations} iterations, {res.wall_s:.1f} s\n"
                      + "\n".join(f"  {lv['q']} Omega {lv['Omega']:>4}  e = {lv['energy']:8.3f} MeV  v^2 = {lv['v2']:.4f}"
                                  for lv in res.levels if lv["q"] == "n" and lv["energy"] < 5))
            return 0
        if args.physics_cmd == "ground-state":
            grid = None
            if args.grid:
                try:
                    a, b, c = args.grid.split(",")
                    grid = (int(a), int(b), float(c))
                except ValueError:
                    raise BkError("E0206", f"bad --grid `{args.grid}`", help="write NR,NZ,STEP_FM, e.g. 36,72,0.5")
            gs = ground_state(args.nucleus, args.functional, grid=grid,
                              k_cut=args.k_cut if args.k_cut is not None else K_CUT, device=args.device,
                              hbar4=args.order == 4)
            print(json.dumps(gs.to_json(), indent=2) if args.json else _table(gs))
            return 0
    except BkError as e:
        if getattr(args, "json", False):
            d = e.diagnostic.to_json()
            if e.code in ("E0704", "E0705"):     # a refused solve is never a ground state
                d["converged"] = False
            print(json.dumps(d, indent=2))
        else:
            print(e.diagnostic.render(), file=sys.stderr)
        return 1
    return 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bkdsl")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "physics":
        argv = ["physics", *argv]
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
