"""Gradient teleportation over a stack of layers (source 000 §3): a Green's function on the layer chain.

A stack of L same-shaped layers h_1 = f_1(h_0), …, h_L = f_L(h_{L−1}) is read as a one-dimensional
lattice whose sites are the layer outputs h_l. Backpropagation moves the error one site at a time,
δ_l^chain = J_{l+1}ᵀ δ_{l+1}; in a deep plain stack (no residuals, no normalisation) the product of
Jacobians shrinks it geometrically — vanishing gradients. Teleportation adds a non-local term

    δ_l = δ_l^chain + λ Σ_{k>l} G(l, k) δ_k^chain                                       (source 000, §3.1)

with G the propagator of the layer chain, from the Dyson equation

    G = G₀ + G₀ Σ G   ⇔   G = (z − H₀ − Σ)⁻¹                                            (§3.2)

made concrete here as:

* **H₀** — the free tight-binding chain over the layer index: (H₀)_{l,l±1} = −1, open ends (the
  "free propagator" of the source's ResNet identity: hopping between neighbouring layers only);
* **z** — a real energy below the band [−2, 2]: z = −2 − m² with the *mass* m > 0. Then
  G₀ = (z − H₀)⁻¹ is negative-definite with |G₀(l, k)| ∝ e^{−|l−k|/ξ}, cosh(1/ξ) = 1 + m²/2: the
  mass sets how far a gradient teleports (ξ ≈ 1/m layers for small m). G is used with the sign of
  the propagator −G ≥ 0 (every teleported term adds in the direction of the upstream error);
* **Σ** — the self-energy, diagonal, Σ_ll = −σ_l with σ_l ≥ 0 measured on the previous backward
  pass as the layer's gradient attenuation σ_l = ln(‖δ_{l+1}‖ / ‖δ_l^chain‖)₊, capped at m²/2 so that
  z − Σ stays below the band (G stays sign-definite and decaying). A layer that damps the gradient
  pulls the local energy toward the band edge and lengthens the propagator's reach there: the
  teleportation is strongest exactly where the chain rule loses the signal. ``adaptive=False`` keeps
  Σ = 0 (G = G₀).

G is solved exactly (an L × L linear solve, microseconds for L ≤ 1000); ``born_series`` gives the
truncated Dyson (Born) series G₀ + G₀ΣG₀ + G₀ΣG₀ΣG₀ + … the tests check it converges to the solve.

λ = 0 leaves every gradient untouched: backpropagation exactly (tested). For λ > 0 the update is not
the gradient of any loss (as with the source's "look-ahead" update, §3.3); it is a preconditioned
direction, to be judged by how fast the loss falls (bench/teleport.py).
"""

from __future__ import annotations

import math

import torch


