"""Metrics reported in the units a spec declares: ``mae(E) in MeV``, ``rmse(rho) in fm^-3``, ``bpb(targets)``.

A metric compares a model output with the data field of the same name (``mae(E)`` reads
``outputs["E"]`` and ``batch["E"]``; ``output = name`` picks another output). Predictions are first
mapped back through the inverse normalisation, so a metric sees physical values in the field's unit; the
result is then converted to the declared unit with pint (a field in keV reported ``in MeV`` is scaled by
1e-3; a unit of another dimension is E0604 before training starts).

Each metric accumulates (sum, count) tensors over an evaluation pass — additive, so data-parallel ranks
combine them with one all-reduce — and turns them into a number at the end:

``mae``        mean |p − t|                           unit of the field
``rmse``       sqrt(mean (p − t)²)                    unit of the field
``mse``        mean (p − t)²                          unit of the field, squared
``max_error``  max |p − t|                            unit of the field
``rel_l2``     mean over samples of ‖p − t‖ / ‖t‖     dimensionless
``accuracy``   fraction of argmax(logits) == target   dimensionless
``cross_entropy`` mean −log p(target)                 nats
``bpb``        cross entropy / ln 2                   bits per byte (byte-level targets)
``perplexity`` exp(cross entropy)                     dimensionless
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from bkdsl.diagnostics import BkError, Span

METRICS = ("mae", "rmse", "mse", "max_error", "rel_l2", "accuracy", "cross_entropy", "bpb", "perplexity")
DIMENSIONLESS = ("rel_l2", "accuracy", "cross_entropy", "bpb", "perplexity")


@dataclass
class Metric:
    """One declared metric: kind (``mae``), the field compared, the output read, the reported unit and
    the factor from the field's unit to it (squared for ``mse``)."""

    kind: str
    field: str
    output: str
    unit: str | None = None
    factor: float = 1.0
    span: Span | None = None
    fallback: Callable | None = None  # a loss primitive used as a metric (evaluated on physical values)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or (f"{self.kind}_{self.field}" if self.field else self.kind)

    @property
    def reduce(self) -> str:
        return "max" if self.kind == "max_error" else "sum"

    def accumulate(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum-or-max, count) over one batch of physical values, as float64 tensors."""
        if self.fallback is not None:  # a per-batch mean from the compiler's MetricProgram: weight by batch size
            v = self.fallback(out, batch)
            v = v[0] if isinstance(v, tuple) else v
            n = next(iter(batch.values())).shape[0]
            dev = next(iter(batch.values())).device
            return (torch.as_tensor(float(v), dtype=torch.float64, device=dev) * n,
                    torch.tensor(float(n), dtype=torch.float64, device=dev))
        if self.output not in out:
            raise BkError("E0609", f"metric `{self.name}`: the model has no output `{self.output}`",
                          span=self.span, help=f"outputs: {', '.join(out)}")
        p = out[self.output]
        t = batch[self.field]
        if self.kind in ("accuracy", "cross_entropy", "bpb", "perplexity"):
            logits = p.double().reshape(-1, p.shape[-1])
            tgt = t.reshape(-1).long()
            n = torch.tensor(float(tgt.numel()), dtype=torch.float64, device=p.device)
            if self.kind == "accuracy":
                return (logits.argmax(-1) == tgt).double().sum(), n
            return F.cross_entropy(logits, tgt, reduction="sum"), n
        p = p.double().reshape(t.shape)
        d = p - t.double()
        n = torch.tensor(float(d.numel()), dtype=torch.float64, device=d.device)
        if self.kind == "mae":
            return d.abs().sum(), n
        if self.kind in ("rmse", "mse"):
            return (d * d).sum(), n
        if self.kind == "max_error":
            return d.abs().max(), n
        if self.kind == "rel_l2":
            b = d.shape[0]
            num = d.reshape(b, -1).norm(dim=1)
            den = t.double().reshape(b, -1).norm(dim=1).clamp_min(1e-300)
            return (num / den).sum(), torch.tensor(float(b), dtype=torch.float64, device=d.device)
        raise AssertionError(self.kind)

    def value(self, s: float, n: float) -> float:
        if self.fallback is not None:
            return s / max(n, 1.0) * self.factor
        if self.kind == "max_error":
            return s * self.factor
        m = s / max(n, 1.0)
        if self.kind == "rmse":
            return math.sqrt(m) * self.factor
        if self.kind == "mse":
            return m * self.factor
        if self.kind == "bpb":
            return m / math.log(2.0)
        if self.kind == "perplexity":
            return math.exp(min(m, 700.0))
        if self.kind == "cross_entropy":
            return m
        return m * self.factor


def unit_factor(field_unit: str | None, target: str | None, power: int, span: Span | None, what: str) -> tuple[float, str | None]:
    """Conversion factor from ``field_unit**power`` to ``target`` (E0604 on a dimension mismatch)."""
    from bkdsl.semantics.units import unit_str, ureg

    if target is None:
        if field_unit is None:
            return 1.0, None
        u = ureg.parse_units(field_unit.replace("^", "**")) ** power
        return 1.0, unit_str(u)
    tu = ureg.parse_units(target.replace("^", "**"))
    fu = ureg.parse_units(field_unit.replace("^", "**")) ** power if field_unit else ureg.dimensionless
    q = ureg.Quantity(1.0, fu)
    if q.dimensionality != ureg.Quantity(1.0, tu).dimensionality:
        raise BkError("E0604", f"{what} is in {unit_str(fu)}, which cannot be reported in {target}",
                      span=span, help=f"report it `in {unit_str(fu)}` or a unit of the same dimension")
    return float(q.to(tu).magnitude), unit_str(tu)
