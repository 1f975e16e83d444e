"""Orbital-free Skyrme physics for bkdsl: ETF ground states and random-potential density data sets.

Public API (units: MeV, fm, fm^-3, b):

* :func:`generate_nuclear_densities` -> :class:`NuclearDataset` (fields rho, E, v, Q20, Q30, ...)
* :func:`ground_state` -> :class:`GroundState`; :func:`densities_in_potential`
* registries: :func:`get_nucleus`, :func:`get_functional`, :func:`register_functional`, :class:`SkyrmeParams`
* building blocks: :class:`AxialGrid`, :class:`SkyrmeETF`, :class:`Coulomb`, :func:`solve`,
  potentials :func:`sho`, :func:`rnd`, :func:`random_ho`, :func:`multipoles`, filters.
"""

# name → the submodule defining it. Imported at first access (PEP 562): `import bkdsl.physics` (and
# `bkdsl.physics.params`, which a data source's schema reads) costs nothing; torch and scipy load
# when a solver, grid or data set is first used.
_LAZY = {
    "Coulomb": "coulomb", "uniform_sphere_potential": "coulomb", "UNITS": "field_units",
    "NuclearDataset": "dataset", "generate_nuclear_densities": "dataset", "SkyrmeETF": "etf",
    "energy_window": "filters", "flatten_histogram": "filters", "q20_window": "filters", "AxialGrid": "grid",
    "GridSpec": "grid", "SpectralBasis": "grid", "check_grid": "grid", "multipoles": "multipoles",
    "rms_radius": "multipoles", "to_barn_units": "multipoles", "Nucleus": "nuclei", "get_nucleus": "nuclei",
    "known_nuclei": "nuclei", "random_ho": "potentials", "rnd": "potentials", "sho": "potentials",
    "SkyrmeParams": "skyrme", "available_functionals": "skyrme", "get_functional": "skyrme",
    "register_functional": "skyrme", "K_CUT": "solver", "GroundState": "solver", "SolveResult": "solver",
    "Variational": "solver", "densities_in_potential": "solver", "ground_state": "solver", "solve": "solver",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # once: later accesses are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Coulomb", "uniform_sphere_potential", "UNITS", "NuclearDataset", "generate_nuclear_densities",
    "SkyrmeETF", "energy_window", "flatten_histogram", "q20_window", "AxialGrid", "GridSpec",
    "SpectralBasis", "check_grid", "multipoles", "rms_radius", "to_barn_units", "Nucleus", "get_nucleus",
    "known_nuclei", "random_ho", "rnd", "sho", "SkyrmeParams", "available_functionals", "get_functional",
    "register_functional", "K_CUT", "GroundState", "SolveResult", "Variational",
    "densities_in_potential", "ground_state", "solve",
]
