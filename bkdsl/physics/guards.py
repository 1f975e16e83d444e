"""Physical-bounds guards: a minimiser's fixed point is a ground state only if it looks like a nucleus.

A variational solver can "converge" to a state no nucleus has. The order-hbar^2 ETF functional is
unbounded below in a wide variational space (docs/physics.md, "Why a band limit"): at
``--k-cut 3.5`` the band-limited minimiser runs into density spikes and reports, with a vanishing
gradient, 861.6 MeV for 48Ca (measured 416.0) and 13 641 MeV for 132Sn. A Hartree-Fock iteration that
diverges, or an external field that tears the nucleus apart, can do the same. Such a state is refused
with ``BkError(E0705)`` (ground states) or dropped and counted (data sets); it is never reported as
``"converged": true``.

The bounds (:class:`PhysicalBounds`) are deliberately loose, set by nuclear systematics, not by our
own results, so that a genuine ground state (with or without Coulomb, shell effects or a moderate
external field) always passes and a collapse always fails:

* **density**: max_x (rho_n + rho_p)(x) <= ``rho_max`` = 0.30 fm^-3. Saturation density is 0.16 fm^-3;
  measured and HF central densities of stable nuclei lie in 0.14-0.22 fm^-3 (light nuclei highest).
  The collapsed 48Ca above peaks at 1.6 fm^-3. Also min rho >= -1e-8 fm^-3 (a density is not negative).
* **radius**: the rms matter radius r_m over the liquid-drop value sqrt(3/5) 1.2 A^(1/3) fm must lie in
  [0.7, 1.5]. (Measured and HF ratios: 16O 1.12, 208Pb 1.00.)
* **energy per nucleon**: B/A = -E/A in [0.5, 12] MeV. Measured B/A peaks at 8.8 MeV (62Ni); without
  Coulomb (thesis ch. 3) light nuclei gain ~0.5 MeV; order-hbar^2 ETF overbinds by up to ~1 MeV. The
  collapsed 48Ca has 17.9 MeV, 132Sn 103 MeV.
* every number must be finite: NaN or Inf anywhere is a violation (fail closed).

:func:`check_physical` returns the list of violations (empty: physical); :func:`require_physical`
raises E0705 with the first as the reason and all of them as notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bkdsl.diagnostics import BkError


@dataclass(frozen=True)
class PhysicalBounds:
    """Loose physical bounds on a nuclear ground state (units: fm^-3, MeV)."""

    #: largest allowed total density anywhere, fm^-3 (saturation 0.16)
    rho_max: float = 0.30
    #: most negative density tolerated (round-off), fm^-3
    rho_min: float = -1e-8
    #: allowed r_m / (sqrt(3/5) 1.2 A^(1/3) fm)
    radius_ratio: tuple[float, float] = (0.7, 1.5)
    #: allowed binding energy per nucleon, MeV
    be_per_nucleon: tuple[float, float] = (0.5, 12.0)


DEFAULT_BOUNDS = PhysicalBounds()


def liquid_drop_rms(A: int) -> float:
    """rms radius of a sharp sphere of radius 1.2 A^(1/3) fm: sqrt(3/5) 1.2 A^(1/3) fm."""
    return math.sqrt(0.6) * 1.2 * A ** (1.0 / 3.0)


def check_physical(*, A: int, energy: float, rms_radius: float, rho_max: float, rho_min: float = 0.0,
                   bounds: PhysicalBounds = DEFAULT_BOUNDS) -> list[str]:
    """Violations of ``bounds`` by a state of A nucleons with total EDF energy ``energy`` (MeV, negative
    when bound), rms matter radius (fm) and extreme total densities (fm^-3). Empty list: physical."""
    out: list[str] = []
    vals = {"energy": energy, "rms radius": rms_radius, "max density": rho_max, "min density": rho_min}
    for k, v in vals.items():
        if not math.isfinite(float(v)):
            out.append(f"{k} is {v} (not finite)")
    if out:
        return out
    if rho_max > bounds.rho_max:
        out.append(f"max density {rho_max:.3g} fm^-3 > {bounds.rho_max} fm^-3 (saturation is 0.16): the "
                   "density has collapsed into spikes")
    if rho_min < bounds.rho_min:
        out.append(f"min density {rho_min:.3g} fm^-3 is negative")
    ratio = rms_radius / liquid_drop_rms(A)
    lo, hi = bounds.radius_ratio
    if not lo <= ratio <= hi:
        out.append(f"rms radius {rms_radius:.3f} fm is {ratio:.2f} x the liquid-drop "
                   f"{liquid_drop_rms(A):.3f} fm (allowed {lo}-{hi})")
    ba = -energy / A
    lo, hi = bounds.be_per_nucleon
    if not lo <= ba <= hi:
        out.append(f"binding energy per nucleon {ba:.3f} MeV is outside {lo}-{hi} MeV")
    return out


def require_physical(name: str, *, A: int, energy: float, rms_radius: float, rho_max: float,
                     rho_min: float = 0.0, bounds: PhysicalBounds = DEFAULT_BOUNDS, help: str | None = None) -> None:
    """Raise ``BkError(E0705)`` if the state of nucleus ``name`` violates ``bounds``."""
    bad = check_physical(A=A, energy=energy, rms_radius=rms_radius, rho_max=rho_max, rho_min=rho_min,
                         bounds=bounds)
    if bad:
        raise BkError("E0705", f"unphysical solution for {name}, not a ground state: {bad[0]}",
                      help=help or "the minimiser found a collapsed state; use the default band limit "
                                   "(--k-cut 2.5) or a finer/larger grid, see docs/physics.md 'Guards'",
                      notes=bad[1:] + [f"E = {energy:.3f} MeV, r_m = {rms_radius:.3f} fm, "
                                       f"rho_max = {rho_max:.4g} fm^-3"])
