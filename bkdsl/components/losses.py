"""Loss terms and metrics, and the integration measures they use.

A term compares a model output with a data field: ``mse(E)`` is mean((E_pred − E_true)²). Each term
states its unit from the field's unit (:meth:`LossTerm.loss_unit`), which is how the compiler proves
that ``mse(E) + alpha * l2_integral(rho, measure = cylinder(dr, dz))`` is consistent (α in fm⁻³ when
the fields are normalised). The same terms serve as metrics (``mae(E) in MeV``) on de-normalised data.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.lazy import lazy_module
from bkdsl.registry import Component, component
from bkdsl.semantics.units import DIMENSIONLESS, quantity, ureg

# the terms' tensor code runs when a loss is evaluated; `check` reads schemas and units (bkdsl/lazy.py)
torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


class LossTerm(Component):
    kind = "loss"

    def evaluate(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def loss_unit(self, u: Any) -> Any:
        return u


class _NoP(BaseModel):
    model_config = ConfigDict(extra="forbid")


@component("mse", kind="loss")
class MSE(LossTerm):
    """mean((ŷ − y)²); unit u²."""

    Params = _NoP

    def evaluate(self, pred, target):
        return F.mse_loss(pred.reshape(target.shape).float(), target.float())

    def loss_unit(self, u):
        return u ** 2


@component("mae", kind="loss")
class MAE(LossTerm):
    """mean|ŷ − y|; unit u (the thesis' MAE_E)."""

    Params = _NoP

    def evaluate(self, pred, target):
        return (pred.reshape(target.shape).float() - target.float()).abs().mean()


class _IntP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    measure: Any = Field(None, description="an integration measure, e.g. cylinder(dr, dz); default: a plain sum")


class _Integral(LossTerm):
    Params = _IntP
    power = 2

    def _weights(self, like: torch.Tensor) -> torch.Tensor | float:
        m = self.params.measure
        return 1.0 if m is None else m.weights(like.shape[-2:], like.device, like.dtype)

    def evaluate(self, pred, target):
        d = (pred.reshape(target.shape).float() - target.float()).abs() ** self.power
        w = self._weights(d)
        per_sample = (d * w).flatten(1).sum(1)
        return per_sample.mean()

    def loss_unit(self, u):
        mu = DIMENSIONLESS if self.params.measure is None else self.params.measure.unit()
        return (u ** self.power) * mu


@component("l2_integral", kind="loss", positional=("measure",))
class L2Integral(_Integral):
    """mean over samples of ∫ dμ (ŷ − y)² (the thesis' L_ρ); unit u²·[μ]."""

    power = 2


@component("l1_integral", kind="loss", positional=("measure",))
class L1Integral(_Integral):
    """mean over samples of ∫ dμ |ŷ − y| (the thesis' MAE_ρ, eq. 4.14); unit u·[μ]."""

    power = 1


@component("cross_entropy", kind="loss")
class CrossEntropy(LossTerm):
    """Mean token cross-entropy in nats: logits [..., V] against integer targets [...]."""

    Params = _NoP

    def evaluate(self, pred, target):
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]).float(), target.reshape(-1).long())

    def loss_unit(self, u):
        return DIMENSIONLESS


@component("bits_per_byte", kind="loss")
class BitsPerByte(CrossEntropy):
    """Cross-entropy in bits per token (byte-level models: bits per byte) = CE / ln 2."""

    def evaluate(self, pred, target):
        return super().evaluate(pred, target) / math.log(2.0)


@component("perplexity", kind="loss")
class Perplexity(CrossEntropy):
    """exp(cross-entropy)."""

    def evaluate(self, pred, target):
        return torch.exp(super().evaluate(pred, target))


# ------------------------------------------------------------------------------------ measures
class _CylP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dr: quantity("fm") = Field(description="radial step (fm)")
    dz: quantity("fm") = Field(description="axial step (fm)")


@component("cylinder", kind="measure", positional=("dr", "dz"))
class Cylinder(Component):
    """The axial measure d³r = 2π r dr dz on the half-step sub-lattice r_i = (i + ½) dr, for fields laid
    out [..., n_r, n_z]; weights in fm³."""

    Params = _CylP

    def weights(self, shape, device=None, dtype=None) -> torch.Tensor:
        """``dtype``: of the weights (default float32)."""
        nr, nz = shape[-2], shape[-1]
        r = (torch.arange(nr, device=device, dtype=torch.float64) + 0.5) * self.params.dr
        w = (2 * math.pi * r * self.params.dr * self.params.dz)[:, None].expand(nr, nz)
        return w.to(dtype or torch.float32)

    def unit(self):
        return ureg.fm ** 3
