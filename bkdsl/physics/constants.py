"""Physical constants used inside the physics hot loops.

Fixed units everywhere in :mod:`bkdsl.physics`: energies in MeV, lengths in fm, densities in fm^-3.
"""

from __future__ import annotations

import math

#: e^2 / (4 pi eps0) in MeV fm (CODATA 2018: alpha * hbar c = 197.3269804 / 137.035999084).
E2_MEV_FM = 197.3269804 / 137.035999084

#: Thomas-Fermi kinetic constant (3/5)(3 pi^2)^(2/3) for one spin-1/2 isospin species (dimensionless).
TF_KAPPA = 0.6 * (3.0 * math.pi**2) ** (2.0 / 3.0)

#: Slater exchange constant: E_x = -(3/4) e^2 (3/pi)^(1/3) \int rho_p^(4/3).
SLATER = 0.75 * E2_MEV_FM * (3.0 / math.pi) ** (1.0 / 3.0)

#: Mean-square charge radius of the proton (fm^2), CODATA 2018 r_p = 0.8414 fm.
R2_PROTON_FM2 = 0.8414**2
#: Mean-square charge radius of the neutron (fm^2), PDG: -0.1161 fm^2.
R2_NEUTRON_FM2 = -0.1161
#: Darwin-Foldy term 3/4 (hbar/m c)^2 (fm^2).
DARWIN_FOLDY_FM2 = 0.75 * (197.3269804 / 938.272) ** 2

#: 1 barn = 100 fm^2.
FM2_PER_BARN = 100.0
