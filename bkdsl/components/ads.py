"""The AdS/CFT deep-learning network (bkdsl/nn/ads.py): its layer (layers are integrator steps of the
bulk equation of motion, weights the metric h(η)), its data source (boundary response generated from
a bulk metric) and its losses (the asinh squared error of the horizon residual, the horizon
classification loss)."""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bkdsl.components.data_sources import DataParams, DataSource
from bkdsl.components.losses import LossTerm
from bkdsl.diagnostics import BkError
from bkdsl.nn.ads import (METRICS, AdSNetwork, Bulk, asinh_mse, horizon_probability, layer_midpoints, metric,
                          true_metric_loss)
from bkdsl.nn.ads_data import AdSDataError, generate_response
from bkdsl.registry import Component, component
from bkdsl.semantics.types import ValueType
from bkdsl.train.data import Dataset, FieldInfo


log = logging.getLogger("bkdsl.components.ads")


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class _BulkP(_P):
    m2: float = Field(-1.0, allow_inf_nan=False, description="scalar mass squared m²")
    lam: float = Field(1.0, allow_inf_nan=False, description="quartic coupling λ (V = λφ⁴/4)")
    eta_ini: float = Field(1.0, gt=0, allow_inf_nan=False, description="radial cut-off near the boundary")
    eta_fin: float = Field(0.1, gt=0, allow_inf_nan=False, description="radial position near the horizon")

    @field_validator("eta_fin")
    @classmethod
    def _inward(cls, v, info):
        ini = info.data.get("eta_ini")
        if ini is not None and not v < ini:
            raise ValueError(f"eta_fin (horizon side) must be smaller than eta_ini = {ini}")
        return v


class _AdSNetP(_BulkP):
    layers: int = Field(20, gt=0, description="layers N = integrator steps from η_ini to η_fin")
    layer: Literal["rk4", "euler"] = "rk4"
    grid: Literal["log", "uniform"] = Field("log", description="layer edges: geometric in η (default) or "
                                                               "equally spaced (the paper's)")
    substeps: int = Field(1, gt=0, description="integrator steps per layer (one weight per layer)")
    init: float = Field(1.0, allow_inf_nan=False, description="the constant every learned h(η_n) starts from")


