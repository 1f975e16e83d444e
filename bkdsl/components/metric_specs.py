"""Metrics as declared: which output against which field, in which unit — no tensors.

``bkdsl check`` validates ``metrics = [mae(E) in MeV, parity_mae(E, axis = z)]`` against the data's
field units through these (a unit of another dimension is E0604 before training starts); the runner
turns each into its accumulating form (:mod:`bkdsl.train.metrics`: :class:`~bkdsl.train.metrics.Metric`
and :class:`~bkdsl.train.metrics.ParityMetric` subclass these and add the tensor code). The reduction
from (sum, count) to the reported number, :meth:`MetricSpec.value`, is plain arithmetic and lives here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.units import unit_str, ureg

METRICS = ("mae", "rmse", "mse", "max_error", "rel_l2", "accuracy", "cross_entropy", "bpb", "perplexity")
DIMENSIONLESS = ("rel_l2", "accuracy", "cross_entropy", "bpb", "perplexity")

# parity-symmetry metrics (thesis eqs. 4.15–4.16): they need the model, not just (outputs, batch)
PARITY_METRICS = ("parity_mae", "parity_l1_integral")


@dataclass
class MetricSpec:
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

    def value(self, s: float, n: float) -> float:
        """The reported number from the accumulated (sum-or-max, count)."""
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


@dataclass
class ParitySpec:
    """A parity metric as declared (the model on a batch and on its reflection along ``axis``;
    :class:`bkdsl.train.metrics.ParityMetric` says how each is computed)."""

    kind: str
    output: str
    axis: int | str
    unit: str | None = None
    factor: float = 1.0
    span: Span | None = None
    term: Callable | None = None  # parity_l1_integral: pred, target → per-batch mean ∫ |pred − target| dμ
    label: str | None = None
    needs_model = True
    reduce = "sum"

    @property
    def name(self) -> str:
        return self.label or f"{self.kind}_{self.output}"

    @property
    def field(self) -> str:
        return self.output

    def value(self, s: float, n: float) -> float:
        return s / max(n, 1.0) * self.factor


def unit_factor(field_unit: str | None, target: str | None, power: int, span: Span | None, what: str) -> tuple[float, str | None]:
    """Conversion factor from ``field_unit**power`` to ``target`` (E0604 on a dimension mismatch)."""
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


__all__ = ["METRICS", "DIMENSIONLESS", "PARITY_METRICS", "MetricSpec", "ParitySpec", "unit_factor"]
