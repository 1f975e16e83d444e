"""Integrators of Hamilton's equations: Euler, RK4, symplectic Euler, leapfrog (velocity Verlet),
Yoshida-4, implicit midpoint; and the Hamiltonian flow layer (a learned separable H advanced by one of
them).

Claims (``symplectic``, ``reversible``) are decided per method: the analytic rule (leapfrog on a
separable H is a composition of symplectic shears; implicit midpoint is symplectic for every H, …) and
a probe of the built step — JᵀΩJ = Ω at random points, a round trip through the exact inverse.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bkdsl.components.hamiltonians import Hamiltonian
from bkdsl.components.proofs import proven, refuted, unestablished
from bkdsl.components.shapes import last_axis
from bkdsl.diagnostics import BkError
from bkdsl.registry import Component, Proof, component
from bkdsl.lazy import lazy_module
from bkdsl.nn.integration_methods import INVERTIBLE, NEEDS_SEPARABLE, SYMPLECTIC

# the steps' torch code and the probes load when a claim is probed or a model built (bkdsl/lazy.py)
torch = lazy_module("torch")
probes = lazy_module("bkdsl.verify.probes")


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def _hamiltonian(v: Any) -> Any:
    if v is None or isinstance(v, Hamiltonian):
        return v
    if isinstance(v, Component):
        raise ValueError(f"`H` must be a hamiltonian, got the {v.kind} `{v.name}`")
    raise ValueError("`H` must name a hamiltonian declaration, e.g. `H = pend`")


class _IntegratorP(_P):
    H: Any = Field(None, description="the Hamiltonian (a `hamiltonian` declaration); default: a "
                                     "separable test H (anharmonic pendulum) for the probes")
    dt: float = Field(0.1, description="step size")
    steps: int = Field(1, ge=1, description="steps per application")
    reversible: bool = Field(False, description="backpropagate by integrating backward (O(1) memory)")

    _h = field_validator("H", mode="before")(classmethod(lambda cls, v: _hamiltonian(v)))


def _test_hamiltonian(dim: int = 2):
    """What an integrator without H is probed on: a separable, strongly nonlinear H (a pendulum in
    each coordinate plus a quartic coupling), so a non-structured method shows its error."""
    from bkdsl.nn.hamiltonians import QuadraticKinetic, SeparableHamiltonian

    class _V(torch.nn.Module):
        def forward(self, q):
            return (1 - torch.cos(q)).sum(-1) + 0.25 * (q ** 2).sum(-1) ** 2

    return SeparableHamiltonian(QuadraticKinetic(1.0), _V(), dim=dim)


class _Integrator(Component):
    method = ""
    inputs = ("x",)
    Params = _IntegratorP
    sequence = "pointwise"  # integrates the phase-space vector [q, p] of each position

    def validate(self) -> None:
        """What the declaration alone already refuses (E0201), checked by the claims pass at check time."""
        self._check_method()

    def probe_elements(self) -> int:
        # the probes use at most 8 steps on a 2·dim phase space, whatever `steps` says
        dim = getattr(self.params.H.params, "dim", 1) if self.params.H is not None else 1
        return 64 * (2 * int(dim)) ** 2

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        d = last_axis(ins, ctx, f"`{self.name}`")
        if isinstance(d, int) and d % 2:
            raise BkError("E0401", f"`{self.name}` integrates phase space [q, p]; its last axis must be even, got {d}",
                          span=ctx.span)
        H = self.params.H
        if H is not None and isinstance(d, int) and getattr(H.params, "dim", d // 2) != d // 2:
            raise BkError("E0401", f"`{self.name}`: the state has {d // 2} coordinates but H has "
                                   f"dim = {H.params.dim}", span=ctx.span)
        self._check_method(ctx.span)
        return ins[0]

    def _check_method(self, span=None):
        H = self.params.H
        if self.method in NEEDS_SEPARABLE and H is not None and not H.separable:
            raise BkError("E0201", f"`{self.name}` is explicit only for a separable H = T(p) + V(q); "
                                   f"`{H.decl_name or H.name}` is not separable", span=span or self.span,
                          help="use implicit_midpoint (symplectic for any H) or rk4")
        if self.params.reversible and self.method not in INVERTIBLE:
            raise BkError("E0201", f"`{self.name}` has no exact inverse, so `reversible = true` cannot "
                                   "backpropagate by integrating backward", span=span or self.span,
                          help="use leapfrog, symplectic_euler, yoshida4 or implicit_midpoint")

    def describe(self):
        H = self.params.H
        params = self.params.model_dump(exclude={"H"})
        params["H"] = (H.decl_name or H.name) if H is not None else None
        return {"component": self.name, "kind": self.kind, "params": params}

    def hamiltonian(self):
        H = self.params.H
        return H.build() if H is not None else _test_hamiltonian()

    def build(self):
        from bkdsl.nn.integrators import Integrator

        self._check_method()
        p = self.params
        return Integrator(self.hamiltonian(), self.method, p.dt, p.steps, p.reversible)

    def _probe_flow(self):
        from bkdsl.nn.integrators import Integrator

        torch.manual_seed(0)
        H = self.hamiltonian().double()
        if self.method in NEEDS_SEPARABLE and not H.separable:
            return None, H
        p = self.params
        # the probe flow: the declared step, at most 8 steps (symplecticity composes, and the
        # deviation of a non-symplectic method only grows with more steps)
        return Integrator(H, self.method, p.dt, min(p.steps, 8)), H

    def prove(self, prop):
        H = self.params.H
        nonsep = H is not None and not H.separable
        if prop == "symplectic":
            if self.method in NEEDS_SEPARABLE and nonsep:
                return Proof(False, "analytic", f"`{self.name}` is symplectic only for a separable H; "
                                                f"`{H.decl_name or H.name}` is not separable")
            flow, Hm = self._probe_flow()
            r = probes.probe_symplectic(flow, 2 * Hm.dim)
            if self.method in SYMPLECTIC:
                rule = {"leapfrog": "leapfrog on a separable H is a composition of symplectic shears",
                        "symplectic_euler": "symplectic Euler on a separable H is a composition of two shears",
                        "yoshida4": "Yoshida's triple jump composes symplectic leapfrog steps",
                        "implicit_midpoint": "the implicit midpoint rule is symplectic for every H "
                                             "(a Gauss–Legendre collocation method)"}[self.method]
                return proven(rule, r)
            return refuted(self.name, prop, r) if not r.ok else unestablished(self.name, prop, r)
        if prop == "reversible":
            flow, Hm = self._probe_flow()
            if flow is None:
                return Proof(False, "analytic", f"`{self.name}` needs a separable H")
            d = 2 * Hm.dim
            if self.method in INVERTIBLE:
                r = probes.probe_reversible(flow, lambda x: torch.cat(flow.backward_flow(*x.chunk(2, -1)), -1), d)
                rule = ("symplectic Euler is inverted by its adjoint (drift back, then kick back)"
                        if self.method == "symplectic_euler" else
                        f"`{self.name}` is time-symmetric: the step with −dt inverts it")
                return proven(rule, r)
            # no exact inverse: show what running it backward does
            from bkdsl.nn.integrators import STEPS

            def back(x):
                q, p = x.chunk(2, -1)
                for _ in range(flow.steps):
                    q, p = STEPS[self.method](Hm, q, p, -flow.dt)
                return torch.cat([q, p], -1)

            r = probes.probe_reversible(flow, back, d)
            return refuted(self.name, prop, r, "it has no exact inverse; the probe runs it with −dt")
        return None


# method → the integrator registered under that method's own name (``verlet`` is an alias of leapfrog)
_INTEGRATOR_BY_METHOD: dict[str, type[_Integrator]] = {}


def _integrator(name: str, method: str, doc: str):
    cls = type(f"Integrator_{name}", (_Integrator,), {"method": method, "__doc__": doc})
    if name == method:
        _INTEGRATOR_BY_METHOD[method] = cls
    return component(name, kind="integrator", inputs=("x",))(cls)


_integrator("euler", "euler", "Explicit Euler: order 1, not symplectic, no exact inverse.")
_integrator("rk4", "rk4", "Classical Runge–Kutta: order 4, not symplectic, no exact inverse.")
_integrator("symplectic_euler", "symplectic_euler", "Symplectic Euler (kick-drift): order 1, symplectic, reversible.")
_integrator("leapfrog", "leapfrog", "Leapfrog / velocity Verlet: order 2, symplectic, time-symmetric.")
_integrator("verlet", "leapfrog", "Velocity Verlet (= leapfrog).")
_integrator("yoshida4", "yoshida4", "Yoshida's 4th-order triple jump of leapfrogs: symplectic, time-symmetric.")
_integrator("implicit_midpoint", "implicit_midpoint",
            "Implicit midpoint: order 2, symplectic for any H, time-symmetric (fixed-point solve to 1e-14).")


class _HamFlowP(_P):
    method: Literal["euler", "rk4", "symplectic_euler", "leapfrog", "yoshida4", "implicit_midpoint"] = "leapfrog"
    dt: float = Field(0.1, gt=0, description="time per application")
    steps: int = Field(1, ge=1, description="integrator steps per application (substep dt/steps)")
    hidden: int = Field(64, gt=0, description="width of the neural potential V(q)")
    depth: int = Field(2, ge=1)
    mass: float = Field(1.0, gt=0)


@component("hamiltonian_flow", kind="layer", inputs=("x",))
class HamiltonianFlowC(Component):
    """A learned separable Hamiltonian T(p) + V_θ(q) (neural V) advanced by ``method``: x [B, 2n] →
    x after ``dt``. Claims on it are decided as for the integrator of that method."""

    Params = _HamFlowP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        d = last_axis(ins, ctx, "`hamiltonian_flow`")
        if not isinstance(d, int) or d % 2:
            raise BkError("E0401", f"`hamiltonian_flow` needs a known even last axis [q, p], got {ins[0].show()}",
                          span=ctx.span)
        self.dim = d // 2
        return ins[0]

    def build(self):
        from bkdsl.nn.hamiltonians import MLPPotential, QuadraticKinetic, SeparableHamiltonian
        from bkdsl.nn.integrators import Integrator

        p = self.params
        n = getattr(self, "dim", 1)
        H = SeparableHamiltonian(QuadraticKinetic(p.mass), MLPPotential(n, p.hidden, p.depth), dim=n)
        return Integrator(H, p.method, p.dt / p.steps, p.steps)

    def prove(self, prop):
        proxy = _INTEGRATOR_BY_METHOD[self.params.method].from_args({"dt": self.params.dt / self.params.steps,
                                                                    "steps": self.params.steps})
        proxy.hamiltonian = lambda: self.build().H  # probe the neural H itself
        return proxy.prove(prop)
