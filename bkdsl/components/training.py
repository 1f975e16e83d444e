"""Training components: augmentations, selectors, metrics (optimizers: :mod:`bkdsl.components.optimizers`,
schedules: :mod:`bkdsl.components.schedules`, data sources: :mod:`bkdsl.components.data_sources`).

Each is a :class:`~bkdsl.registry.Component` whose ``Params`` validates what a ``data`` or
``train`` block writes (units through :func:`~bkdsl.semantics.units.quantity`), and whose ``make`` /
``load`` returns the runtime object from :mod:`bkdsl.train`. The runner reaches them through
:func:`instantiate`, so a user's own ``@bkdsl.component("my_source", kind="data")`` works the same way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bkdsl.components.data_file import unit_text
from bkdsl.components.metric_specs import DIMENSIONLESS, METRICS as _METRICS, MetricSpec, unit_factor
from bkdsl.components.reversal import bind_layout
from bkdsl.registry import Component, component, lookup, names as registered_names
from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.values import CallValue, Ref


def _name(v: Any) -> Any:
    """A Ref (``E``, ``val.loss``, ``z``) or string → its text."""
    if isinstance(v, Ref):
        return v.path
    return v


Name = Annotated[str, BeforeValidator(_name)]
AxisName = Annotated[int | str, BeforeValidator(_name)]


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def instantiate(value: Any, kind: str, span: Span | None = None, what: str | None = None) -> Component:
    """The component a ``train``/``data`` value names: ``adam(lr = 1e-3)``, ``minmax``, ``best(val.loss)``.

    Positional arguments bind to the component's ``inputs`` then ``positional`` names."""
    if isinstance(value, Ref):
        value = CallValue(value.path, span=value.span)
    elif isinstance(value, str):
        value = CallValue(value)
    if not isinstance(value, CallValue):
        raise BkError("E0609", f"{what or kind}: expected a {kind} such as `{_EXAMPLE.get(kind, 'name(...)')}`, "
                               f"got {value!r}", span=span)
    sp = value.span or span
    cls = lookup(value.name, kind)
    if cls is None:
        other = lookup(value.name)
        known = registered_names(kind)
        raise BkError("E0609", f"`{value.name}` is not a{'n' if kind[0] in 'aeiou' else ''} {kind}"
                      + (f" (it is a {other.kind})" if other else ""), span=sp,
                      help=f"{kind} components: {', '.join(known)}")
    names = tuple(cls.inputs) + tuple(cls.positional)
    if len(value.args) > len(names):
        raise BkError("E0204", f"`{value.name}` takes at most {len(names)} positional argument(s), got "
                               f"{len(value.args)}", span=sp, help=f"name the arguments: {', '.join(cls.Params.model_fields)}")
    kwargs = dict(zip(names, value.args))
    for k, v in value.kwargs.items():
        if k in kwargs:
            raise BkError("E0204", f"`{value.name}`: `{k}` given twice", span=sp)
        kwargs[k] = v
    if value.unit is not None and "unit" in cls.Params.model_fields and "unit" not in kwargs:
        kwargs["unit"] = value.unit
    comp = cls.from_args(kwargs, span=sp)
    comp.call = value  # the original call: spans of arguments, the `in UNIT` clause
    return comp


# The optimizer of a train block that names none (the runner builds it, `check` checks against it).
DEFAULT_OPTIMIZER = CallValue("adam", kwargs={"lr": 1e-3})

_EXAMPLE = {"optimizer": "adam(lr = 1e-3)", "schedule": "cosine(warmup = 1)", "augment": "flip(axis = 0, p = 0.5)",
            "selector": "best(val.loss)", "metric": "mae(E) in MeV", "data": 'file("d.h5", x = field("x"))'}


# -- augmentations -------------------------------------------------------------------------------
class FlipParams(_P):
    axis: AxisName = Field(description="per-sample axis index (0 = first after the sample dim) or axis name")
    p: float = Field(0.5, ge=0, le=1)
    fields: list[Name] | None = None


class TimeReverseParams(_P):
    p: float = Field(0.5, ge=0, le=1)
    fields: list[Name] | None = None


@component("flip", kind="augment")
class FlipAug(Component):
    """Augmentation: mirror a field along a named axis (fields odd under it change sign) with probability p."""

    Params = FlipParams

    def check_source(self, source) -> None:
        """Nothing to bind: the axis is checked against the batch's fields when the flip is drawn."""

    def make(self):
        from bkdsl.train.augment import Flip

        p = self.params
        ax = p.axis
        if isinstance(ax, str) and ax.lstrip("-").isdigit():
            ax = int(ax)
        return Flip(ax, p.p, tuple(p.fields) if p.fields else None, span=self.span)


