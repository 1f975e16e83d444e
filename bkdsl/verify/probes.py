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
causal         max | y_i(x') − y_i(x) | / max|y|, i < j          1e-9
equivariant    max | f(Px) − P f(x) | / max|f|                   1e-9
bounded        max ( |y| − c )₊ / c                              1e-6
lipschitz      max ( ‖f(x)−f(y)‖/‖x−y‖ − L )₊ / L                1e-6
=============  ==============================================  =========

Fail closed: a probe whose outputs contain NaN or Inf reports ``value = nan`` (never ``ok``; Python's
``max(dev, nan)`` would silently drop it, so deviations are reduced with :func:`_worst`); an empty
phase space or point set raises :class:`ProbeError`; so does a probe that would allocate more than
``PROBE_BUDGET`` elements (checked *before* allocation; the budget lives in the torch-free
bkdsl/verify/budget.py so that ``check`` can apply it without running the probe). bkdsl/verify/claims.py turns a ProbeError
or any exception inside a probe into a refusal with its reason.

``bounded`` and ``lipschitz`` allow 1e-6 relative: the ops they speak about (the resolvent) run in
float32 inside, whatever the probe's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from bkdsl.verify.budget import PROBE_BUDGET, ProbeError, guard_size  # noqa: F401 (re-exported: components use them)

TOL = {"unitary": 1e-10, "isometric": 1e-10, "contractive": 1e-10, "symplectic": 1e-9,
       "reversible": 1e-9, "commutative": 1e-10, "causal": 1e-9, "equivariant": 1e-9,
       "bounded": 1e-6, "lipschitz": 1e-6}

def _guard_dim(dim: int, n: int) -> None:
    if not isinstance(dim, int) or dim < 1:
        raise ProbeError(f"empty space: the probe needs dimension ≥ 1, got {dim}")
    if n < 1:
        raise ProbeError(f"the probe needs at least one point, got {n}")
    guard_size(dim * n, f"a probe of {n} points in ℝ^{dim}")


def _worst(*values: float) -> float:
    """The largest deviation, NaN if any is NaN (NaN poisons, unlike Python's max)."""
    out = 0.0
    for v in values:
        v = float(v)
        if math.isnan(v):
            return math.nan
        out = max(out, v)
    return out


def _dev(t: torch.Tensor) -> float:
    """max of a deviation tensor; NaN when any entry is non-finite (or the tensor is empty)."""
    if t.numel() == 0:
        return math.nan
    if not bool(torch.isfinite(t).all()):
        return math.nan
    return float(t.max())

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
        return bool(math.isfinite(self.value) and self.value <= self.tol)  # NaN and Inf fail

    @property
    def detail(self) -> str:
        if not math.isfinite(self.value):
            return (f"{self.what} = {self.value} at the probe: the map produced a non-finite value "
                    f"(tolerance {self.tol:.0e})")
        return f"{self.what} = {self.value:.1e} at the probe (tolerance {self.tol:.0e})"

    def to_json(self) -> dict:
        return {"prop": self.prop, "value": self.value, "tol": self.tol, "what": self.what,
                "points": self.points, "ok": self.ok}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _norm_ratios(fn: Fn, dim: int, n: int, seed: int, scale: float) -> torch.Tensor:
    _guard_dim(dim, n)
    x = scale * torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64)
    with torch.no_grad():
        y = fn(x)
    return y.reshape(n, -1).norm(dim=-1) / x.norm(dim=-1)


def probe_unitary(fn: Fn, dim: int, n: int = 32, seed: int = 0, scale: float = 1.0,
                  inverse: Fn | None = None, tol: float | None = None) -> ProbeResult:
    """‖Ux‖ = ‖x‖ on random x (and inv(Ux) = x when ``inverse`` is given)."""
    dev = _dev((_norm_ratios(fn, dim, n, seed, scale) - 1).abs())
    what = "max|‖Ux‖/‖x‖ − 1|"
    if inverse is not None:
        rt = probe_reversible(fn, inverse, dim, n=n, seed=seed + 1, scale=scale)
        dev = _worst(dev, rt.value)
        what = "max(|‖Ux‖/‖x‖ − 1|, |U⁻¹Ux − x|)"
    return ProbeResult("unitary", dev, TOL["unitary"] if tol is None else tol, what, n)


