"""Optimizers: sgd, adam, adamw (torch) and riemannian_sgd, riemannian_adam (geoopt).

Manifold parameters (``geoopt.ManifoldParameter`` on a non-Euclidean manifold) under a Euclidean
optimizer are **refused** with E0608, not silently wrapped: a Euclidean step moves a point off its
manifold (a Poincaré-ball point past the boundary, a Stiefel frame out of orthogonality), and swapping
the optimizer behind the user's back would make the spec say one thing and run another. The help
names the Riemannian counterpart, which treats Euclidean parameters exactly like its Euclidean
namesake (geoopt's Riemannian optimizers reduce to SGD/Adam on ``Euclidean`` parameters).

Riemannian optimizers are built with ``stabilize = 10``: every 10th step each manifold parameter is
projected back onto its manifold (``manifold.projx``) and its moment buffers onto the tangent space, so
round-off cannot accumulate into drift — the membership guarantee the tests check after many steps.
Why 10 and not 1 or never (measured with geoopt 0.5.1 on a Poincaré-ball + Stiefel model): without
stabilisation RiemannianAdam leaves the Stiefel manifold after ~1500 steps (‖WᵀW − I‖ above tolerance);
projecting after *every* step turns the momentum buffers NaN after ~100 steps (the SVD projection of a
point that is already on the manifold, fed back into the buffer transport); every 10 steps keeps both
on the manifold and finite.

Optimizer state goes to the checkpoint sidecar as tensors (``optim.<param index>.<name>``) plus JSON
for the param groups; nothing is pickled.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from bkdsl import registry
from bkdsl.components.optimizers import STABILIZE  # noqa: F401  (the measured constant explained above)
from bkdsl.diagnostics import BkError, Span

def manifold_params(model: torch.nn.Module) -> list[tuple[str, Any]]:
    """(name, manifold) of every parameter that lives on a non-Euclidean manifold."""
    try:
        import geoopt
    except ImportError:  # pragma: no cover - geoopt is a dependency
        return []
    out = []
    for n, p in model.named_parameters():
        m = getattr(p, "manifold", None)
        if isinstance(p, geoopt.ManifoldParameter) and m is not None and not isinstance(m, geoopt.Euclidean):
            out.append((n, m))
    return out


def build_optimizer(name: str, params: dict[str, Any], model: torch.nn.Module, span: Span | None = None
                    ) -> torch.optim.Optimizer:
    """The registry's optimizer ``name`` (built-in or a user's ``@bkdsl.component(kind="optimizer")``),
    validated with ``params``, over ``model``'s trainable parameters."""
    cls = registry.lookup(name, "optimizer")
    if cls is None:
        known = sorted(c.name for c in registry.all_components().values() if c.kind == "optimizer")
        raise BkError("E0609", f"unknown optimizer `{name}`", span=span, help=f"one of {', '.join(known)}")
    comp = cls.from_args(dict(params), span=span)
    ps = [p for p in model.parameters() if p.requires_grad]
    if not ps:
        raise BkError("E0609", "the model has no trainable parameters", span=span)
    if getattr(cls, "euclidean", True):
        mp = manifold_params(model)
        if mp:
            names = ", ".join(f"`{n}` on {type(m).__name__}" for n, m in mp[:4]) + (" …" if len(mp) > 4 else "")
            alt = getattr(cls, "riemannian_counterpart", None) or "riemannian_adam"
            raise BkError("E0608", f"`{name}` is Euclidean but the model has {len(mp)} manifold "
                                   f"parameter{'s' if len(mp) > 1 else ''}: {names}",
                          span=span, label="Euclidean optimizer",
                          help=f"use `{alt}(...)`: it updates manifold parameters along the "
                               "manifold and Euclidean ones exactly like its Euclidean counterpart")
    return comp.build(ps)


# -- state without pickles ----------------------------------------------------------------------
def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, JSON) for the sidecar. Non-tensor per-parameter values (rare) go to JSON."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    groups = json.loads(json.dumps(sd["param_groups"], default=_jsonable))
    return tensors, {"param_groups": groups, "scalars": scalars}


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, torch.Tensor):
        return v.item()
    raise TypeError(f"optimizer hyper-parameter of type {type(v).__name__} cannot go to JSON")


def load_optimizer_state(opt: torch.optim.Optimizer, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        if not key.startswith("optim."):
            continue
        _, idx, k = key.split(".", 2)
        state.setdefault(int(idx), {})[k] = t
    for idx, d in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})
    # torch's load_state_dict turns a Python-int `step` into a float32 tensor; geoopt keeps it an int
    # and computes its bias corrections in float64 from it, so put the saved Python values back
    # (otherwise a resumed run differs from an uninterrupted one in the last bits)
    params = [p for g in opt.param_groups for p in g["params"]]
    for idx, d in meta.get("scalars", {}).items():
        opt.state[params[int(idx)]].update(d)
