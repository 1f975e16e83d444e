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

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.lazy import lazy_function, lazy_module
from bkdsl.registry import Component, component

# torch, geoopt and the L-BFGS driver load when the runner builds an optimizer (bkdsl/lazy.py).
torch = lazy_module("torch")
geoopt = lazy_module("geoopt")
lbfgs = lazy_module("bkdsl.nn.lbfgs")

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
    torch_class: ClassVar[type] = lazy_function("torch.optim", "Optimizer")

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return self.torch_class(params, **self.params.model_dump())


@component("sgd", kind="optimizer")
class SGD(OptimizerComponent):
    """Stochastic gradient descent (torch.optim.SGD), with optional momentum."""

    Params = SGDParams
    torch_class = lazy_function("torch.optim", "SGD")
    riemannian_counterpart = "riemannian_sgd"


@component("adam", kind="optimizer")
class Adam(OptimizerComponent):
    """Adam (torch.optim.Adam): bias-corrected first and second moment estimates."""

    Params = AdamParams
    torch_class = lazy_function("torch.optim", "Adam")
    riemannian_counterpart = "riemannian_adam"


@component("adamw", kind="optimizer")
class AdamW(OptimizerComponent):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay."""

    Params = AdamWParams
    torch_class = lazy_function("torch.optim", "AdamW")
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


@component("lbfgs", kind="optimizer")
class LBFGS(OptimizerComponent):
    """Full-memory-limited BFGS with a strong-Wolfe line search (torch.optim.LBFGS); one runner step
    runs ``max_iter`` L-BFGS iterations on the batch. Best with full-batch training (``batch`` = the
    training split) on small, smooth, ill-conditioned problems such as the AdS metric fit."""

    Params = LBFGSParams
    torch_class = lazy_function("bkdsl.nn.lbfgs", "ClosureLBFGS")

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        p = self.params
        return lbfgs.ClosureLBFGS(params, lr=p.lr, max_iter=p.max_iter, history_size=p.history_size,
                                  line_search_fn=None if p.line_search == "none" else p.line_search,
                                  tolerance_grad=p.tolerance_grad, tolerance_change=p.tolerance_change)
