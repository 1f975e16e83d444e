"""Time integrators of Hamilton's equations q̇ = ∂H/∂p, ṗ = −∂H/∂q, and reversible backprop.

================== ======= ============== ============= ===================================
method             order   symplectic     exact inverse needs
================== ======= ============== ============= ===================================
euler              1       no             no            any H
rk4                4       no             no            any H
symplectic_euler   1       yes            yes           separable H (explicit)
leapfrog           2       yes            yes (−dt)     separable H (velocity Verlet, kick-drift-kick)
yoshida4           4       yes            yes (−dt)     separable H (three leapfrogs, Yoshida 1990)
implicit_midpoint  2       yes            yes (−dt)*    any H (fixed-point solve)
================== ======= ============== ============= ===================================

\\* implicit midpoint is symmetric, so its inverse is itself with −dt, exactly for the exact
solution of the implicit equation and to the solver tolerance (1e-14 here) in practice.

``Integrator(reversible=True)`` backpropagates by integrating *backward*: the forward pass keeps only
the final state; the backward pass reconstructs each earlier state with the exact inverse step and
recomputes that single step under autograd to get its vector–Jacobian product (Hamiltonian echo
backprop, source 000 §4.1). Memory is O(1) in the number of steps instead of O(steps); the
gradients equal autograd's through the stored trajectory up to the round-off of the reconstruction.
"""

from __future__ import annotations

import torch
from torch import nn

from bkdsl.nn.hamiltonians import Hamiltonian
from bkdsl.nn.integration_methods import (INVERTIBLE, METHODS, NEEDS_SEPARABLE, ORDER,  # noqa: F401
                                           SYMPLECTIC)  # torch-free facts, re-exported

# Yoshida (1990) fourth-order triple jump: w1 = 1 / (2 − 2^{1/3}), w0 = −2^{1/3} w1, 2 w1 + w0 = 1.
_CBRT2 = 2.0 ** (1.0 / 3.0)
YOSHIDA_W1 = 1.0 / (2.0 - _CBRT2)
YOSHIDA_W0 = -_CBRT2 * YOSHIDA_W1


Step = tuple[torch.Tensor, torch.Tensor]


def euler_step(H: Hamiltonian, q, p, dt) -> Step:
    return q + dt * H.dHdp(q, p), p - dt * H.dHdq(q, p)


def rk4_step(H: Hamiltonian, q, p, dt) -> Step:
    def f(q, p):
        return H.dHdp(q, p), -H.dHdq(q, p)

    k1q, k1p = f(q, p)
    k2q, k2p = f(q + 0.5 * dt * k1q, p + 0.5 * dt * k1p)
    k3q, k3p = f(q + 0.5 * dt * k2q, p + 0.5 * dt * k2p)
    k4q, k4p = f(q + dt * k3q, p + dt * k3p)
    return (q + dt / 6 * (k1q + 2 * k2q + 2 * k3q + k4q),
            p + dt / 6 * (k1p + 2 * k2p + 2 * k3p + k4p))


def symplectic_euler_step(H, q, p, dt) -> Step:
    """Kick then drift: p' = p − dt ∇V(q), q' = q + dt ∇T(p') (source 001 §4.3.2)."""
    p = p - dt * H.dV(q)
    return q + dt * H.dT(p), p


def symplectic_euler_inverse(H, q, p, dt) -> Step:
    q = q - dt * H.dT(p)
    return q, p + dt * H.dV(q)


def leapfrog_step(H, q, p, dt) -> Step:
    """Velocity Verlet (kick-drift-kick): symmetric, so leapfrog(−dt) inverts leapfrog(dt) exactly."""
    p = p - 0.5 * dt * H.dV(q)
    q = q + dt * H.dT(p)
    return q, p - 0.5 * dt * H.dV(q)


def yoshida4_step(H, q, p, dt) -> Step:
    for w in (YOSHIDA_W1, YOSHIDA_W0, YOSHIDA_W1):
        q, p = leapfrog_step(H, q, p, w * dt)
    return q, p


def implicit_midpoint_step(H, q, p, dt, tol: float = 1e-14, max_iter: int = 100) -> Step:
    """x' = x + dt f((x + x')/2) by fixed-point iteration (converges for dt·Lip(f) < 2).

    Iterates until the update is under ``tol`` relative to the state (or ``max_iter``); the
    symplecticity of the computed map is that of the exact midpoint map up to this tolerance."""
    qn, pn = euler_step(H, q, p, dt)
    for _ in range(max_iter):
        qm, pm = 0.5 * (q + qn), 0.5 * (p + pn)
        q2 = q + dt * H.dHdp(qm, pm)
        p2 = p - dt * H.dHdq(qm, pm)
        err = torch.maximum((q2 - qn).abs().max(), (p2 - pn).abs().max()).detach()
        scale = 1.0 + torch.maximum(q2.abs().max(), p2.abs().max()).detach()
        qn, pn = q2, p2
        if float(err) <= tol * float(scale):
            break
    return qn, pn


STEPS = {"euler": euler_step, "rk4": rk4_step, "symplectic_euler": symplectic_euler_step,
         "leapfrog": leapfrog_step, "yoshida4": yoshida4_step, "implicit_midpoint": implicit_midpoint_step}


def inverse_step(method: str, H, q, p, dt) -> Step:
    """The exact inverse of one step of ``method`` (ValueError where none exists)."""
    if method == "symplectic_euler":
        return symplectic_euler_inverse(H, q, p, dt)
    if method in ("leapfrog", "yoshida4", "implicit_midpoint"):  # symmetric methods
        return STEPS[method](H, q, p, -dt)
    raise ValueError(f"`{method}` has no exact inverse step")


