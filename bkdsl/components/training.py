"""Training components: data sources, schedules, augmentations, selectors, metrics (optimizers:
:mod:`bkdsl.components.optimizers`).

Each is a :class:`~bkdsl.registry.Component` whose ``Params`` validates what a ``data`` or
``train`` block writes (units through :func:`~bkdsl.semantics.units.quantity`), and whose ``make`` /
``load`` returns the runtime object from :mod:`bkdsl.train`. The runner reaches them through
:func:`instantiate`, so a user's own ``@bkdsl.component("my_source", kind="data")`` works the same way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bkdsl.registry import Component, component, lookup, all_components
from bkdsl.diagnostics import BkError, Span
from bkdsl.physics.params import NuclearDensitiesParams
from bkdsl.semantics.units import quantity
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
        known = sorted({c.name for c in all_components().values() if c.kind == kind})
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


_EXAMPLE = {"optimizer": "adam(lr = 1e-3)", "schedule": "cosine(warmup = 1)", "augment": "flip(axis = 0, p = 0.5)",
            "selector": "best(val.loss)", "metric": "mae(E) in MeV", "data": 'file("d.h5", x = field("x"))'}


# -- schedules -----------------------------------------------------------------------------------
class ConstantParams(_P):
    pass


class StepParams(_P):
    step_size: int = Field(gt=0, description="epochs between decays")
    gamma: float = Field(0.1, gt=0)


class MultiStepParams(_P):
    milestones: list[int] = Field(description="epochs at which the rate is multiplied by gamma")
    gamma: float = Field(0.1, gt=0)


class PlateauParams(_P):
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(10, ge=0)
    threshold: float = Field(1e-4, ge=0)
    cooldown: int = Field(0, ge=0)
    min_factor: float = Field(0.0, ge=0)
    mode: Literal["min", "max"] = "min"


class CosineParams(_P):
    warmup: float = Field(0.0, ge=0, description="warm-up length in epochs (fractions allowed)")
    warmup_steps: int = Field(0, ge=0, description="warm-up length in optimizer steps (added to `warmup`)")
    min_factor: float = Field(0.0, ge=0, le=1)


@component("constant", kind="schedule")
class ConstantSchedule(Component):
    Params = ConstantParams

    def make(self):
        from bkdsl.train.schedules import Constant

        return Constant()


@component("step", kind="schedule")
class StepSchedule(Component):
    Params = StepParams

    def make(self):
        from bkdsl.train.schedules import StepDecay

        return StepDecay(self.params.step_size, self.params.gamma)


@component("multistep", kind="schedule")
class MultiStepSchedule(Component):
    Params = MultiStepParams

    def make(self):
        from bkdsl.train.schedules import MultiStep

        return MultiStep(sorted(self.params.milestones), self.params.gamma)


@component("reduce_on_plateau", kind="schedule")
class PlateauSchedule(Component):
    Params = PlateauParams

    def make(self):
        from bkdsl.train.schedules import ReduceOnPlateau

        p = self.params
        return ReduceOnPlateau(p.factor, p.patience, p.threshold, p.cooldown, p.min_factor, p.mode)


@component("cosine", kind="schedule")
class CosineSchedule(Component):
    Params = CosineParams

    def make(self):
        from bkdsl.train.schedules import CosineWarmup

        return CosineWarmup(self.params.warmup, self.params.min_factor, warmup_steps=self.params.warmup_steps)


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
    Params = FlipParams

    def make(self):
        from bkdsl.train.augment import Flip

        p = self.params
        ax = p.axis
        if isinstance(ax, str) and ax.lstrip("-").isdigit():
            ax = int(ax)
        return Flip(ax, p.p, tuple(p.fields) if p.fields else None, span=self.span)


@component("time_reverse", kind="augment")
class TimeReverseAug(Component):
    Params = TimeReverseParams

    def make(self):
        from bkdsl.train.augment import TimeReverse

        return TimeReverse(self.params.p, tuple(self.params.fields) if self.params.fields else None, span=self.span)


# -- selectors -----------------------------------------------------------------------------------
class BestParams(_P):
    metric: Name = Field("val.loss", description="record key, e.g. val.loss or val.mae_E")
    mode: Literal["min", "max"] = "min"


@component("best", kind="selector", positional=("metric",))
class BestSelector(Component):
    Params = BestParams

    def make(self):
        m = self.params.metric
        return (m if "." in m else f"val.{m}", self.params.mode)


@component("last", kind="selector")
class LastSelector(Component):
    Params = ConstantParams

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

        def make(self, field_units: dict[str, str | None]):
            from bkdsl.train.metrics import DIMENSIONLESS, Metric, unit_factor
            from bkdsl.train.sources import unit_text

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
            return Metric(kind, field, output, unit, factor, span=self.span,
                          label=f"{self.name}_{field}" if kind not in DIMENSIONLESS or output == field else self.name)

    return _M


from bkdsl.train.metrics import METRICS as _METRICS  # noqa: E402

for _k in _METRICS:
    component(_k, kind="metric", positional=("a", "b"))(type(f"Metric_{_k}", (_metric_cls(_k),), {}))
# the loss primitive's name for bits per byte, so `metrics = [bits_per_byte(logits, targets)]` reads the same
component("bits_per_byte", kind="metric", positional=("a", "b"))(type("Metric_bits_per_byte", (_metric_cls("bpb"),), {}))


# -- data sources --------------------------------------------------------------------------------
class _DataParams(_P):
    """Keys every data block may carry, handled by the runner rather than the source."""

    split: list[float] | None = None
    normalize: Any = None
    augment: list[Any] | None = None
    seed: int | None = None


COMMON_DATA_KEYS = ("split", "normalize", "augment", "seed")


class DataSource(Component):
    """A data source: ``load(seed, base_dir)`` returns a :class:`~bkdsl.train.data.Dataset`."""

    def load(self, *, seed: int, base_dir: str | None = None):
        raise NotImplementedError

    def fields(self) -> dict:
        """The fields it will produce (name → :class:`~bkdsl.train.data.FieldInfo`, with units),
        known without loading anything — what the compiler's unit checks of losses read."""
        return {}

    def header(self, *, base_dir: str | None = None) -> dict:
        """The fields as ``load`` would produce them (shapes, units), without reading or generating the
        samples — what ``bkdsl check`` verifies the train block against. A file source reads its file's
        headers here (a missing file or key is refused now, not after the first step)."""
        return self.fields()

    @classmethod
    def declared_fields(cls, call: CallValue) -> dict[str, str]:
        """Field name → unit text ("1" when dimensionless), from the call alone — what the compiler's
        unit checks of losses read (``bkdsl.verify.units.data_field_units``)."""
        return {}


