"""Opt-in runtime manifold assertions for training (``bkdsl train --assert-manifolds``).

The compiler's type rules prove that values are *meant* to live on their manifolds; float round-off
and optimizer steps can still push them off (a Poincaré point drifting to ‖x‖ ≥ 1/√c, a Stiefel
matrix losing orthogonality). :func:`assert_manifolds` installs forward hooks that measure, after
every forward call of every submodule,

* each ``geoopt.ManifoldParameter`` the submodule owns directly, and
* each output that is a ``geoopt.ManifoldTensor``, or any output of a submodule that declares
  ``bk_out_manifold`` (a geoopt manifold; the lowering sets it on manifold-typed ops),

and raise :class:`~bkdsl.diagnostics.BkError` E0402 naming the parameter or module and the distance
off the manifold. The distance is max |x − proj(x)| with the manifold's own projection ``projx``
(0 for a point on it), so it works for every geoopt manifold without a per-manifold formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bkdsl.diagnostics import BkError

DEFAULT_TOL = 1e-5  # float32 round-off of projx on unit-scale points is ~1e-7; leave two decades


def distance_off(manifold, x: torch.Tensor) -> float:
    """How far ``x`` is from ``manifold`` (0 when on it).

    The Poincaré ball is the *open* ball ‖x‖ < 1/√c: the distance is max(0, √c‖x‖ − 1 + δ) with
    δ = 1e-7, so a point at the float32 boundary (‖x‖ rounds to 1/√c) counts as off. geoopt's ``projx``
    clips to (1 − 4e-3)/√c in float32 — a numerical guard for its own maps, not the manifold's
    boundary — so it would flag legitimate points at 1 − 1e-3. Other manifolds: max |x − projx(x)|."""
    import geoopt

    if not x.numel():
        return 0.0
    with torch.no_grad():
        if isinstance(manifold, geoopt.PoincareBall):
            c = float(manifold.c)
            r = x.double().norm(dim=-1) * c ** 0.5
            return float(torch.clamp(r - 1.0 + 1e-7, min=0.0).max())
        return float((x - manifold.projx(x)).abs().max())


@dataclass
class ManifoldGuard:
    """The installed hooks; ``remove()`` uninstalls them. ``checks`` counts the tensors measured."""

    handles: list = field(default_factory=list)
    checks: int = 0

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def __enter__(self) -> "ManifoldGuard":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _check(what: str, manifold, x: torch.Tensor, tol: float) -> None:
    d = distance_off(manifold, x)
    if not d <= tol:  # NaN counts as off the manifold
        raise BkError("E0402", f"{what} is off its manifold `{manifold.name}`: distance {d:.2e} "
                               f"(tolerance {tol:.0e})",
                      help="use a Riemannian optimizer (riemannian_adam) for manifold parameters, compute "
                           "near the boundary in the Lorentz model, or lower the learning rate")


def assert_manifolds(module: nn.Module, tol: float = DEFAULT_TOL) -> ManifoldGuard:
    """Install the checks on ``module`` and all its submodules; returns a removable guard."""
    import geoopt

    guard = ManifoldGuard()
    for mod_name, mod in module.named_modules():
        own = [(n, p) for n, p in mod.named_parameters(recurse=False) if isinstance(p, geoopt.ManifoldParameter)]
        out_manifold = getattr(mod, "bk_out_manifold", None)
        # every module is hooked, even without manifold parameters: any output may be a ManifoldTensor
        def hook(m, args, output, _name=mod_name or type(mod).__name__, _own=own, _out=out_manifold):
            for pn, p in _own:
                guard.checks += 1
                _check(f"parameter `{_name}.{pn}`" if _name else f"parameter `{pn}`", p.manifold, p, tol)
            outs = output if isinstance(output, (tuple, list)) else (output,)
            for i, o in enumerate(outs):
                if not isinstance(o, torch.Tensor):
                    continue
                man = o.manifold if isinstance(o, geoopt.ManifoldTensor) else _out
                if man is not None:
                    guard.checks += 1
                    label = f"output {i} of `{_name}`" if len(outs) > 1 else f"output of `{_name}`"
                    _check(label, man, o, tol)

        guard.handles.append(mod.register_forward_hook(hook))
    return guard
