"""24Mg on the thesis lattice: the energy-density functional read term by term against the thesis.

Issue 18, item 1. The axial HF+BCS (order 8, held spherical) gives -224.997 MeV against the thesis'
-222.59 MeV. Each hypothesis below is one flag of :func:`bkdsl.physics.hf_axial.axial_hf_bcs` (or a
modified functional), one run and one number; the JSON records whether the thesis' text supports it
(with the equation) so that a change is adopted only on the text, never on the number.

    python bench/hf_mg24_edf.py [--out bench/results/2026-12-03-hf_mg24_edf.json] [--only LABEL ...]

One solve is 30-90 s on one CPU core; the whole list about 10 min.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bkdsl.diagnostics import BkError  # noqa: E402
from bkdsl.physics.hf_axial import THESIS_TEXT, axial_hf_bcs  # noqa: E402
from bkdsl.physics.skyrme import SLY4  # noqa: E402

TARGET = -222.59
SPHERICAL = (0.0, 2000.0)

#: (label, keywords, what the thesis says)
HYPOTHESES = [
    ("baseline (endpoint measure, smooth window, rearrangement)", {},
     "the solver's continuum-accurate default"),
    ("thesis text: midpoint measure (3.19), sharp window (ch. 3), no pairing rearrangement (App. B)",
     dict(THESIS_TEXT),
     "eq. 3.19: sum 2 pi r_i rho dr dz = A is the finite-difference normalisation; ch. 3: sharp 60 MeV "
     "cut-off; App. B after B.10: the B.6 rearrangement and the b1' J_q of B.10 are left out"),
    ("midpoint measure only", {"quadrature": "midpoint"}, "eq. 3.19"),
    ("sharp window only", {"cut_diffuseness": 0.0}, "ch. 3: 'シャープなカットオフ'"),
    ("no pairing rearrangement only", {"pairing_rearrangement": False}, "App. B after B.10"),
    ("J^2 terms, full t1 t2 exchange (Engel 1975)", {"j2_terms": "skyrme"},
     "not in eq. 1.17; App. B drops the b1' J_q term of B.10; SLy4 fitted without them"),
    ("J^2 term (b1'/2) sum J_q^2 (the dropped B.10 term)", {"j2_terms": "b1prime"},
     "App. B: dropped ('本論文でもこれらの項は無視している')"),
    ("pairing form factor with rho_q", {"pairing_density": "species"}, "eq. 1.19 has rho (total)"),
    ("no one-body c.m. factor (1 - 1/A)", {"functional": dataclasses.replace(SLY4, com_one_body=False)},
     "eqs. 1.17, B.8, 3.13 all have hbar^2/2m (1 - 1/A)"),
    ("hbar^2/2m = 20.7213 (neutron mass)", {"functional": dataclasses.replace(SLY4, hbar2_2m=20.7213)},
     "the value is not printed; SLy4's own is 20.73553"),
    ("no c.m. constraint (C = 0)", {"com_C": 0.0}, "eq. 3.6, C = 0.625 MeV fm^-2"),
]


def run(label: str, kw: dict, note: str) -> dict:
    kw = dict(kw)
    functional = kw.pop("functional", "sly4")
    t0 = time.perf_counter()
    settings = {k: v for k, v in kw.items()}
    if functional != "sly4":
        settings["functional"] = {"hbar2_2m": functional.hbar2_2m, "com_one_body": functional.com_one_body}
    base = {"label": label, "thesis": note, "settings": settings}
    try:
        r = axial_hf_bcs("Mg24", functional, order=8, q20_constraint=SPHERICAL, tol_e=1e-6, tol_rho=1e-7, **kw)
    except BkError as e:
        print(f"{label}: {e.code} {e.diagnostic.message}", flush=True)
        return {**base, "converged": False, "diagnostic": e.diagnostic.to_json(), "wall_s": time.perf_counter() - t0}
    row = {**base, "converged": True, "E": r.energy, "deviation_percent": 100 * (r.energy - TARGET) / abs(TARGET),
           "components": r.components, "pairing_gap": r.pairing_gap[0], "fermi": r.fermi[0], "r_m": r.r_m,
           "Q20_b": r.Q20, "iterations": r.iterations, "residual": r.residual, "wall_s": r.wall_s}
    print(f"{label}: E = {r.energy:.3f} MeV ({row['deviation_percent']:+.2f} %), gap {r.pairing_gap[0]:.3f}, "
          f"J2 {r.components['j2']:.3f}, {r.iterations} it, {r.wall_s:.0f} s", flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/2026-12-03-hf_mg24_edf.json")
    ap.add_argument("--only", nargs="*", help="run only hypotheses whose label starts with one of these")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = [run(*h) for h in HYPOTHESES if not args.only or any(h[0].startswith(o) for o in args.only)]
    out = {"bench": "hf_mg24_edf", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "torch": torch.__version__, "device": "cpu", "dtype": "float64",
           "setup": "thesis ch. 3: SLy4, no Coulomb, 10 x 20 x 0.8 fm, Omega <= 9/2, V0 = -683.344 MeV fm^3, "
                    "60 MeV window, C = 0.625 MeV fm^-2, stencil order 8, Q20 held at 0 (C_Q = 2000 MeV b^-2)",
           "target_E": TARGET, "runs": rows, "wall_s": time.perf_counter() - t0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out} ({out['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