class FileParams(_DataParams):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    path: str = Field(description="the data file (.npz, .h5/.hdf5, .safetensors)")


@component("file", kind="data", positional=("path",))
class FileSource(DataSource):
    Params = FileParams

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.sources import field_decl, read_file

        return read_file(self.params.path, self.fields(), span=self.span, base_dir=base_dir)

    def header(self, *, base_dir: str | None = None) -> dict:
        from bkdsl.train.sources import read_header

        return read_header(self.params.path, self.fields(), span=self.span, base_dir=base_dir)

    def fields(self) -> dict:
        from bkdsl.train.sources import field_decl

        call = getattr(self, "call", None)
        extra = dict(self.params.model_extra or {})
        return {n: field_decl(n, v, (call.arg_spans.get(n) if call else None) or self.span)
                for n, v in extra.items()}


class TextBytesParams(_DataParams):
    seq_len: int = Field(128, gt=0, description="bytes per sequence N")
    max_bytes: int = Field(2_000_000, gt=0, description="bytes read in all (files in a seeded order; the "
                                                          "whole standard library is about 30 MB)")
    root: str | None = Field(None, description="directory of .py files (default: the standard library)")


@component("text_bytes", kind="data")
class TextBytesSource(DataSource):
    Params = TextBytesParams
    unnormalized_fields = ("tokens", "targets")
    # targets[t] = tokens[t + 1]: a loss reading `targets` trains next-token prediction, which a model
    # may learn only if it is causal (bkdsl/verify/causality.py)
    next_token_fields = ("targets",)

    @classmethod
    def declared_fields(cls, call: CallValue) -> dict[str, str]:
        return {"tokens": "1", "targets": "1"}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.sources import text_bytes_dataset

        p = self.params
        return text_bytes_dataset(p.seq_len, p.max_bytes, p.root, seed=seed)

    def fields(self) -> dict:
        from bkdsl.train.data import FieldInfo

        n = self.params.seq_len
        return {"tokens": FieldInfo("tokens", shape=(n,), dtype="int"),
                "targets": FieldInfo("targets", shape=(n,), dtype="int")}


class WoodsSaxonParams(_DataParams):
    samples: int = Field(512, gt=0)
    nr: int = Field(32, gt=1, description="radial points")
    step: quantity("fm") = Field(0.25, gt=0, description="radial step")
    radius: quantity("fm", list[float]) = Field([3.0, 7.0], description="range of R")
    diffuseness: quantity("fm", list[float]) = Field([0.45, 0.65], description="range of a")
    rho0: quantity("fm^-3") = Field(0.16, gt=0, description="central density")