def chain_hamiltonian(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """H₀ of the open tight-binding chain of ``n`` sites: −1 on the first off-diagonals."""
    h = torch.zeros(n, n, dtype=dtype)
    i = torch.arange(n - 1)
    h[i, i + 1] = -1.0
    h[i + 1, i] = -1.0
    return h


def free_energy(mass: float) -> float:
    """z = −2 − m²: below the band [−2, 2] of H₀, so G₀ decays as e^{−|l−k|/ξ}, cosh(1/ξ) = 1 + m²/2."""
    return -2.0 - mass * mass


def decay_length(mass: float) -> float:
    """ξ in layers: 1 / arccosh(1 + m²/2)."""
    return 1.0 / math.acosh(1.0 + mass * mass / 2.0)


def dyson_green(n: int, mass: float, sigma: torch.Tensor | None = None) -> torch.Tensor:
    """The propagator G = (z − H₀ − Σ)⁻¹ of the layer chain, Σ = diag(−σ) (σ ≥ 0, float64, [n])."""
    z = free_energy(mass)
    a = z * torch.eye(n, dtype=torch.float64) - chain_hamiltonian(n)
    if sigma is not None:
        a = a + torch.diag(sigma.to(torch.float64))   # −Σ = +diag(σ)
    return torch.linalg.inv(a)


def born_series(n: int, mass: float, sigma: torch.Tensor, order: int) -> torch.Tensor:
    """The Dyson equation iterated ``order`` times: G ≈ Σ_{j ≤ order} G₀ (Σ G₀)^j."""
    g0 = dyson_green(n, mass)
    s = torch.diag(-sigma.to(torch.float64))
    g, term = g0.clone(), g0
    for _ in range(order):
        term = term @ s @ g0
        g = g + term
    return g


class GradientTeleport:
    """Backward hooks on the outputs of ``modules`` (a stack, in forward order) that add
    λ Σ_{k>l} (−G(l, k)) δ_k^chain to each layer's output gradient.

    ``attach`` registers a forward hook on every module; each forward registers a tensor hook on the
    module's output, which autograd calls with δ_l^chain after every δ_k (k > l) was computed (reverse
    order of a chain). Modules that are not called in a forward pass, or whose outputs differ in shape,
    are refused (ValueError) at the first backward — a silent partial teleport would misreport."""

    def __init__(self, strength: float, mass: float = 0.5, adaptive: bool = True):
        if not (strength >= 0 and math.isfinite(strength)):
            raise ValueError(f"strength must be finite and ≥ 0, got {strength}")
        if not (mass > 0 and math.isfinite(mass)):
            raise ValueError(f"mass must be finite and > 0, got {mass}")
        self.strength, self.mass, self.adaptive = float(strength), float(mass), adaptive
        self.sigma: torch.Tensor | None = None       # Σ of the next step (from the last backward's gains)
        self._handles: list = []
        self._outs: list[torch.Tensor] = []          # this forward's layer outputs, in order
        self._chain: torch.Tensor | None = None      # δ_k^chain of this backward, [L, *shape]
        self._total: torch.Tensor | None = None      # δ_k after teleportation (for σ)
        self._seen = 0
        self.n = 0

    # -- wiring --------------------------------------------------------------------------------
    def attach(self, modules: list[torch.nn.Module]) -> "GradientTeleport":
        if not modules:
            raise ValueError("gradient teleportation needs at least one layer")
        self.n = len(modules)
        for i, m in enumerate(modules):
            self._handles.append(m.register_forward_hook(self._forward_hook(i)))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def green(self) -> torch.Tensor:
        return dyson_green(self.n, self.mass, self.sigma if self.adaptive else None)

    def _forward_hook(self, i: int):
        def hook(module, args, out):
            if not torch.is_grad_enabled() or not isinstance(out, torch.Tensor) or not out.requires_grad:
                return None
            if i == 0:
                self._outs, self._seen = [], 0
                self._chain = self._total = None
                self._g = None
            self._outs.append(out)
            out.register_hook(self._backward_hook(i, out.shape))
            return None
        return hook

    def _backward_hook(self, l: int, shape: torch.Size):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            if len(self._outs) != self.n:
                raise ValueError(f"gradient teleportation: {len(self._outs)} of the {self.n} layers ran in "
                                 "this forward; every layer of the stack must run once per forward")
            if grad.shape != shape or any(o.shape != shape for o in self._outs):
                raise ValueError("gradient teleportation needs layers whose outputs share one shape")
            if self._chain is None:   # δ^chain and δ of every layer, one buffer each: [L, *shape]
                self._chain = grad.new_zeros((self.n, *shape))
                self._total = grad.new_zeros((self.n, *shape))
            self._chain[l] = grad
            total = grad
            if self.strength != 0.0 and l + 1 < self.n:
                if self._g is None:
                    self._g = (-self.green()).to(device=grad.device, dtype=grad.dtype)  # −G ≥ 0 below the band
                tele = torch.tensordot(self._g[l, l + 1:], self._chain[l + 1:], dims=1)
                total = grad + self.strength * tele
            self._total[l] = total
            self._seen += 1
            if self._seen == self.n:
                self._update_sigma()
            return total
        return hook

    def _update_sigma(self) -> None:
        """σ_l = ln(‖δ_{l+1}‖ / ‖δ_l^chain‖)₊ capped at m²/2, for the next step's Σ (a chain gradient of
        exactly 0 under a non-zero one: the cap; 0/0 or NaN: 0)."""
        if not self.adaptive:
            return
        with torch.no_grad():
            chain = self._chain.flatten(1).norm(dim=1).double()
            total = self._total.flatten(1).norm(dim=1).double()
            cap = self.mass * self.mass / 2.0
            s = torch.zeros(self.n, dtype=torch.float64)
            ratio = torch.log(total[1:] / chain[:-1]).cpu()
            s[:-1] = torch.nan_to_num(ratio, nan=0.0, posinf=cap, neginf=0.0).clamp(0.0, cap)
        self.sigma = s
