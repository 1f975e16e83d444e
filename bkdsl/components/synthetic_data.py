"""Synthetic data sources of the worked specs: associative recall (fast weights), pendulum
(state, next state) pairs (Hamiltonian flows), channel equalisation by an all-pass filter
(holographic weight synthesis). Each is a seeded generator function plus its registered source."""

from __future__ import annotations

import torch
from pydantic import Field

from bkdsl.components.data_sources import DataParams, DataSource
from bkdsl.registry import component
from bkdsl.train.data import Dataset, FieldInfo


class _RecallP(DataParams):
    samples: int = Field(4096, gt=0)
    pairs: int = Field(24, gt=0, description="key–value pairs written before the query")
    keys: int = Field(8, gt=0, description="distinct keys (fewer keys than pairs: keys are rewritten)")
    values: int = Field(16, gt=0, description="distinct values")


def associative_recall(samples: int, pairs: int, keys: int, values: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Sequences k₁ v₁ k₂ v₂ … k_P v_P q with keys drawn (with repeats) from ``keys`` symbols and values
    from ``values``; the target is the value written *last* for q. Token ids: keys 0…K−1, values
    K…K+V−1. Rewrites are what separates the delta rule (which replaces the old value) from the
    additive update (which averages old and new: source 001 §4.2's retrieval collapse)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, keys, (samples, pairs), generator=g)
    v = torch.randint(0, values, (samples, pairs), generator=g)
    qi = torch.randint(0, pairs, (samples,), generator=g)
    q = k[torch.arange(samples), qi]
    # the last position at which q was written
    hit = (k == q.unsqueeze(1))
    last = (hit * torch.arange(pairs).unsqueeze(0)).argmax(1)
    target = v[torch.arange(samples), last] + keys
    seq = torch.stack([k, v + keys], dim=2).reshape(samples, 2 * pairs)
    tokens = torch.cat([seq, q.unsqueeze(1)], dim=1)
    return {"tokens": tokens, "answer": target}


@component("associative_recall", kind="data")
class AssociativeRecall(DataSource):
    """Key→value recall: tokens k₁ v₁ … k_P v_P q, answer = the value written last for the query key q."""

    Params = _RecallP
    unnormalized_fields = ("tokens", "answer")

    @classmethod
    def declared_fields(cls, call):
        return {"tokens": "1", "answer": "1"}

    def fields(self):
        return {"tokens": FieldInfo("tokens", shape=(2 * self.params.pairs + 1,), dtype="int"),
                "answer": FieldInfo("answer", shape=(), dtype="int")}

    def load(self, *, seed: int, base_dir: str | None = None):
        p = self.params
        return Dataset(associative_recall(p.samples, p.pairs, p.keys, p.values, seed if p.seed is None else p.seed),
                       self.fields(), meta={"source": "associative_recall"})


class _TrajP(DataParams):
    samples: int = Field(1024, gt=0, description="(state, next state) pairs")
    dt: float = Field(0.1, gt=0, description="time between the two states")
    k: float = Field(1.0, gt=0, description="pendulum strength (ω₀² = k/m)")
    mass: float = Field(1.0, gt=0)
    energy: list[float] = Field([0.1, 1.5], description="range of H for the initial states")


def pendulum_pairs(samples: int, dt: float, k: float = 1.0, mass: float = 1.0, energy=(0.1, 1.5),
                   seed: int = 0, time_reverse: bool = False) -> dict[str, torch.Tensor]:
    """Pendulum states x = (q, p) with H uniform in ``energy`` and random phase, and x' the state dt
    later (exact up to a 1000-substep Yoshida-4 solve, error ~1e-13). ``time_reverse`` appends the
    reversed pairs ((q', −p') → (q, −p)), source 000 §4.3."""
    from bkdsl.nn.hamiltonians import PendulumPotential, QuadraticKinetic, SeparableHamiltonian
    from bkdsl.nn.integrators import Integrator

    g = torch.Generator().manual_seed(seed)
    E = energy[0] + (energy[1] - energy[0]) * torch.rand(samples, 1, generator=g, dtype=torch.float64)
    q0 = torch.zeros(samples, 1, dtype=torch.float64)
    p0 = torch.sqrt(2 * mass * E)
    H = SeparableHamiltonian(QuadraticKinetic(mass), PendulumPotential(k), dim=1)
    # a random phase: run each state for a random time up to one small-amplitude period
    T = 2 * torch.pi * (mass / k) ** 0.5
    t0 = T * torch.rand(samples, 1, generator=g, dtype=torch.float64)
    sub = 400
    q, p = q0, p0
    fine = Integrator(H, "yoshida4", 1.0, 1)
    with torch.no_grad():
        for _ in range(sub):
            q, p = fine.step(q, p, dt=t0 / sub)
        q1, p1 = q, p
        for _ in range(1000):
            q1, p1 = fine.step(q1, p1, dt=dt / 1000)
    x, x1 = torch.cat([q, p], 1), torch.cat([q1, p1], 1)
    if time_reverse:
        x, x1 = torch.cat([x, torch.cat([q1, -p1], 1)]), torch.cat([x1, torch.cat([q, -p], 1)])
    return {"x": x.float(), "x_next": x1.float()}


@component("hamiltonian_trajectories", kind="data")
class HamiltonianTrajectories(DataSource):
    """Pendulum (state, state dt later) pairs: fields ``x`` [2], ``x_next`` [2]."""

    Params = _TrajP
    unnormalized_fields = ("x", "x_next")

    @classmethod
    def declared_fields(cls, call):
        return {"x": "1", "x_next": "1"}

    def fields(self):
        return {"x": FieldInfo("x", shape=(2,)), "x_next": FieldInfo("x_next", shape=(2,))}

    def load(self, *, seed: int, base_dir: str | None = None):
        p = self.params
        return Dataset(pendulum_pairs(p.samples, p.dt, p.k, p.mass, tuple(p.energy), seed if p.seed is None else p.seed),
                       self.fields(), meta={"source": "hamiltonian_trajectories"})


class _HoloP(DataParams):
    samples: int = Field(2048, gt=0)
    dim: int = Field(64, gt=0, description="signal length N")


def holographic_task(samples: int, dim: int, seed: int = 0, channel_seed: int = 99) -> dict[str, torch.Tensor]:
    """Channel equalisation: y = c ⊛ x with c a fixed random all-pass (phasor) filter, the target is
    x. The inverse filter is an orthogonal circulant (conj spectrum) — exactly what holographic
    weight synthesis with phasor binding represents (source 001 §2)."""
    from bkdsl.nn.binding import circular_conv, random_phasor

    c = random_phasor(dim, generator=torch.Generator().manual_seed(channel_seed))
    x = torch.randn(samples, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return {"signal": circular_conv(c.expand_as(x), x).float(), "clean": x.float()}


@component("holographic_task", kind="data")
class HolographicTask(DataSource):
    """Channel equalisation: signal = c ⊛ clean with c a fixed random all-pass (phasor) filter; target `clean`."""

    Params = _HoloP
    unnormalized_fields = ("signal", "clean")

    @classmethod
    def declared_fields(cls, call):
        return {"signal": "1", "clean": "1"}

    def fields(self):
        return {"signal": FieldInfo("signal", shape=(self.params.dim,)),
                "clean": FieldInfo("clean", shape=(self.params.dim,))}

    def load(self, *, seed: int, base_dir: str | None = None):
        p = self.params
        return Dataset(holographic_task(p.samples, p.dim, seed if p.seed is None else p.seed), self.fields(),
                       meta={"source": "holographic_task"})
