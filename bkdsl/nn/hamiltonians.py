"""Hamiltonians H(q, p) for the integrators: separable T(p) + V(q) and general H.

Every Hamiltonian is an ``nn.Module`` with

* ``energy(q, p)`` → ``[...]`` (summed over the phase-space dimension ``dim``),
* ``dHdq(q, p)``, ``dHdp(q, p)`` — analytic where the form is known, autograd otherwise,
* ``separable`` — True when H = T(p) + V(q), which the explicit symplectic integrators (leapfrog,
  symplectic Euler, Yoshida) need.

q, p have shape ``[..., dim]``. Neural terms are smooth (tanh / softplus), so their gradients —
the forces — are smooth too, which the symplectic probes and the reversible backward rely on.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def grad_of(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """∇ₓ Σ f(x) by autograd, keeping the graph when the caller records one (training, probes) and
    dropping it under ``no_grad`` (the reversible forward pass, which must not grow a graph)."""
    outer = torch.is_grad_enabled()
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(xg).sum(), xg, create_graph=outer)
    return g


# --------------------------------------------------------------------------------------------
# kinetic terms T(p) and potentials V(q)
# --------------------------------------------------------------------------------------------
class QuadraticKinetic(nn.Module):
    """T(p) = |p|² / (2m)."""

    def __init__(self, mass: float = 1.0):
        super().__init__()
        if mass <= 0:
            raise ValueError("mass must be positive")
        self.mass = float(mass)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return (p * p).sum(-1) / (2 * self.mass)

    def grad(self, p: torch.Tensor) -> torch.Tensor:
        return p / self.mass


class PendulumPotential(nn.Module):
    """V(q) = k Σ (1 − cos q)."""

    def __init__(self, k: float = 1.0):
        super().__init__()
        self.k = float(k)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.k * (1 - torch.cos(q)).sum(-1)

    def grad(self, q: torch.Tensor) -> torch.Tensor:
        return self.k * torch.sin(q)


class HarmonicPotential(nn.Module):
    """V(q) = k |q|² / 2."""

    def __init__(self, k: float = 1.0):
        super().__init__()
        self.k = float(k)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.k * (q * q).sum(-1)

    def grad(self, q: torch.Tensor) -> torch.Tensor:
        return self.k * q


class MLPPotential(nn.Module):
    """A neural potential V(q) = MLP(q) with tanh hidden layers (smooth forces)."""

    def __init__(self, dim: int = 1, hidden: int = 64, depth: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        d = dim
        for _ in range(depth):
            layers += [nn.Linear(d, hidden), nn.Tanh()]
            d = hidden
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.net(q).squeeze(-1)

    def grad(self, q: torch.Tensor) -> torch.Tensor:
        return grad_of(self, q)


# --------------------------------------------------------------------------------------------
# Hamiltonians
# --------------------------------------------------------------------------------------------
class Hamiltonian(nn.Module):
    separable: bool = False
    dim: int = 1

    def energy(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.energy(q, p)

    def dHdq(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return grad_of(lambda x: self.energy(x, p), q)

    def dHdp(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return grad_of(lambda x: self.energy(q, x), p)


class SeparableHamiltonian(Hamiltonian):
    """H(q, p) = T(p) + V(q): ∂H/∂q = ∇V(q) depends on q only, ∂H/∂p = ∇T(p) on p only."""

    separable = True

    def __init__(self, T: nn.Module, V: nn.Module, dim: int = 1):
        super().__init__()
        self.T, self.V, self.dim = T, V, dim

    def energy(self, q, p):
        return self.T(p) + self.V(q)

    def dV(self, q: torch.Tensor) -> torch.Tensor:
        return self.V.grad(q) if hasattr(self.V, "grad") else grad_of(self.V, q)

    def dT(self, p: torch.Tensor) -> torch.Tensor:
        return self.T.grad(p) if hasattr(self.T, "grad") else grad_of(self.T, p)

    def dHdq(self, q, p):
        return self.dV(q)

    def dHdp(self, q, p):
        return self.dT(p)


class ProductHamiltonian(Hamiltonian):
    """H = ½ Π(q_i² + 1)(p_i² + 1) summed over i — the standard non-separable test Hamiltonian
    (Tao 2016, "Explicit symplectic approximation of nonseparable Hamiltonians")."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def energy(self, q, p):
        return 0.5 * ((q * q + 1) * (p * p + 1)).sum(-1)

    def dHdq(self, q, p):
        return q * (p * p + 1)

    def dHdp(self, q, p):
        return p * (q * q + 1)


class MLPHamiltonian(Hamiltonian):
    """A general neural H(q, p) = MLP([q, p]) (Hamiltonian neural network); not separable."""

    def __init__(self, dim: int = 1, hidden: int = 64, depth: int = 2):
        super().__init__()
        self.dim = dim
        self.net = MLPPotential(2 * dim, hidden, depth)

    def energy(self, q, p):
        return self.net(torch.cat([q, p], dim=-1))


def pendulum_energy(q: torch.Tensor, p: torch.Tensor, k: float = 1.0, mass: float = 1.0) -> torch.Tensor:
    """The analytic pendulum energy (the ground truth of the Hamiltonian worked spec)."""
    return (p * p).sum(-1) / (2 * mass) + k * (1 - torch.cos(q)).sum(-1)


__all__ = ["grad_of", "QuadraticKinetic", "PendulumPotential", "HarmonicPotential", "MLPPotential",
           "Hamiltonian", "SeparableHamiltonian", "ProductHamiltonian", "MLPHamiltonian",
           "pendulum_energy"]