def probe_isometric(fn: Fn, dim: int, n: int = 32, seed: int = 0, scale: float = 1.0,
                    tol: float | None = None) -> ProbeResult:
    dev = _dev((_norm_ratios(fn, dim, n, seed, scale) - 1).abs())
    return ProbeResult("isometric", dev, TOL["isometric"] if tol is None else tol, "max|‖Ux‖/‖x‖ − 1|", n)


def probe_contractive(fn: Fn, dim: int, n: int = 32, seed: int = 0, scale: float = 1.0,
                      tol: float | None = None) -> ProbeResult:
    """Non-expansiveness of a *linear* map at random points: max (‖Ux‖/‖x‖ − 1)₊. For a nonlinear map
    pass ``fn = lambda d: f(x0 + d) − f(x0)`` (difference quotients)."""
    r = _norm_ratios(fn, dim, n, seed, scale)
    dev = _dev(torch.clamp(r - 1, min=0) if bool(torch.isfinite(r).all()) else r)
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
    _guard_dim(dim, n)
    if dim % 2:
        raise ProbeError(f"phase space has even dimension 2n (q then p), got {dim}")
    guard_size(n * dim * dim, f"{n} Jacobians of size {dim}²")
    Om = omega(dim // 2)
    xs = scale * torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64)
    dev = 0.0
    for x in xs:
        J = jacobian(step, x).detach()
        dev = _worst(dev, _dev((J.T @ Om @ J - Om).abs()))
    return ProbeResult("symplectic", dev, TOL["symplectic"] if tol is None else tol, "max|JᵀΩJ − Ω|", n)


def probe_reversible(fwd: Fn, inv: Fn, dim: int, n: int = 16, seed: int = 0, scale: float = 1.0,
                     tol: float | None = None) -> ProbeResult:
    """Round trip: inv(fwd(x)) = x, relative to 1 + |x|."""
    _guard_dim(dim, n)
    x = scale * torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64)
    with torch.no_grad():
        back = inv(fwd(x))
    dev = _dev((back - x).abs() / (1 + x.abs()))
    return ProbeResult("reversible", dev, TOL["reversible"] if tol is None else tol,
                       "max|f⁻¹(f(x)) − x|/(1 + |x|)", n)


