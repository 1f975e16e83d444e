"""Superposition optimizers (source 000 §6) as registry components: ``pi2``, ``natural_gradient``,
``ensemble_distill``. The algorithms and why each choice was made: :mod:`bkdsl.train.superposition`.

    optimizer = pi2(lr = 1e-3, particles = 8, sigma = 1e-2, temperature = 10, base = "adam")
    optimizer = natural_gradient(lr = 0.1, damping = 1e-3, fisher = "empirical")
    optimizer = ensemble_distill(lr = 1e-3, particles = 8, sigma = 1e-2, beta = 1.0)

All three are Euclidean (E0608 refuses them on manifold parameters, like sgd/adam) and need the
runner's functional step (``step_with``): they are not usable as a bare ``torch.optim`` ``step()``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.components.optimizers import OptimizerComponent
from bkdsl.diagnostics import BkError
from bkdsl.registry import component
from bkdsl.train import superposition as S


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _CloudParams(_P):
    particles: int = Field(8, ge=1, le=1024, description="K: perturbed copies W + ε_k evaluated per step")
    sigma: float = Field(1e-2, ge=0, allow_inf_nan=False, description="standard deviation of each ε_k entry")
    temperature: float = Field(10.0, ge=0, allow_inf_nan=False,
                               description="λ in P_k = softmax(−λ S_k), S_k the loss normalised to [0, 1]")
    seed: int = Field(0, ge=0, description="seed of the perturbations")


class PI2Params(_CloudParams):
    lr: float = Field(ge=0, allow_inf_nan=False, description="learning rate of the base step (0: pure PI²)")
    base: Literal["sgd", "adam"] = Field("adam", description="the gradient step taken before the particle average")


class NaturalGradientParams(_P):
    lr: float = Field(gt=0, allow_inf_nan=False, description="learning rate η")
    damping: float = Field(1e-3, ge=0, allow_inf_nan=False, description="δ in (F + δI)⁻¹ (> 0 for the empirical Fisher)")
    fisher: Literal["empirical", "identity"] = Field("empirical", description="the metric: empirical Fisher, or I (= SGD)")
    momentum: float = Field(0.0, ge=0, lt=1)
    max_samples: int = Field(64, ge=1, description="per-sample gradients taken from at most this many samples of the batch")


class DistillParams(_CloudParams):
    lr: float = Field(gt=0, allow_inf_nan=False, description="the student's Adam learning rate")
    beta: float = Field(1.0, ge=0, allow_inf_nan=False, description="weight of the distillation term")
    outputs: Literal["gaussian", "categorical"] = Field("gaussian",
                                                        description="how outputs are read: means (regression) or logits")


@component("pi2", kind="optimizer")
class PI2(OptimizerComponent):
    """PI² weight averaging W ← Σ P_k (W' + ε_k) after a base SGD/Adam step W'."""

    Params = PI2Params

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        p = self.params.model_dump()
        cls = S.PI2Adam if p.pop("base") == "adam" else S.PI2SGD
        return cls(params, **p)


@component("natural_gradient", kind="optimizer")
class NaturalGradientC(OptimizerComponent):
    """W ← W − η (F + δI)⁻¹ g with the empirical Fisher F (Woodbury solve), or F = I."""

    Params = NaturalGradientParams

    def validate(self) -> None:
        if self.params.fisher == "empirical" and self.params.damping <= 0:
            raise BkError("E0201", "`natural_gradient` with the empirical Fisher needs damping > 0", span=self.span,
                          help="the empirical Fisher has rank ≤ batch size: (F + δI) is invertible only for δ > 0")

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        self.validate()
        return S.NaturalGradient(params, **self.params.model_dump())


@component("ensemble_distill", kind="optimizer")
class EnsembleDistillC(OptimizerComponent):
    """Adam on L_task + β·KL(student ‖ Σ P_k teacher_k), teachers the PI² particles."""

    Params = DistillParams

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return S.EnsembleDistill(params, **self.params.model_dump())