@component("time_reverse", kind="augment")
class TimeReverseAug(Component):
    """Augmentation: time reversal as the data source declares it (phase-space pairs, token order)."""

    Params = TimeReverseParams

    def check_source(self, source) -> None:
        """E0612 unless the source declares a reversal structure these ``fields`` match (bind_layout)."""
        bind_layout(source, tuple(self.params.fields) if self.params.fields else None, self.span)

    def make(self):
        from bkdsl.train.augment import TimeReverse

        return TimeReverse(self.params.p, tuple(self.params.fields) if self.params.fields else None, span=self.span)


# -- selectors -----------------------------------------------------------------------------------
class BestParams(_P):
    metric: Name = Field("val.loss", description="record key, e.g. val.loss or val.mae_E")
    mode: Literal["min", "max"] = "min"


@component("best", kind="selector", positional=("metric",))
class BestSelector(Component):
    """Select the checkpoint with the best value of a metric (lowest, or highest with `mode = "max"`)."""

    Params = BestParams

    def make(self):
        m = self.params.metric
        return (m if "." in m else f"val.{m}", self.params.mode)


@component("last", kind="selector")
class LastSelector(Component):
    """Select the last checkpoint."""

    Params = _P

    def make(self):
        return None


# -- metrics -------------------------------------------------------------------------------------
class MetricParams(_P):
    """``mae(E)``: output `E` against field `E`; ``bpb(logits, targets)``: output `logits` against field
    `targets` (the order of the loss primitives: prediction, then target)."""

    a: Name = Field(description="the field (one argument) or the model output (two arguments)")
    b: Name | None = Field(None, description="the data field, when the output is named differently")
    unit: Any = Field(None, description="the unit the metric is reported in (also: `mae(E) in MeV`)")


def _metric_cls(kind: str):
    class _M(Component):
        Params = MetricParams

        def spec(self, field_units: dict[str, str | None]) -> MetricSpec:
            """The metric as declared, checked against the data's field units (no torch)."""
            p = self.params
            output, field = (p.a, p.b) if p.b is not None else (p.a, p.a)
            target = unit_text(p.unit, self.span) if p.unit is not None else None
            if kind in DIMENSIONLESS:
                if target not in (None, "1"):
                    raise BkError("E0604", f"`{kind}` is dimensionless; it cannot be reported in {target}",
                                  span=self.span, help="drop the `in` clause")
                factor, unit = 1.0, {"bpb": "bit/byte", "cross_entropy": "nat"}.get(kind)
            else:
                if field not in field_units:
                    raise BkError("E0601", f"metric `{kind}({field})`: the data has no field `{field}`",
                                  span=self.span, help=f"fields: {', '.join(field_units)}")
                factor, unit = unit_factor(field_units[field], target, 2 if kind == "mse" else 1, self.span,
                                           f"`{kind}({field})`")
            if field not in field_units:
                raise BkError("E0601", f"metric `{kind}`: the data has no field `{field}`", span=self.span,
                              help=f"fields: {', '.join(field_units)}")
            return MetricSpec(kind, field, output, unit, factor, span=self.span,
                              label=f"{self.name}_{field}" if kind not in DIMENSIONLESS or output == field else self.name)

        def make(self, field_units: dict[str, str | None]):
            """The accumulating metric (bkdsl.train.metrics.Metric) of :meth:`spec`."""
            from bkdsl.train.metrics import runtime

            return runtime(self.spec(field_units))

    return _M


_METRIC_DOCS = {
    "mae": "Mean absolute error mean|ŷ − y| of an output against a field, reported in the field's unit.",
    "rmse": "Root-mean-square error √mean(ŷ − y)², in the field's unit.",
    "mse": "Mean squared error mean(ŷ − y)², in the field's unit squared.",
    "max_error": "Largest absolute error max|ŷ − y| over the split, in the field's unit.",
    "rel_l2": "Relative L2 error ‖ŷ − y‖₂ / ‖y‖₂ per sample, averaged (dimensionless).",
    "accuracy": "Fraction of samples whose arg-max class equals the target class.",
    "cross_entropy": "Cross-entropy of logits against target classes, in nats.",
    "bpb": "Bits per byte: next-byte cross-entropy / ln 2.",
    "perplexity": "Perplexity exp(cross-entropy) of next-token logits.",
}
for _k in _METRICS:
    component(_k, kind="metric", positional=("a", "b"))(
        type(f"Metric_{_k}", (_metric_cls(_k),), {"__doc__": _METRIC_DOCS.get(_k)}))
# the loss primitive's name for bits per byte, so `metrics = [bits_per_byte(logits, targets)]` reads the same
component("bits_per_byte", kind="metric", positional=("a", "b"))(
    type("Metric_bits_per_byte", (_metric_cls("bpb"),), {"__doc__": _METRIC_DOCS["bpb"]}))
