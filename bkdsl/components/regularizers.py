"""Loss terms over model tensors: regularisers of parameters and distances between two tensors.

They take explicit tensor operands (bkdsl/semantics/lossexpr.py): ``model.r.h`` (a parameter of the
op defining ``r``), ``model.enc`` (all of a block's parameters), ``model.x_next``,
``model(x = reverse(data.x_next)).x_next``, ``data.x``.

* ``smoothness(θ, weight = w)`` = Σ_n w_n (θ_{n+1} − θ_n)² along θ's last axis (w defaults to 1; a w
  one longer than the differences drops its last entry). With θ the AdS network's metric values
  h(η_n) and w = η_n⁴ it is the regulariser of Hashimoto et al. (2018), c_reg Σ η_n⁴ (h_{n+1} − h_n)².
* ``weight_decay(θ…)`` = ½ Σ θ² over every tensor given, so ``λ · weight_decay(model.enc)`` adds λθ
  to the gradient — exactly torch's ``weight_decay = λ`` on SGD, restricted to one block.
* ``distance(a, b, c = ...)`` = mean over samples of d(a, b): the Euclidean norm of the last axis, or
  with ``c`` the geodesic distance of the Poincaré ball of curvature −c,
  d(u, v) = (2/√c) artanh(√c ‖(−u) ⊕_c v‖) — the bidirectional consistency distance of source 000
  §4.2 for states on a ball (:func:`bkdsl.nn.integrators.bidirectional_consistency`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from bkdsl.components.losses import LossTerm
from bkdsl.diagnostics import BkError
from bkdsl.nn.integrators import bidirectional_consistency
from bkdsl.registry import component
from bkdsl.semantics.units import DIMENSIONLESS


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Regularizer(LossTerm):
    """A loss term of one tensor operand: ``evaluate_one(x, **tensor_kwargs)``."""

    arity: ClassVar[int] = 1
    tensor_kwargs: ClassVar[tuple[str, ...]] = ()

    def evaluate_one(self, x: Any, **kw: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@component("smoothness", kind="loss")
class Smoothness(Regularizer):
    """Σ_n w_n (θ_{n+1} − θ_n)² along the last axis; unit u²·unit(w)."""

    Params = _P
    tensor_kwargs = ("weight",)

    def evaluate_one(self, x, weight=None):
        if isinstance(x, tuple):
            raise BkError("E0204", "`smoothness` reads one tensor (e.g. `model.r.h`), not all parameters of an op",
                          help="name the parameter: `model.OP.PARAM`")
        d2 = (x[..., 1:] - x[..., :-1]) ** 2
        if weight is not None:
            w = torch.as_tensor(weight, dtype=d2.dtype, device=d2.device)
            if w.ndim and w.shape[-1] == d2.shape[-1] + 1:
                w = w[..., :-1]
            d2 = w * d2
        return d2.sum()

    def loss_unit(self, u, weight=DIMENSIONLESS):
        return u ** 2 * weight


@component("weight_decay", kind="loss")
class WeightDecay(Regularizer):
    """½ Σ θ² over the given parameters (its gradient is θ); unit u²."""

    Params = _P

    def evaluate_one(self, x):
        ts = x if isinstance(x, tuple) else (x,)
        return 0.5 * sum((t.float() ** 2).sum() for t in ts)

    def loss_unit(self, u):
        return u ** 2


class _DistP(_P):
    c: float | None = Field(None, gt=0, description="curvature −c of the Poincaré ball the tensors live on; "
                                                     "default: Euclidean")


@component("distance", kind="loss")
class Distance(LossTerm):
    """mean over samples of d(a, b) (Euclidean, or Poincaré-ball with ``c``); unit u."""

    Params = _DistP

    def evaluate(self, pred, target):
        a = pred.reshape(target.shape)
        return bidirectional_consistency(a, target, ball_c=self.params.c)

    def loss_unit(self, u):
        return u


__all__ = ["Regularizer", "Smoothness", "WeightDecay", "Distance"]
