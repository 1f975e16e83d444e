"""Optimizer components: sgd, adam, adamw, lbfgs (torch) and riemannian_sgd, riemannian_adam (geoopt).

Each implements the registry's :class:`~bkdsl.registry.Optimizer` protocol,
``build(params) -> torch.optim.Optimizer``, from its validated ``Params`` (the defaults live here and
nowhere else). A user's optimizer is one more such class::

    @bkdsl.component("lion", kind="optimizer")
    class Lion(bkdsl.Component):
        Params = LionParams
        def build(self, params): return LionOptimizer(params, **self.params.model_dump())

``euclidean = True`` marks an optimizer whose step moves manifold parameters off their manifold; the
runner refuses it for models with such parameters (E0608, :func:`bkdsl.train.optim.build_optimizer`).
Riemannian optimizers re-project every ``STABILIZE`` steps (why 10: :mod:`bkdsl.train.optim`).
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import Callable, ClassVar, Literal

import geoopt
import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, component

log = logging.getLogger(__name__)

STABILIZE = 10  # steps between re-projections onto the manifold (measured: bkdsl/train/optim.py docstring)


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SGDParams(_P):
    lr: float = Field(gt=0, description="learning rate")
    momentum: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    nesterov: bool = False


class AdamParams(_P):
    lr: float = Field(gt=0, description="learning rate")
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class AdamWParams(AdamParams):
    weight_decay: float = Field(1e-2, ge=0)


class OptimizerComponent(Component):
    """Base of the built-in optimizers: ``torch_class(params, **Params)``."""

    euclidean: ClassVar[bool] = True
    riemannian_counterpart: ClassVar[str | None] = None
    torch_class: ClassVar[type] = torch.optim.Optimizer

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return self.torch_class(params, **self.params.model_dump())


@component("sgd", kind="optimizer")
class SGD(OptimizerComponent):
    """Stochastic gradient descent (torch.optim.SGD), with optional momentum."""

    Params = SGDParams
    torch_class = torch.optim.SGD
    riemannian_counterpart = "riemannian_sgd"


@component("adam", kind="optimizer")
class Adam(OptimizerComponent):
    """Adam (torch.optim.Adam): bias-corrected first and second moment estimates."""

    Params = AdamParams
    torch_class = torch.optim.Adam
    riemannian_counterpart = "riemannian_adam"


@component("adamw", kind="optimizer")
class AdamW(OptimizerComponent):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay."""

    Params = AdamWParams
    torch_class = torch.optim.AdamW
    riemannian_counterpart = "riemannian_adam"


@component("riemannian_sgd", kind="optimizer")
class RiemannianSGD(OptimizerComponent):
    """geoopt's RiemannianSGD: Euclidean parameters get exactly SGD's update."""

    Params = SGDParams
    euclidean = False

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return geoopt.optim.RiemannianSGD(params, **self.params.model_dump(), stabilize=STABILIZE)


@component("riemannian_adam", kind="optimizer")
class RiemannianAdam(OptimizerComponent):
    """geoopt's RiemannianAdam: Euclidean parameters get exactly Adam's update."""

    Params = AdamParams
    euclidean = False

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return geoopt.optim.RiemannianAdam(params, **self.params.model_dump(), stabilize=STABILIZE)


# -- L-BFGS ------------------------------------------------------------------------------------------
class LBFGSParams(_P):
    lr: float = Field(1.0, gt=0, description="step length scale (1 with a line search)")
    max_iter: int = Field(20, gt=0, description="L-BFGS iterations per runner step (per batch)")
    history_size: int = Field(100, gt=0, description="curvature pairs kept")
    line_search: Literal["strong_wolfe", "none"] = Field("strong_wolfe", description="line search")
    tolerance_grad: float = Field(1e-7, ge=0)
    tolerance_change: float = Field(1e-9, ge=0)