class _AdSModule(torch.nn.Module):
    """x [B, 2] → [B, 1 + N]: the horizon residual F, then the learned h(η_n) (per sample, so the
    runner's metrics can compare it with the data's h_true)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        F = self.net(x)
        return torch.cat([F.unsqueeze(-1), self.net.h.unsqueeze(0).expand(F.shape[0], -1)], dim=-1)


@component("ads_network", kind="layer", inputs=("x",))
class AdSNetworkC(Component):
    """The AdS/CFT deep-learning network: boundary (φ, π) → [F, h(η_1) … h(η_N)]; layers are RK4 (or
    Euler) steps of the bulk EOM, weights the metric h(η_n) (bkdsl/nn/ads.py)."""

    Params = _AdSNetP

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        t = ins[0]
        if not t.shape or ctx.uni.find(t.shape[-1]) not in (2,) and isinstance(ctx.uni.find(t.shape[-1]), int):
            raise BkError("E0401", f"`ads_network` takes boundary data (φ, π) [B, 2], got {t.show()}", span=ctx.span)
        return ValueType(tuple(t.shape[:-1]) + (1 + self.params.layers,), "float", None, None)

    def build(self):
        p = self.params
        return _AdSModule(AdSNetwork(p.layers, p.layer, Bulk(p.m2, p.lam, p.eta_ini, p.eta_fin), p.init,
                                     grid=p.grid, substeps=p.substeps))


def _metric_spec(v: Any) -> tuple[str, dict]:
    from bkdsl.semantics.values import CallValue, Ref

    if isinstance(v, str):
        return v, {}
    if isinstance(v, Ref):
        return v.path, {}
    if isinstance(v, CallValue):
        return v.name, dict(v.kwargs)
    if isinstance(v, dict):
        d = dict(v)
        return d.pop("name"), d
    raise ValueError("expected a bulk metric such as `ads_schwarzschild(d = 3)`")


class _AdSDataP(_BulkP, DataParams):
    metric: Any = Field("ads_schwarzschild", description="bulk metric: ads_schwarzschild(d = 3), reissner_nordstrom_ads(d, q), "
                                                           "deformed_bh(...), horizon_series(coeffs = [...])")
    samples: int = Field(2000, gt=0)
    label: Literal["response", "horizon"] = "response"
    eps: float = Field(0.1, gt=0, allow_inf_nan=False, description="horizon mode: |F| < eps is regular")
    layers: int = Field(20, gt=0, description="h_true is tabulated at the network's layer midpoints")
    grid: Literal["log", "uniform"] = Field("log", description="the network's layer grid (where h_true is "
                                                               "tabulated and the floor is measured)")
    layer: Literal["rk4", "euler"] = Field("rk4", description="the network's step (for the floor)")
    substeps: int = Field(2000, gt=0, description="RK4 steps of the data generator's solver")
    noise: float = Field(0.0, ge=0, allow_inf_nan=False,
                         description="label = response: y = sinh(asinh F + noise ξ), ξ ~ N(0, 1)")
    phi_h_range: tuple[float, float] = Field((0.0, 2.0), description="label = horizon: where the horizon "
                                                                     "values φ_h of regular samples are drawn")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v):
        name, kw = _metric_spec(v)
        if name not in METRICS:
            raise ValueError(f"unknown bulk metric `{name}`; known: {', '.join(sorted(METRICS))}")
        try:
            METRICS[name](**kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"bad parameters for `{name}`: {e}") from None
        return v

    @field_validator("phi_h_range")
    @classmethod
    def _range(cls, v):
        if not v[0] < v[1]:
            raise ValueError(f"phi_h_range must be (low, high) with low < high, got {v}")
        return v


def _ads_networks(block: Any):
    """Every ``ads_network`` component applied in ``block`` (an elaborated BlockIR), nested blocks included."""
    for n in getattr(block, "nodes", ()):
        if isinstance(n.target, AdSNetworkC):
            yield n.target
        elif getattr(n.target, "nodes", None) is not None:
            yield from _ads_networks(n.target)


@component("ads_response", kind="data")
class AdSResponse(DataSource):
    """Boundary response data generated from a bulk metric: fields ``x`` [2] = (φ, π) at η_ini,
    ``F`` [1] the horizon residual (``label = response``) or ``y`` the paper's regular/irregular
    label (``label = horizon``), and ``h`` [layers] the true metric at the layer midpoints."""

    Params = _AdSDataP
    unnormalized_fields = ("x", "F", "y", "h")

    @classmethod
    def declared_fields(cls, call):
        return {"x": "1", "F": "1", "y": "1", "h": "1"}

    def metric_fn(self):
        name, kw = _metric_spec(self.params.metric)
        return metric(name, **kw)

    def fields(self):
        n = self.params.layers
        return {"x": FieldInfo("x", shape=(2,)), "F": FieldInfo("F", shape=(1,)), "y": FieldInfo("y", shape=(1,)),
                "h": FieldInfo("h", shape=(n,))}

    def generate(self, seed: int = 0) -> dict[str, torch.Tensor]:
        """The samples (float32) and, in ``self.floor``, the data's own discretisation floor: the asinh
        squared error of the network with the true metric (same layers, grid and step) on all samples
        (``label = response``; NaN for the horizon mode)."""
        p = self.params
        bulk = Bulk(p.m2, p.lam, p.eta_ini, p.eta_fin)
        h = self.metric_fn()
        try:
            d = generate_response(h, p.samples, bulk, label=p.label, eps=p.eps, seed=seed, substeps=p.substeps,
                                  noise=p.noise, phi_h_range=p.phi_h_range)
        except AdSDataError as e:
            raise BkError("E0640", f"`ads_response` could not make its data: {e}", span=self.span,
                          help="check the metric and the ranges (eta_ini, eta_fin, phi_h_range, eps)") from None
        h_true = h(layer_midpoints(bulk, p.layers, p.grid))
        if not torch.isfinite(h_true).all():
            raise BkError("E0641", "`ads_response`: the metric is not finite at the network's layer midpoints",
                          span=self.span, help="a black-hole metric is finite for η > 0; check its parameters")
        self.floor = (true_metric_loss(h, d["x"], d["y"], p.layers, p.layer, bulk, p.grid)
                      if p.label == "response" else float("nan"))
        log.info("ads_response: loss of the true metric on these data (the floor): %.3g", self.floor)
        n = len(d["x"])
        F = d["y"] if p.label == "response" else d["F"]  # the observed (noisy) residual, or the true one
        return {"x": d["x"].float(), "F": F.unsqueeze(-1).float(), "y": d["y"].unsqueeze(-1).float(),
                "h": h_true.unsqueeze(0).expand(n, -1).float().contiguous()}

    GRID_KEYS = ("layers", "grid", "eta_ini", "eta_fin", "m2", "lam")

    def check_model(self, model: Any, span: Any = None) -> None:
        """E0642 when a model's ``ads_network`` integrates on another grid or bulk than these data: ``h`` is
        tabulated at the data's layer midpoints, so `rel_l2(h)` would compare values at different η (and a
        different m², λ or cut-off would be absorbed into the learned h) — silently, shapes agreeing."""
        for net in _ads_networks(model):
            diff = [f"{k} = {getattr(net.params, k)!r} in the model, {getattr(self.params, k)!r} in the data"
                    for k in self.GRID_KEYS if getattr(net.params, k) != getattr(self.params, k)]
            if diff:
                raise BkError("E0642", "the model's `ads_network` and the data's `ads_response` disagree: "
                              + "; ".join(diff), span=span,
                              help="give both the same " + ", ".join(self.GRID_KEYS)
                                   + " (the data's h is the true metric at the network's layer midpoints)")

    def load(self, *, seed: int, base_dir: str | None = None):
        fields = self.generate(seed if self.params.seed is None else self.params.seed)
        return Dataset(fields, self.fields(), meta={"source": "ads_response", "true_metric_loss": self.floor})


class _LossP(_P):
    pass



class _AdSLoss(LossTerm):
    kind = "loss"

    def loss_unit(self, u):
        from bkdsl.semantics.units import DIMENSIONLESS

        return DIMENSIONLESS


@component("asinh_mse", kind="loss")
class AsinhMSE(_AdSLoss):
    """mean (asinh ŷ − asinh y)²: a squared error linear near 0 and logarithmic in the tails (the AdS
    horizon residual spans four decades). Dimensionless."""

    Params = _LossP

    def evaluate(self, pred, target):
        return asinh_mse(pred.reshape(target.shape).double(), target.double()).float()


class _HorizonP(_P):
    eps: float = Field(0.1, gt=0)


@component("horizon_l1", kind="loss")
class HorizonL1(_AdSLoss):
    """The horizon-classification loss: mean |tanh((F/ε)²) − y| (y = 0 regular, 1 irregular)."""

    Params = _HorizonP

    def evaluate(self, pred, target):
        return (horizon_probability(pred.reshape(target.shape), self.params.eps) - target).abs().mean()