@component("woods_saxon", kind="data")
class WoodsSaxonSource(DataSource):
    Params = WoodsSaxonParams

    @classmethod
    def declared_fields(cls, call: CallValue) -> dict[str, str]:
        return {"shape": "fm", "rho": "fm^-3", "A": "1"}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.cache import DatasetCache, code_version
        from bkdsl.train import sources

        p = self.params
        params = p.model_dump(exclude=set(COMMON_DATA_KEYS))
        params["seed"] = seed
        ds, _ = DatasetCache().get_or_create(
            "woods_saxon", params, code_version(sources.woods_saxon_dataset),
            lambda: sources.woods_saxon_dataset(p.samples, p.nr, p.step, tuple(p.radius), tuple(p.diffuseness),
                                                p.rho0, seed))
        return ds

    def fields(self) -> dict:
        from bkdsl.train.data import FieldInfo

        return {"shape": FieldInfo("shape", shape=(2,), unit="fm"),
                "rho": FieldInfo("rho", shape=(self.params.nr,), unit="fm^-3", axes=("r",)),
                "A": FieldInfo("A", shape=(1,))}


# -- nuclear_densities(...): the physics engineer's generator, cached ------------------------------------
DEFAULT_NUCLEAR_UNITS = {"rho": "fm^-3", "E": "MeV", "v": "MeV", "Q20": "fm^2", "Q30": "fm^3"}


class NuclearParams(_DataParams, NuclearDensitiesParams):
    """The generator's own validated schema (:mod:`bkdsl.physics.params`) plus the common data keys."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


@component("nuclear_densities", kind="data")
class NuclearDensitiesSource(DataSource):
    """Skyrme-ETF densities from :func:`bkdsl.physics.dataset.generate_nuclear_densities`, generated once
    per (parameters, code version) and then read from the dataset cache. Every argument except the
    common data keys (split, normalize, augment, seed) is validated by
    :class:`bkdsl.physics.params.NuclearDensitiesParams` and the ones written are passed to the generator."""

    Params = NuclearParams

    @classmethod
    def declared_fields(cls, call: CallValue) -> dict[str, str]:
        try:
            from bkdsl.physics import dataset as phys

            units = getattr(phys, "FIELD_UNITS", None) or getattr(phys, "UNITS", None) or DEFAULT_NUCLEAR_UNITS
            # the generator's own units (Q20 in b, Q30 in b^1.5, ...): declaring others here would label
            # its numbers with the wrong unit (they are plain tensors, not quantities to convert)
            out = {k: ("1" if v in ("dimensionless", "") else v) for k, v in units.items()}
            pot = (call.kwargs.get("potential") if call is not None and hasattr(call, "kwargs") else None)
            if isinstance(pot, str) and pot.lower() in ("sho", "rnd"):
                out.pop("v0", None)       # the random-HO amplitude: the sho / rnd families draw none
            return out
        except ImportError:
            return dict(DEFAULT_NUCLEAR_UNITS)

    def load(self, *, seed: int, base_dir: str | None = None):
        try:
            from bkdsl.physics import dataset as phys
        except ImportError:
            raise BkError("E0605", "nuclear_densities: the generator `bkdsl.physics.dataset` is not available",
                          span=self.span, help="update bkdsl, or write the data to a file and use file(...)") from None
        from bkdsl.train.cache import DatasetCache, code_version
        from bkdsl.train.sources import dataset_from_generated
        from bkdsl.train.progress import generation_progress

        kwargs = {k: v for k, v in self.params.generator_kwargs().items() if k not in COMMON_DATA_KEYS}
        gen = phys.generate_nuclear_densities
        params = {**kwargs, "seed": seed}
        ds, _ = DatasetCache().get_or_create(
            "nuclear_densities", params, code_version(phys, gen),
            lambda: dataset_from_generated(gen(**params, progress=generation_progress("nuclear_densities")), self.declared_fields(self.call if hasattr(self, "call") else None),
                                           axes={"rho": ("r", "z"), "v": ("r", "z")}, odd_under={"Q30": ("z",)},
                                           span=self.span))
        ds = _name_grid_axes(ds)
        grid = kwargs.get("grid") or phys.DEFAULT_GRID.get(str(kwargs.get("nucleus", "U236")))
        if grid:  # the plots' r/z axes in fm (bkdsl.train.plots.grid_extent)
            ds.meta["grid_step_fm"] = float(grid[2])
        return ds


def _name_grid_axes(ds):
    """Name the per-sample axes of grid fields: [n_r, n_z] → (r, z); [1, n_r, n_z] (a one-channel image, the
    thesis' 1 × 48 × 128) → (c, r, z), so ``flip(axis = z)`` and ``parity_mae(E, axis = z)`` find them;
    odd multipoles Q_λ0 (odd λ) change sign under z → −z."""
    import re

    rho = ds.info.get("rho")
    grid = tuple(rho.shape[-2:]) if rho is not None and rho.shape and len(rho.shape) >= 2 else None
    for name, inf in ds.info.items():
        shp = tuple(inf.shape or ())
        if grid and len(shp) >= 2 and shp[-2:] == grid and not inf.axes:
            inf.axes = ("r", "z") if len(shp) == 2 else ("c",) * (len(shp) - 2) + ("r", "z")
        m = re.fullmatch(r"Q(\d)0", name)
        if m and int(m.group(1)) % 2 == 1 and "z" not in inf.odd_under:
            inf.odd_under = tuple(inf.odd_under) + ("z",)
    return ds
