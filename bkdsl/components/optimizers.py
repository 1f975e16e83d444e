"""Optimizer components: sgd, adam, adamw (torch) and riemannian_sgd, riemannian_adam (geoopt).

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

from typing import ClassVar

import geoopt
import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.registry import Component, component

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
    Params = SGDParams
    torch_class = torch.optim.SGD
    riemannian_counterpart = "riemannian_sgd"


@component("adam", kind="optimizer")
class Adam(OptimizerComponent):
    Params = AdamParams
    torch_class = torch.optim.Adam
    riemannian_counterpart = "riemannian_adam"


@component("adamw", kind="optimizer")
class AdamW(OptimizerComponent):
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
