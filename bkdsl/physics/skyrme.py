"""Registry of Skyrme parameter sets (energy-density functionals).

A parameter set is a :class:`SkyrmeParams`; :func:`get_functional` looks one up by name (case- and
punctuation-insensitive: ``"SLy4"``, ``"sly4"``, ``"SkM*"``, ``"skmstar"``) and raises
``BkError(E0702)`` for an unknown name. :func:`register_functional` adds new sets at run time.

Units: t0 [MeV fm^3], t1, t2 [MeV fm^5], t3 [MeV fm^(3+3 alpha)], W0 [MeV fm^5],
hbar^2/2m [MeV fm^2]; x0..x3 and alpha are dimensionless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bkdsl.diagnostics import BkError


@dataclass(frozen=True)
class SkyrmeParams:
    name: str
    t0: float
    t1: float
    t2: float
    t3: float
    x0: float
    x1: float
    x2: float
    x3: float
    alpha: float
    W0: float
    hbar2_2m: float = 20.73553
    #: one-body centre-of-mass correction used in the fit: hbar^2/2m -> hbar^2/2m (1 - 1/A).
    com_one_body: bool = True
    #: whether the fit kept the J^2 (spin-current squared) terms. The orbital-free ETF solver does
    #: not include them (see docs/physics.md); the flag is recorded so results can say so.
    j2_terms: bool = False
    reference: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    # -- derived coefficients of the energy density (Chabanat et al. 1997, Bender et al. 2003) --
    @property
    def c_eff_total(self) -> float:
        """Coefficient of rho in hbar^2/2m*_q: (1/8)[t1(2+x1) + t2(2+x2)]  [MeV fm^5]."""
        return (self.t1 * (2 + self.x1) + self.t2 * (2 + self.x2)) / 8.0

    @property
    def c_eff_q(self) -> float:
        """Coefficient of rho_q in hbar^2/2m*_q: (1/8)[t2(2x2+1) - t1(2x1+1)]  [MeV fm^5]."""
        return (self.t2 * (2 * self.x2 + 1) - self.t1 * (2 * self.x1 + 1)) / 8.0

    @property
    def c_grad_total(self) -> float:
        """Coefficient of (grad rho)^2: (1/32)[3 t1(2+x1) - t2(2+x2)]  [MeV fm^5]."""
        return (3 * self.t1 * (2 + self.x1) - self.t2 * (2 + self.x2)) / 32.0

    @property
    def c_grad_q(self) -> float:
        """Coefficient of sum_q (grad rho_q)^2: -(1/32)[3 t1(2x1+1) + t2(2x2+1)]  [MeV fm^5]."""
        return -(3 * self.t1 * (2 * self.x1 + 1) + self.t2 * (2 * self.x2 + 1)) / 32.0


_REGISTRY: dict[str, SkyrmeParams] = {}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("*", "star"))


def register_functional(params: SkyrmeParams, *, overwrite: bool = False) -> SkyrmeParams:
    """Add a parameter set to the registry under its name and aliases."""
    keys = {_key(params.name), *(_key(a) for a in params.aliases)}
    if not overwrite:
        for k in keys:
            if k in _REGISTRY and _REGISTRY[k] is not params:
                raise ValueError(f"functional {params.name!r} clashes with {_REGISTRY[k].name!r}")
    for k in keys:
        _REGISTRY[k] = params
    return params


def available_functionals() -> list[str]:
    return sorted({p.name for p in _REGISTRY.values()})


def get_functional(name: str | SkyrmeParams) -> SkyrmeParams:
    if isinstance(name, SkyrmeParams):
        return name
    p = _REGISTRY.get(_key(str(name)))
    if p is None:
        raise BkError(
            "E0702",
            f"unknown energy-density functional `{name}`",
            help=f"known functionals: {', '.join(available_functionals())}; "
            "add one with bkdsl.physics.register_functional(SkyrmeParams(...))",
        )
    return p


SLY4 = register_functional(SkyrmeParams(
    name="SLy4", t0=-2488.91, t1=486.82, t2=-546.39, t3=13777.0,
    x0=0.834, x1=-0.344, x2=-1.0, x3=1.354, alpha=1.0 / 6.0, W0=123.0, hbar2_2m=20.73553,
    com_one_body=True, j2_terms=False,
    reference="E. Chabanat et al., Nucl. Phys. A 635 (1998) 231", aliases=("sly-4",)))

SLY5 = register_functional(SkyrmeParams(
    name="SLy5", t0=-2484.88, t1=483.13, t2=-549.40, t3=13763.0,
    x0=0.778, x1=-0.328, x2=-1.0, x3=1.267, alpha=1.0 / 6.0, W0=126.0, hbar2_2m=20.73553,
    com_one_body=True, j2_terms=True,
    reference="E. Chabanat et al., Nucl. Phys. A 635 (1998) 231 (fitted with J^2 terms)"))

SKMSTAR = register_functional(SkyrmeParams(
    name="SkM*", t0=-2645.0, t1=410.0, t2=-135.0, t3=15595.0,
    x0=0.09, x1=0.0, x2=0.0, x3=0.0, alpha=1.0 / 6.0, W0=130.0, hbar2_2m=20.73,
    com_one_body=True, j2_terms=False,
    reference="J. Bartel et al., Nucl. Phys. A 386 (1982) 79", aliases=("skmstar", "skm-star")))
