"""Orbital-free Skyrme physics for bkdsl: ETF ground states and random-potential density data sets.

Public API (units: MeV, fm, fm^-3, b):

* :func:`generate_nuclear_densities` -> :class:`NuclearDataset` (fields rho, E, v, Q20, Q30, ...)
* :func:`ground_state` -> :class:`GroundState`; :func:`densities_in_potential`
* registries: :func:`get_nucleus`, :func:`get_functional`, :func:`register_functional`, :class:`SkyrmeParams`
* building blocks: :class:`AxialGrid`, :class:`SkyrmeETF`, :class:`Coulomb`, :func:`solve`,
  potentials :func:`sho`, :func:`rnd`, :func:`random_ho`, :func:`multipoles`, filters.
"""

from .coulomb import Coulomb, uniform_sphere_potential
from .dataset import UNITS, NuclearDataset, generate_nuclear_densities
from .etf import SkyrmeETF
from .filters import energy_window, flatten_histogram, q20_window
from .grid import AxialGrid, GridSpec, SpectralBasis, check_grid
from .multipoles import multipoles, rms_radius, to_barn_units
from .nuclei import Nucleus, get_nucleus, known_nuclei
from .potentials import random_ho, rnd, sho
from .skyrme import SkyrmeParams, available_functionals, get_functional, register_functional
from .solver import (K_CUT, GroundState, SolveResult, Variational, densities_in_potential,
                     ground_state, solve)

__all__ = [
    "Coulomb", "uniform_sphere_potential", "UNITS", "NuclearDataset", "generate_nuclear_densities",
    "SkyrmeETF", "energy_window", "flatten_histogram", "q20_window", "AxialGrid", "GridSpec",
    "SpectralBasis", "check_grid", "multipoles", "rms_radius", "to_barn_units", "Nucleus", "get_nucleus",
    "known_nuclei", "random_ho", "rnd", "sho", "SkyrmeParams", "available_functionals", "get_functional",
    "register_functional", "K_CUT", "GroundState", "SolveResult", "Variational",
    "densities_in_potential", "ground_state", "solve",
]
