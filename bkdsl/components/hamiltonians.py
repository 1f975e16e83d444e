"""Hamiltonians and their terms: kinetic terms and potentials (kind ``potential``) composed into a
separable H(q, p) = T(p) + V(q), and the non-separable product and neural Hamiltonians (kind
``hamiltonian``); the integrators (:mod:`bkdsl.components.integrators`) take one as ``H``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bkdsl.lazy import lazy_module
from bkdsl.registry import Component, component, lookup

torch = lazy_module("torch")  # build only (bkdsl/lazy.py)


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class _MassP(_P):
    mass: float = Field(1.0, gt=0)


class _KP(_P):
    k: float = Field(1.0, description="strength")


class _MLPPotP(_P):
    hidden: int = Field(64, gt=0)
    depth: int = Field(2, ge=1)
    dim: int | None = Field(None, gt=0, description="configuration-space size (default: the Hamiltonian's)")


class HamiltonianTerm(Component):
    """A kinetic term T(p) or a potential V(q) of a separable Hamiltonian (kind ``potential``)."""

    def build_term(self, dim: int) -> torch.nn.Module:
        raise NotImplementedError


@component("quadratic_kinetic", kind="potential")
class QuadraticKineticC(HamiltonianTerm):
    """T(p) = |p|²/(2m)."""

    Params = _MassP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import QuadraticKinetic

        return QuadraticKinetic(self.params.mass)


@component("pendulum", kind="potential")
class PendulumC(HamiltonianTerm):
    """V(q) = k Σ(1 − cos q)."""

    Params = _KP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import PendulumPotential

        return PendulumPotential(self.params.k)


@component("harmonic", kind="potential")
class HarmonicC(HamiltonianTerm):
    """V(q) = k|q|²/2."""

    Params = _KP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import HarmonicPotential

        return HarmonicPotential(self.params.k)


@component("mlp_potential", kind="potential")
class MLPPotentialC(HamiltonianTerm):
    """A neural potential V(q) = MLP(q), tanh hidden layers."""

    Params = _MLPPotP

    def build_term(self, dim):
        from bkdsl.nn.hamiltonians import MLPPotential

        return MLPPotential(self.params.dim or dim, self.params.hidden, self.params.depth)


def _term(v: Any) -> Any:
    if isinstance(v, Component) and not isinstance(v, HamiltonianTerm):
        raise ValueError(f"`{v.name}` is a {v.kind}, not a kinetic term or potential")
    if isinstance(v, str):
        cls = lookup(v, "potential")
        if cls is None:
            raise ValueError(f"unknown potential `{v}`")
        return cls.from_args({})
    return v


class _SeparableP(_P):
    T: Any = Field(description="kinetic term, e.g. quadratic_kinetic(mass = 1.0)")
    V: Any = Field(description="potential, e.g. pendulum(k = 1.0) or mlp_potential(hidden = 64)")
    dim: int = Field(1, gt=0, description="configuration-space size n (phase space 2n)")

    _t = field_validator("T", "V", mode="before")(classmethod(lambda cls, v: _term(v)))

    @field_validator("T", "V")
    @classmethod
    def _is_term(cls, v):
        if not isinstance(v, HamiltonianTerm):
            raise ValueError("expected a kinetic term or potential component, e.g. `pendulum(k = 1.0)`")
        return v


class Hamiltonian(Component):
    """A Hamiltonian H(q, p) (kind ``hamiltonian``); ``separable`` when H = T(p) + V(q)."""

    separable = False

    def build(self):
        raise NotImplementedError

    def describe(self):
        d = super().describe()
        d["separable"] = self.separable
        return d


@component("separable", kind="hamiltonian")
class Separable(Hamiltonian):
    """H(q, p) = T(p) + V(q)."""

    Params = _SeparableP
    separable = True

    def build(self):
        from bkdsl.nn.hamiltonians import SeparableHamiltonian

        n = self.params.dim
        return SeparableHamiltonian(self.params.T.build_term(n), self.params.V.build_term(n), dim=n)

    def describe(self):
        show = lambda c: f"{c.name}({', '.join(f'{k} = {v}' for k, v in c.params.model_dump().items() if v is not None)})"  # noqa: E731
        return {"component": self.name, "kind": self.kind, "separable": True,
                "params": {"T": show(self.params.T), "V": show(self.params.V), "dim": self.params.dim}}


class _DimP(_P):
    dim: int = Field(1, gt=0)


@component("product_hamiltonian", kind="hamiltonian")
class ProductH(Hamiltonian):
    """The non-separable H = ½ Σ (q² + 1)(p² + 1)."""

    Params = _DimP

    def build(self):
        from bkdsl.nn.hamiltonians import ProductHamiltonian

        return ProductHamiltonian(self.params.dim)


class _MLPHP(_P):
    dim: int = Field(1, gt=0)
    hidden: int = Field(64, gt=0)
    depth: int = Field(2, ge=1)


@component("mlp_hamiltonian", kind="hamiltonian")
class MLPH(Hamiltonian):
    """A general neural H(q, p) (not separable)."""

    Params = _MLPHP

    def build(self):
        from bkdsl.nn.hamiltonians import MLPHamiltonian

        return MLPHamiltonian(self.params.dim, self.params.hidden, self.params.depth)
