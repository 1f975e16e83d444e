"""Registry of nuclei: proton number Z, neutron number N, measured binding energy and charge radius.

Names are parsed leniently: ``"U236"``, ``"236U"``, ``"u236"``, ``"U-236"``, ``"236-U"`` and
``"uranium236"`` all give the same :class:`Nucleus`. Any element symbol with a mass number is accepted
(Z from the periodic table); measured values are attached where the registry knows them.
Unknown element symbols or impossible mass numbers raise ``BkError(E0701)``.

Measured binding energies (MeV, positive numbers) are from AME2020 (Wang et al., Chin. Phys. C 45
(2021) 030003); charge radii (fm) from Angeli & Marinova, At. Data Nucl. Data Tables 99 (2013) 69.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bkdsl.diagnostics import BkError

_SYMBOLS = (
    "n H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br "
    "Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er "
    "Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm"
).split()
_Z_OF = {s.lower(): z for z, s in enumerate(_SYMBOLS)}
_NAMES = {"oxygen": 8, "magnesium": 12, "calcium": 20, "zirconium": 40, "tin": 50, "lead": 82,
          "uranium": 92, "plutonium": 94}


@dataclass(frozen=True)
class Nucleus:
    symbol: str
    Z: int
    N: int
    #: measured binding energy, MeV (positive), or None
    be_exp: float | None = None
    #: measured rms charge radius, fm, or None
    rch_exp: float | None = None

    @property
    def A(self) -> int:
        return self.Z + self.N

    @property
    def name(self) -> str:
        return f"{self.symbol}{self.A}"

    @property
    def latex(self) -> str:
        return f"$^{{{self.A}}}${self.symbol}"

    def radius_estimate(self) -> float:
        """Liquid-drop radius 1.2 A^(1/3) fm."""
        return 1.2 * self.A ** (1.0 / 3.0)


# (Z, A) -> (BE MeV, r_ch fm)
_MEASURED: dict[tuple[int, int], tuple[float | None, float | None]] = {
    (8, 16): (127.619, 2.6991),
    (12, 24): (198.257, 3.0570),
    (20, 40): (342.052, 3.4776),
    (20, 48): (415.991, 3.4771),
    (28, 56): (483.995, 3.7226),   # r_ch: Sommer et al., PRL 129 (2022) 132501 (laser spectroscopy)
    (40, 90): (783.893, 4.2694),
    (50, 132): (1102.843, 4.7093),
    (82, 208): (1636.430, 5.5012),
    (92, 236): (1790.415, None),
    (92, 238): (1801.695, 5.8571),
}


def known_nuclei() -> list[str]:
    return [f"{_SYMBOLS[z]}{a}" for (z, a) in _MEASURED]


def _unknown(name: str, why: str) -> BkError:
    return BkError("E0701", f"unknown nucleus `{name}`: {why}",
                   help="write an element symbol and a mass number, e.g. U236, 236U, Pb208, O16; "
                        f"nuclei with measured data: {', '.join(known_nuclei())}")


def get_nucleus(name: "str | Nucleus") -> Nucleus:
    if isinstance(name, Nucleus):
        return name
    s = str(name).strip()
    t = re.sub(r"[\s_\-^]", "", s).lower()
    m = re.fullmatch(r"([a-z]+)(\d+)", t) or re.fullmatch(r"(\d+)([a-z]+)", t)
    if m is None:
        raise _unknown(s, "expected a symbol and a mass number")
    a, b = m.groups()
    sym, mass = (a, b) if a.isalpha() else (b, a)
    Z = _Z_OF.get(sym, _NAMES.get(sym))
    if Z is None or Z == 0:
        raise _unknown(s, f"`{sym}` is not an element symbol")
    A = int(mass)
    N = A - Z
    if N < 0 or A < 2 or N > 3 * Z + 10:
        raise _unknown(s, f"A = {A} is impossible for Z = {Z}")
    be, rch = _MEASURED.get((Z, A), (None, None))
    return Nucleus(symbol=_SYMBOLS[Z], Z=Z, N=N, be_exp=be, rch_exp=rch)
