"""Numerical probes: the checks that can *fail* a claimed property.

An analytic rule says why a property holds; a probe checks the built implementation at random points
and reports the largest deviation it saw. Every probe runs in float64 on a fixed seed (reproducible
diagnostics) and returns a :class:`ProbeResult` whose ``detail`` is the text a diagnostic shows::

    max|JᵀΩJ − Ω| = 2.1e-03 at the probe (tolerance 1e-09)

Tolerances (float64 round-off is ~1e-16 per operation; the defaults leave room for a few hundred
operations and an iterative solve at 1e-14, and are still ~10⁶ under what a non-structured map
shows at the probe step sizes used by the components):

=============  ==============================================  =========
probe          deviation                                        tolerance
=============  ==============================================  =========
unitary        max | ‖Ux‖/‖x‖ − 1 |  (+ round trip if given)    1e-10
isometric      max | ‖Ux‖/‖x‖ − 1 |                            1e-10
contractive    max ( ‖Ux‖/‖x‖ − 1 )₊                           1e-10
symplectic     max | JᵀΩJ − Ω |  (J by autograd, per point)    1e-9
reversible     max | inv(f(x)) − x | / (1 + |x|)                1e-9
commutative    max | b(x, y) − b(y, x) | / max | b(x, y) |      1e-10
=============  ==============================================  =========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

TOL = {"unitary": 1e-10, "isometric": 1e-10, "contractive": 1e-10, "symplectic": 1e-9,
       "reversible": 1e-9, "commutative": 1e-10}

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ProbeResult:
    prop: str
    value: float  # the largest deviation seen
    tol: float
    what: str  # the measured quantity, e.g. "max|JᵀΩJ − Ω|"
    points: int

    @property
    def ok(self) -> bool:
        return bool(self.value <= self.tol)  # NaN fails

    @property
    def detail(self) -> str:
        return f"{self.what} = {self.value:.1e} at the probe (tolerance {self.tol:.0e})"

    def to_json(self) -> dict:
        return {"prop": self.prop, "value": self.value, "tol": self.tol, "what": self.what,
                "points": self.points, "ok": self.ok}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _norm_ratios(fn: Fn, dim: int, n: int, seed: int, scale: float) -> torch.Tensor:
    x = scale * torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64)
    with torch.no_grad():
        y = fn(x)
    return y.reshape(n, -1).norm(dim=-1) / x.norm(dim=-1)


def probe_unitary(fn: Fn, dim: int, n: int = 32, seed: int = 0, scale: float = 1.0,
                  inverse: Fn | None = None, tol: float | None = None) -> ProbeResult:
    """‖Ux‖ = ‖x‖ on random x (and inv(Ux) = x when ``inverse`` is given)."""
    dev = (_norm_ratios(fn, dim, n, seed, scale) - 1).abs().max().item()
    what = "max|‖Ux‖/‖x‖ − 1|"
    if inverse is not None:
        rt = probe_reversible(fn, inverse, dim, n=n, seed=seed + 1, scale=scale)
        dev = max(dev, rt.value)
        what = "max(|‖Ux‖/‖x‖ − 1|, |U⁻¹Ux − x|)"
    return ProbeResult("unitary", dev, TOL["unitary"] if tol is None else tol, what, n)


def probe_isometric(fn: Fn, dim: int, n: int = 32, seed: int = 0, scale: float = 1.0,
                    tol: float | None = None) -> ProbeResult:
    dev = (_norm_ratios(fn, dim, n, seed, scale) - 1).abs().max().item()
    return ProbeResult("isometric", dev, TOL["isometric"] if tol is None else tol, "max|‖Ux‖/‖x‖ − 1|", n)


def probe_contractive(fn: Fn, dim: int, n: int = 32, seed: int = 0, scale: float = 1.0,
                      tol: float | None = None) -> ProbeResult:
    """Non-expansiveness of a *linear* map at random points: max (‖Ux‖/‖x‖ − 1)₊. For a nonlinear map
    pass ``fn = lambda d: f(x0 + d) − f(x0)`` (difference quotients)."""
    r = _norm_ratios(fn, dim, n, seed, scale)
    dev = torch.clamp(r - 1, min=0).max().item()
    return ProbeResult("contractive", dev, TOL["contractive"] if tol is None else tol,
                       "max(‖Ux‖/‖x‖ − 1)₊", n)


def omega(n: int, dtype=torch.float64) -> torch.Tensor:
    """The canonical symplectic form Ω = [[0, I], [−I, 0]] on ℝ²ⁿ (q first, then p)."""
    eye = torch.eye(n, dtype=dtype)
    z = torch.zeros(n, n, dtype=dtype)
    return torch.cat([torch.cat([z, eye], 1), torch.cat([-eye, z], 1)], 0)


def jacobian(step: Fn, x: torch.Tensor) -> torch.Tensor:
    """J = ∂step(x)/∂x at one point x ``[2n]`` (reverse-mode autograd; works through steps that
    differentiate a neural potential inside, which torch.func transforms do not allow)."""
    return torch.autograd.functional.jacobian(lambda v: step(v.unsqueeze(0)).squeeze(0), x)


def probe_symplectic(step: Fn, dim: int, n: int = 8, seed: int = 0, scale: float = 1.0,
                     tol: float | None = None) -> ProbeResult:
    """JᵀΩJ = Ω at ``n`` random phase-space points; ``step`` maps ``[B, 2n]`` → ``[B, 2n]``."""
    if dim % 2:
        raise ValueError("phase space has even dimension 2n (q then p)")
    Om = omega(dim // 2)
    xs = scale * torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64)
    dev = 0.0
    for x in xs:
        J = jacobian(step, x).detach()
        dev = max(dev, (J.T @ Om @ J - Om).abs().max().item())
    return ProbeResult("symplectic", dev, TOL["symplectic"] if tol is None else tol, "max|JᵀΩJ − Ω|", n)


def probe_reversible(fwd: Fn, inv: Fn, dim: int, n: int = 16, seed: int = 0, scale: float = 1.0,
                     tol: float | None = None) -> ProbeResult:
    """Round trip: inv(fwd(x)) = x, relative to 1 + |x|."""
    x = scale * torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64)
    with torch.no_grad():
        back = inv(fwd(x))
    dev = ((back - x).abs() / (1 + x.abs())).max().item()
    return ProbeResult("reversible", dev, TOL["reversible"] if tol is None else tol,
                       "max|f⁻¹(f(x)) − x|/(1 + |x|)", n)


def probe_commutative(bind: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], dim: int, n: int = 16,
                      seed: int = 0, tol: float | None = None) -> ProbeResult:
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = torch.randn(n, dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        a, b = bind(x, y), bind(y, x)
    dev = ((a - b).abs().max() / a.abs().max().clamp_min(1e-300)).item()
    return ProbeResult("commutative", dev, TOL["commutative"] if tol is None else tol,
                       "max|b(x, y) − b(y, x)|/max|b(x, y)|", n)