class _ReversibleFlow(torch.autograd.Function):
    """Forward without a graph; backward by reconstructing states with the inverse step."""

    @staticmethod
    def forward(ctx, integ: "Integrator", q0, p0, *params):
        with torch.no_grad():
            q, p = q0, p0
            for _ in range(integ.steps):
                q, p = integ.step(q, p)
        ctx.integ = integ
        ctx.save_for_backward(q, p)
        return q.clone(), p.clone()

    @staticmethod
    def backward(ctx, gq, gp):
        integ: Integrator = ctx.integ
        q, p = ctx.saved_tensors
        params = [w for w in integ.H.parameters()]
        gparams = [torch.zeros_like(w) for w in params]
        gq = torch.zeros_like(q) if gq is None else gq
        gp = torch.zeros_like(p) if gp is None else gp
        for _ in range(integ.steps):
            with torch.no_grad():
                q, p = integ.inverse(q, p)
            with torch.enable_grad():
                qi = q.detach().requires_grad_(True)
                pi = p.detach().requires_grad_(True)
                qn, pn = integ.step(qi, pi)
                grads = torch.autograd.grad((qn, pn), [qi, pi] + params, (gq, gp), allow_unused=True)
            gq, gp = grads[0], grads[1]
            for i, g in enumerate(grads[2:]):
                if g is not None:
                    gparams[i] += g
        return (None, gq, gp, *gparams)


class Integrator(nn.Module):
    """``steps`` steps of ``method`` with step ``dt`` on Hamiltonian ``H``: (q, p) → (q_T, p_T).

    ``reversible=True`` backpropagates by integrating backward (O(1) memory; needs an invertible
    method). ``forward`` also accepts one phase-space tensor ``x = [q, p]`` (``flow``)."""

    def __init__(self, H: Hamiltonian, method: str = "leapfrog", dt: float = 0.1, steps: int = 1,
                 reversible: bool = False):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown integrator {method!r}; one of {METHODS}")
        if method in NEEDS_SEPARABLE and not getattr(H, "separable", False):
            raise ValueError(f"`{method}` is explicit only for a separable H = T(p) + V(q); "
                             "use implicit_midpoint (or rk4) for a general H")
        if reversible and method not in INVERTIBLE:
            raise ValueError(f"`{method}` has no exact inverse, so it cannot backpropagate reversibly")
        self.H, self.method, self.dt, self.steps, self.reversible = H, method, float(dt), int(steps), reversible

    def step(self, q, p, dt: float | None = None) -> Step:
        return STEPS[self.method](self.H, q, p, self.dt if dt is None else dt)

    def inverse(self, q, p, dt: float | None = None) -> Step:
        return inverse_step(self.method, self.H, q, p, self.dt if dt is None else dt)

    def forward(self, q: torch.Tensor, p: torch.Tensor | None = None):
        if p is None:  # one phase-space tensor [..., 2 dim]
            q, p = q.chunk(2, dim=-1)
            return torch.cat(self.forward(q, p), dim=-1)
        if self.reversible and torch.is_grad_enabled():
            return _ReversibleFlow.apply(self, q, p, *self.H.parameters())
        for _ in range(self.steps):
            q, p = self.step(q, p)
        return q, p

    def backward_flow(self, q: torch.Tensor, p: torch.Tensor) -> Step:
        """Run the exact inverse ``steps`` times: the state the forward pass started from."""
        for _ in range(self.steps):
            q, p = self.inverse(q, p)
        return q, p

    def trajectory(self, q: torch.Tensor, p: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n applications of the whole flow, stacked: ``[n + 1, ..., dim]`` (rollouts)."""
        qs, ps = [q], [p]
        for _ in range(n):
            q, p = self.forward(q, p)
            qs.append(q)
            ps.append(p)
        return torch.stack(qs), torch.stack(ps)


# --------------------------------------------------------------------------------------------
# source 000 §4.2–4.3: bidirectional consistency and time-reversal augmentation
# --------------------------------------------------------------------------------------------
def bidirectional_consistency(forward_states: torch.Tensor, rebuilt_states: torch.Tensor,
                              ball_c: float | None = None) -> torch.Tensor:
    """Mean distance between forward states and the states rebuilt by running backward.

    Euclidean ‖h_fwd − h_bwd‖ by default; with ``ball_c`` the states live on the Poincaré ball of
    curvature −c and the distance is the hyperbolic one,
    d(u, v) = (2/√c) artanh(√c ‖(−u) ⊕_c v‖) (source 000 §4.2)."""
    if ball_c is None:
        return (forward_states - rebuilt_states).norm(dim=-1).mean()
    import geoopt

    ball = geoopt.PoincareBall(c=ball_c)
    return ball.dist(forward_states, rebuilt_states).mean()


def time_reverse(q: torch.Tensor, p: torch.Tensor, time_dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-reversal augmentation (source 000 §4.3): a trajectory (q(t), p(t)) of a time-reversible
    Hamiltonian system (H(q, −p) = H(q, p)) maps to the valid trajectory (q(T − t), −p(T − t))."""
    return q.flip(time_dim), -p.flip(time_dim)


def reverse_sequence(x: torch.Tensor, time_dim: int = 1) -> torch.Tensor:
    """Time-reversed copy of a generic sequence (token or feature sequences: no momentum to negate)."""
    return x.flip(time_dim)


def augment_time_reversal(q: torch.Tensor, p: torch.Tensor, time_dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch doubled with its time reverses."""
    qr, pr = time_reverse(q, p, time_dim)
    return torch.cat([q, qr], dim=0), torch.cat([p, pr], dim=0)