class ClosureLBFGS(torch.optim.LBFGS):
    """``torch.optim.LBFGS`` driven by the runner's ordinary step.

    L-BFGS evaluates the loss at several points per step (its line search), so ``step`` needs a closure
    that recomputes loss and gradient. The runner has already done the first evaluation (forward,
    loss, backward) when it steps; it hands over that loss and a ``recompute`` function with
    :meth:`prepare`, and the closure given to torch returns the runner's loss on its first call (the
    gradients are in place) and recomputes afterwards (``wants_closure`` tells the runner to do so).

    A step that ends on non-finite parameters or loss (one more evaluation at the end checks the loss
    there; torch keeps only the one before its last update) — a line search that wandered into a region
    where the model overflows (the AdS network integrating into a singular metric) — is undone: the
    parameters are restored, the curvature history is dropped and later steps use half the step
    length (``backoff``), as the library fit :func:`bkdsl.nn.ads_fit.fit_metric` does.

    The curvature history (lists of tensors) goes to checkpoints as numbered tensors
    (``old_dirs.0`` …), never pickled."""

    wants_closure = True
    _LISTS = ("old_dirs", "old_stps", "ro")

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.backoff = 1.0
        self._pending: tuple | None = None

    def prepare(self, loss: torch.Tensor, recompute: Callable[[], torch.Tensor], autocast=nullcontext) -> None:
        self._pending = (loss, recompute, autocast)

    def step(self, closure=None):
        if closure is None:
            if self._pending is None:
                raise RuntimeError("ClosureLBFGS.step needs prepare(loss, recompute) or a closure")
            loss, recompute, autocast = self._pending
            self._pending = None
            first = [loss]

            def closure():
                if first:
                    return first.pop()
                self.zero_grad(set_to_none=True)
                with autocast():
                    value = recompute()
                value.backward()
                return value

        params = [p for g in self.param_groups for p in g["params"]]
        saved = [p.detach().clone() for p in params]
        lrs = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = g["lr"] * self.backoff
        try:
            out = super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, lrs):
                g["lr"] = lr
        finite = all(bool(torch.isfinite(p).all()) for p in params)
        if finite:  # the loss where the step ended (torch keeps only the one before the last update)
            with torch.enable_grad():
                finite = math.isfinite(float(closure().detach()))
        if not finite:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
            self.state.clear()
            self.backoff *= 0.5
            log.warning("lbfgs: the step ended on non-finite values; undone, step length now x%g", self.backoff)
        return out

    def state_dict(self):
        sd = super().state_dict()
        for idx, st in list(sd["state"].items()):
            st = dict(st)
            st.pop("al", None)  # scratch space, written before it is read
            for k in self._LISTS:
                if k in st:
                    lst = st.pop(k)
                    st[f"{k}_n"] = len(lst)
                    for i, t in enumerate(lst):
                        st[f"{k}.{i}"] = t
            st["backoff"] = self.backoff
            sd["state"][idx] = st
        return sd

    def load_state_dict(self, state_dict):
        sd = {"state": {}, "param_groups": state_dict["param_groups"]}
        for idx, st in state_dict["state"].items():
            st = dict(st)
            self.backoff = float(st.pop("backoff", 1.0))
            for k in self._LISTS:
                n = int(st.pop(f"{k}_n", 0))
                if n or f"{k}.0" in st:
                    st[k] = [st.pop(f"{k}.{i}") for i in range(n)]
            sd["state"][idx] = st
        super().load_state_dict(sd)


@component("lbfgs", kind="optimizer")
class LBFGS(OptimizerComponent):
    """Full-memory-limited BFGS with a strong-Wolfe line search (torch.optim.LBFGS); one runner step
    runs ``max_iter`` L-BFGS iterations on the batch. Best with full-batch training (``batch`` = the
    training split) on small, smooth, ill-conditioned problems such as the AdS metric fit."""

    Params = LBFGSParams
    torch_class = ClosureLBFGS

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        p = self.params
        return ClosureLBFGS(params, lr=p.lr, max_iter=p.max_iter, history_size=p.history_size,
                            line_search_fn=None if p.line_search == "none" else p.line_search,
                            tolerance_grad=p.tolerance_grad, tolerance_change=p.tolerance_change)