def probe_commutative(bind: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], dim: int, n: int = 16,
                      seed: int = 0, tol: float | None = None) -> ProbeResult:
    _guard_dim(dim, n)
    g = _gen(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = torch.randn(n, dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        a, b = bind(x, y), bind(y, x)
    dev = _worst(_dev((a - b).abs()) / max(_dev(a.abs()), 1e-300))
    return ProbeResult("commutative", dev, TOL["commutative"] if tol is None else tol,
                       "max|b(x, y) − b(y, x)|/max|b(x, y)|", n)


# ------------------------------------------------------------------ probes of whole models
# ``fn`` maps a dict of inputs to a dict of outputs (a lowered model in float64); ``in_axes`` /
# ``out_axes`` name the index of the claimed sequence axis in each input / output (None: absent).
ModelFn = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


def _scale(ys: dict[str, torch.Tensor]) -> float:
    vals = [_dev(y.abs()) for y in ys.values() if y.numel()]
    return max(_worst(*vals), 1e-300) if vals else math.nan


def _splice(a: torch.Tensor, b: torch.Tensor, axis: int, j: int) -> torch.Tensor:
    """``a`` with position ``j`` along ``axis`` taken from ``b``."""
    out = a.clone()
    idx = [slice(None)] * a.dim()
    idx[axis] = j
    out[tuple(idx)] = b[tuple(idx)]
    return out


def probe_causal(fn: ModelFn, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                 in_axes: dict[str, int | None], out_axes: dict[str, int | None],
                 positions: list[int], tol: float | None = None) -> ProbeResult:
    """Perturb position j of every input along its axis (take it from an independent draw ``b``) and
    measure how far outputs at positions i < j move, relative to max|y|. ``what`` names the worst
    (output, i, j): the position that leaks."""
    with torch.no_grad():
        y0 = fn(a)
    scale = _scale(y0)
    worst, where = 0.0, ""
    for j in positions:
        x = {k: (_splice(v, b[k], in_axes[k], j) if in_axes.get(k) is not None else v) for k, v in a.items()}
        with torch.no_grad():
            y1 = fn(x)
        for name, ax in out_axes.items():
            if ax is None or j == 0:
                continue
            idx = [slice(None)] * y0[name].dim()
            idx[ax] = slice(0, j)
            d = (y1[name][tuple(idx)] - y0[name][tuple(idx)]).abs()
            dev = _dev(d) / scale if d.numel() else 0.0
            if math.isnan(dev):
                return ProbeResult("causal", math.nan, TOL["causal"] if tol is None else tol,
                                   f"max|Δy_i|/max|y| (i < j = {j}, output `{name}`)", len(positions))
            if dev > worst:
                flat = d.movedim(ax, 0).reshape(d.shape[ax], -1).amax(-1)
                worst, where = dev, f"output `{name}` at position {int(flat.argmax())} moved when input position {j} changed"
    what = "max|Δy_i|/max|y| over i < j" + (f" ({where})" if worst > (TOL["causal"] if tol is None else tol) else "")
    return ProbeResult("causal", _worst(worst) if math.isfinite(scale) else math.nan,
                       TOL["causal"] if tol is None else tol, what, len(positions))


def _flip(t: torch.Tensor, axis: int | None) -> torch.Tensor:
    return t if axis is None else t.flip(axis)


def probe_flip_equivariant(fn: ModelFn, a: dict[str, torch.Tensor], in_axes: dict[str, int | None],
                           out_axes: dict[str, int | None], tol: float | None = None) -> ProbeResult:
    """f(Px) = P f(x) for outputs carrying the axis, f(Px) = f(x) (invariance) for the others;
    P reverses the axis. Relative to max|f(x)|."""
    with torch.no_grad():
        y0 = fn(a)
        y1 = fn({k: _flip(v, in_axes.get(k)) for k, v in a.items()})
    scale = _scale(y0)
    devs = [_dev((y1[k] - _flip(y0[k], out_axes.get(k))).abs()) / scale for k in y0 if y0[k].numel()]
    return ProbeResult("equivariant", _worst(*devs) if devs else math.nan,
                       TOL["equivariant"] if tol is None else tol, "max|f(Px) − P f(x)|/max|f(x)|", 1)


def probe_bounded(fn: ModelFn, draws: list[dict[str, torch.Tensor]], c: float,
                  tol: float | None = None) -> ProbeResult:
    """max over draws and entries of (|y| − c)₊ / c (draws should include large inputs)."""
    if not (c > 0 and math.isfinite(c)):
        raise ProbeError(f"a bound must be a finite positive number, got {c}")
    devs = []
    for x in draws:
        with torch.no_grad():
            ys = fn(x)
        for y in ys.values():
            devs.append(_dev(torch.clamp(y.abs() - c, min=0) / c) if y.numel() else math.nan)
    return ProbeResult("bounded", _worst(*devs) if devs else math.nan, TOL["bounded"] if tol is None else tol,
                       f"max(|y| − {c:g})₊/{c:g}", len(draws))


def probe_lipschitz(fn: ModelFn, pairs: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]],
                    L: float, tol: float | None = None) -> ProbeResult:
    """max over pairs and batch rows of (‖f(x) − f(y)‖₂ / ‖x − y‖₂ − L)₊ / L (all inputs and outputs
    of one row concatenated)."""
    if not (L > 0 and math.isfinite(L)):
        raise ProbeError(f"a Lipschitz constant must be a finite positive number, got {L}")
    devs = []
    for x, y in pairs:
        with torch.no_grad():
            fx, fy = fn(x), fn(y)
        num = torch.cat([(fx[k] - fy[k]).reshape(fx[k].shape[0], -1) for k in fx], 1).norm(dim=1)
        den = torch.cat([(x[k] - y[k]).reshape(x[k].shape[0], -1) for k in x], 1).norm(dim=1)
        devs.append(_dev(torch.clamp(num / den - L, min=0) / L))
    return ProbeResult("lipschitz", _worst(*devs) if devs else math.nan, TOL["lipschitz"] if tol is None else tol,
                       f"max(‖f(x) − f(y)‖/‖x − y‖ − {L:g})₊/{L:g}", len(pairs))
