"""The component registry: the extension point of the language.

A component is one class registered under a bk name. It declares

* ``kind`` — ``manifold``, ``propagator``, ``binding``, ``integrator``, ``loss``, ``layer``,
  ``function`` (a stateless op), ``hamiltonian``, ``measure``, ``data``, ``optimizer``,
  ``schedule``, ``metric``;
* ``inputs`` — the names of its dataflow inputs (tensors), taken positionally first;
* ``Params`` — a pydantic model of its parameters (units through :func:`quantity`); parameters may
  also be given positionally, in ``positional`` order, after the inputs;
* ``guarantees`` — properties true by construction, and :meth:`prove` for the ones it can decide;
* :meth:`infer` — the output type from the input types (shape · dtype · manifold · unit);
* :meth:`build` — its reference implementation as a ``torch.nn.Module`` (stateful components) or
  ``function`` — a plain callable for stateless ops, lowered as an fx ``call_function``.

Users extend the language from Python without touching the compiler::

    @bkdsl.component("swish", kind="function", inputs=("x",))
    class Swish(bkdsl.Component):
        function = staticmethod(lambda x: x * torch.sigmoid(x))
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from bkdsl.components._manifest import MANIFEST  # data only: name → kind → the module that registers it
from bkdsl.diagnostics import BkError, Span, pydantic_message
from bkdsl.semantics.types import DimUnifier, ValueType

KINDS = ("manifold", "propagator", "binding", "integrator", "loss", "layer", "function", "hamiltonian",
         "measure", "data", "optimizer", "schedule", "metric", "selector", "augment", "solver", "potential",
         "gradient")

NON_METRIC = tuple(k for k in KINDS if k != "metric")  # what a name means inside blocks and declarations

# The properties a spec may claim (``: unitary, reversible``) and what each means.
PROPERTIES = {
    "unitary": "norm-preserving and invertible: ‖Ux‖ = ‖x‖ for every x, and U⁻¹ = U*",
    "isometric": "norm-preserving: ‖Ux‖ = ‖x‖ (need not be onto)",
    "contractive": "non-expansive: ‖Ux‖ ≤ ‖x‖",
    "symplectic": "the step's Jacobian J satisfies JᵀΩJ = Ω on phase space",
    "reversible": "the map has an exact inverse that the component implements",
    "commutative": "bind(x, y) = bind(y, x)",
    "hyperbolic": "values stay on the declared hyperbolic manifold",
    "causal": "along a sequence axis (default: N of a [B, N, ...] input), the output at position t "
              "depends only on inputs at positions ≤ t: `causal`, `causal(N)`",
    "equivariant": "z-parity: model(flip(x)) = flip(model(x)) along the axis (invariance for outputs "
                   "without that axis): `equivariant(flip(z))`",
    "bounded": "every output entry satisfies |y| ≤ c for every input: `bounded(norm <= c)` (sup norm)",
    "lipschitz": "‖f(x) − f(y)‖₂ ≤ L ‖x − y‖₂ per example: `lipschitz(<= L)`",
}

# The dependence patterns of an op along a sequence axis (``Component.sequence``), from the
# most local to the least: output position t depends on input position t only / on positions ≤ t /
# on neighbours on both sides / on every position.
SEQUENCE_PATTERNS = ("pointwise", "causal", "bidirectional", "global")


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Proof:
    """The outcome of establishing a claimed property."""

    holds: bool
    how: str  # "analytic", "composition", "probe", "analytic+probe"
    detail: str

    def to_json(self) -> dict:
        return {"holds": self.holds, "how": self.how, "detail": self.detail}


@dataclass
class InferCtx:
    """What :meth:`Component.infer` may consult: the dimension unifier, the call site, and the
    manifold declarations in scope (name → component instance)."""

    uni: DimUnifier
    span: Span | None
    manifolds: dict[str, "Component"]
    arg_names: list[str] = field(default_factory=list)  # the spec's names of the inputs, where known

    def error(self, code: str, msg: str, help: str | None = None) -> BkError:
        return BkError(code, msg, span=self.span, help=help)


class Component:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "layer"
    inputs: ClassVar[tuple[str, ...]] = ()
    positional: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams
    guarantees: ClassVar[frozenset[str]] = frozenset()
    function: ClassVar[Callable | None] = None
    # manifold-typing defaults: which manifolds the inputs may live on ("euclidean", "any")
    accepts: ClassVar[str] = "euclidean"
    # Dependence along the sequence axes (every axis but the trailing feature axis the op may mix):
    # one of SEQUENCE_PATTERNS. "global" unless a component declares otherwise — an op nobody
    # described is assumed to mix every position (the claims pass then refuses `causal` through it).
    sequence: ClassVar[str] = "global"
    # Whether the op combines the entries of its input's last (feature) axis — then a sequence axis
    # that *is* the last axis gets mixed, whatever ``sequence`` says (layernorm over [B, N]).
    mixes_last_axis: ClassVar[bool] = True
    # Whether flipping a sequence axis of the input flips the output (z-parity); by default every
    # pointwise op is, since it applies one map at each position.
    flip_equivariant: ClassVar[bool | None] = None
    # The inputs the properties of :meth:`prove` speak about, the other inputs held fixed (None: the
    # sole input of a one-input op, none of a multi-input op). A binding proves y ↦ bind(x₀, y).
    property_inputs: ClassVar[tuple[str, ...] | None] = None
    # Sup-norm bound of every output entry, |y| ≤ c for every input (None: unknown), and the
    # Lipschitz constant in ℓ₂ of the op in its property input (None: unknown).
    output_bound_value: ClassVar[float | None] = None
    lipschitz_value: ClassVar[float | None] = None

    def __init__(self, params: BaseModel, span: Span | None = None, decl_name: str | None = None):
        self.params = params
        self.span = span
        self.decl_name = decl_name  # the spec's name for it, e.g. `bk` in `propagator bk = ...`
        self.in_types: list[ValueType] = []
        self.out_type: ValueType | tuple[ValueType, ...] | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_args(cls, kwargs: dict[str, Any], span: Span | None = None, decl_name: str | None = None,
                  arg_spans: dict[str, Span] | None = None) -> "Component":
        """Validate ``kwargs`` through the component's pydantic schema (diagnostic E0201 on failure,
        its caret under the offending argument when ``arg_spans`` names where each one was written)."""
        try:
            params = cls.Params(**kwargs)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
            msg = pydantic_message(err.get("msg", "invalid value"))  # no pydantic prefixes
            if err.get("type") == "extra_forbidden":
                close = difflib.get_close_matches(loc, list(cls.Params.model_fields), n=1, cutoff=0.6)
                known = ", ".join(cls.Params.model_fields) or "none"
                raise BkError("E0201", f"`{cls.name}` has no parameter `{loc}`", span=span,
                              help=f"did you mean `{close[0]}`?" if close else
                              f"parameters of `{cls.name}`: {known}") from None
            if err.get("type") == "missing":
                raise BkError("E0201", f"`{cls.name}` needs parameter `{loc}`", span=span,
                              help=f"write `{cls.name}({loc} = ...)`") from None
            if err.get("loc"):  # the caret under the argument that holds the bad value
                span = (arg_spans or {}).get(str(err["loc"][0]), span)
            raise BkError("E0201", f"bad value for `{cls.name}.{loc}`: {msg}", span=span,
                          help=_param_help(cls, loc)) from None
        return cls(params, span=span, decl_name=decl_name)

    # -- typing -------------------------------------------------------------------------------
    def infer(self, ins: list[ValueType], ctx: InferCtx) -> ValueType | tuple[ValueType, ...]:
        """Output type(s) from input types. Default: shape-preserving, Euclidean in → Euclidean out."""
        self.check_manifolds(ins, ctx)
        return ins[0] if ins else ValueType()

    def check_manifolds(self, ins: list[ValueType], ctx: InferCtx) -> None:
        if self.accepts != "euclidean":
            return
        names = [a or b for a, b in zip(ctx.arg_names, self.inputs)] if ctx.arg_names else list(self.inputs)
        for nm, t in zip(names, ins):
            if t.manifold is not None:
                raise BkError(
                    "E0402",
                    f"`{self.name}` expects a Euclidean tensor; `{nm}` lives on `{t.manifold}`",
                    span=ctx.span,
                    help=f"take `logmap0({t.manifold}, {nm})` first, or use the Möbius form of the op")

    # -- lowering -----------------------------------------------------------------------------
    def build(self):  # -> torch.nn.Module
        raise NotImplementedError(f"component `{self.name}` has no module implementation")

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments passed to ``function`` (stateless components)."""
        return {}

    # -- properties ---------------------------------------------------------------------------
    def prove(self, prop: str) -> Proof | None:
        """Decide a claimed property; ``None`` when this component cannot speak to it.

        The default knows only ``guarantees`` (analytic, by construction)."""
        if prop in self.guarantees:
            return Proof(True, "analytic", f"`{self.name}` is {prop} by construction")
        return None

    # -- claims over the dataflow graph (bkdsl/verify/dataflow.py) -----------------------------
    def sequence_pattern(self) -> str:
        """Dependence along a sequence axis (one of SEQUENCE_PATTERNS); parameters may change it
        (a layer built with ``causal = true`` overrides this)."""
        return self.sequence

    def flip_symmetric(self) -> bool:
        """True when flip(op(x)) = op(flip(x)) along every sequence axis."""
        if self.flip_equivariant is not None:
            return self.flip_equivariant
        return self.sequence_pattern() == "pointwise"

    def claim_inputs(self) -> tuple[str, ...]:
        """The inputs in which the properties of :meth:`prove` hold (the others held fixed)."""
        if self.property_inputs is not None:
            return self.property_inputs
        return self.inputs if len(self.inputs) == 1 else ()

    def output_bound(self) -> tuple[float, str] | None:
        """(c, why) with |y| ≤ c for every entry of every output, or None."""
        if self.output_bound_value is None:
            return None
        return float(self.output_bound_value), f"`{self.name}` maps into [−{self.output_bound_value:g}, {self.output_bound_value:g}]"

    def lipschitz(self) -> tuple[float, str] | None:
        """(L, why): ‖op(x) − op(y)‖₂ ≤ L‖x − y‖₂ in its property input, or None."""
        if self.lipschitz_value is not None:
            return float(self.lipschitz_value), f"`{self.name}` is {self.lipschitz_value:g}-Lipschitz"
        for prop in ("isometric", "contractive"):
            pr = self.prove(prop) if prop in self.guarantees else None
            if pr is not None and pr.holds:
                return 1.0, f"`{self.name}` is {prop}"
        return None

    def validate(self) -> None:
        """Raise a BkError for parameter combinations the declaration alone refuses (beyond the
        schema), so that `check` refuses them without the component being used in a model."""

    def probe_elements(self) -> int:
        """A bound on the tensor elements a probe of this component allocates (checked against
        bkdsl.verify.probes.PROBE_BUDGET before any probe runs). Default: 64 points of the largest
        integer parameter (a size such as ``n`` or ``dim``)."""
        sizes = [abs(v) for _, v in self.params if isinstance(v, int) and not isinstance(v, bool)]
        return 64 * max(sizes, default=1) ** 2 if sizes else 64

    def describe(self) -> dict[str, Any]:
        from bkdsl.semantics.values import to_json

        params = {k: (v.decl_name or v.name) if isinstance(v, Component) else to_json(v)
                  for k, v in self.params}
        return {"component": self.name, "kind": self.kind, "params": params}


# -- per-kind protocols: what the later stages call on a component of each kind ----------------------
@runtime_checkable
class GraphComponent(Protocol):
    """A component used inside blocks (layer, binding, propagator, …): typed, then lowered."""

    def infer(self, ins: list[ValueType], ctx: InferCtx) -> Any: ...
    def build(self) -> Any: ...  # torch.nn.Module; a stateless op sets ``function`` instead


@runtime_checkable
class Optimizer(Protocol):
    """``optimizer = adam(lr = 1e-3)``: builds the torch optimizer over the trainable parameters."""

    def build(self, params: list[Any]) -> Any: ...  # -> torch.optim.Optimizer


@runtime_checkable
class Schedule(Protocol):
    """``schedule = cosine(warmup = 1)``: builds the torch learning-rate scheduler over the run's
    optimizer, stepped once per optimizer step (:mod:`bkdsl.components.schedules`)."""

    def build(self, optimizer: Any, *, steps_per_epoch: int, total_steps: int) -> Any: ...  # -> LRScheduler


@runtime_checkable
class DataSource(Protocol):
    """``data d = file(...)``: ``header`` without reading samples (``check``), ``load`` for training."""

    def header(self, *, base_dir: str | None = None) -> dict: ...
    def load(self, *, seed: int, base_dir: str | None = None) -> Any: ...


@runtime_checkable
class Metric(Protocol):
    """``metrics = [mae(E) in MeV]``: the runtime metric, given the data's field units."""

    def make(self, field_units: dict[str, str | None]) -> Any: ...


@runtime_checkable
class Augment(Protocol):
    """``augment = [flip(axis = z)]``: the runtime augmentation."""

    def make(self) -> Any: ...


PROTOCOLS: dict[str, type] = {"optimizer": Optimizer, "schedule": Schedule, "data": DataSource,
                              "metric": Metric, "augment": Augment}


def _param_help(cls: type[Component], loc: str) -> str:
    f = cls.Params.model_fields.get(loc.split(".")[0])
    if f is not None and f.description:
        return f"`{loc}`: {f.description}"
    return f"parameters of `{cls.name}`: {', '.join(cls.Params.model_fields) or 'none'}"


# name → kind → class. A name may serve two roles (``mae`` as a differentiable loss term and as an
# accumulating metric); within one kind a name belongs to one class.
_REGISTRY: dict[str, dict[str, type[Component]]] = {}
_LOADED = False

# Modules whose import registers the built-in components. Which module registers which (name, kind) is
# recorded in bkdsl/components/_manifest.py (generated from these modules by
# ``python -m bkdsl.components.manifest``; tests/components/test_manifest.py regenerates it and compares),
# so that ``lookup(name)`` imports the one module that defines ``name`` — not every module, and with
# them torch — see "The lazy registry" in docs/architecture.md.
BUILTIN_MODULES = [
    "bkdsl.components.manifolds",
    "bkdsl.components.layers",
    "bkdsl.components.functions",
    "bkdsl.components.losses",
    "bkdsl.components.regularizers",
    "bkdsl.components.unbinding",
    "bkdsl.components.bk_core",
    "bkdsl.components.transformer",
    "bkdsl.components.binding",
    "bkdsl.components.fast_weights",
    "bkdsl.components.hamiltonians",
    "bkdsl.components.integrators",
    "bkdsl.components.ads",
    "bkdsl.components.synthetic_data",
    "bkdsl.components.training",
    "bkdsl.components.data_sources",
    "bkdsl.components.data_file",
    "bkdsl.components.schedules",
    "bkdsl.components.optimizers",
    "bkdsl.components.optics",
    "bkdsl.components.hyperbolic",
    "bkdsl.components.optical_data",
    "bkdsl.components.teleport",
    "bkdsl.components.superposition",
    "bkdsl.components.holographic",
    "bkdsl.components.tree_data",
    "bkdsl.components.gmvae",
]


def component(name: str, *, kind: str = "layer", inputs: tuple[str, ...] | None = None,
              positional: tuple[str, ...] | None = None, replace: bool = False,
              ) -> Callable[[type[Component]], type[Component]]:
    """Register a :class:`Component` subclass under ``name`` (decorator).

    A name belongs to one class: registering another class under a taken name is an error unless
    ``replace=True`` (a user deliberately overriding a built-in). A built-in is registered before any
    other class of its name and kind (its module is imported first), so an override replaces it
    whether or not the built-in was looked up before."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; one of {KINDS}")

    def deco(cls: type[Component]) -> type[Component]:
        if not issubclass(cls, Component):
            raise TypeError("@component expects a subclass of bkdsl.Component")
        if kind in ("optimizer", "schedule") and getattr(cls, "build", None) is getattr(Component, "build", None):
            # the runner calls build(...): refuse the class now, not inside the training loop
            raise TypeError("an optimizer component defines build(self, params) -> torch.optim.Optimizer "
                            "(bkdsl.registry.Optimizer)" if kind == "optimizer" else
                            "a schedule component defines build(self, optimizer, *, steps_per_epoch, total_steps) "
                            "-> torch.optim.lr_scheduler.LRScheduler (bkdsl.registry.Schedule)")
        builtin = MANIFEST.get(name, {}).get(kind)
        if builtin is not None and builtin != cls.__module__:
            importlib.import_module(builtin)  # the built-in first, as if every built-in were loaded
        prev = _REGISTRY.get(name, {}).get(kind)
        if prev is not None and not replace and (prev.__module__, prev.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"component name {name!r} is already registered by {prev.__module__}.{prev.__qualname__}; "
                             "pass replace=True to override it")
        cls.name = name
        cls.kind = kind
        if inputs is not None:
            cls.inputs = tuple(inputs)
        if positional is not None:
            cls.positional = tuple(positional)
        _REGISTRY.setdefault(name, {})[kind] = cls
        return cls

    return deco


def _load_builtins() -> None:
    """Import every built-in component module (``all_components``, the catalog, the manifest generator)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


# names whose built-in modules are imported (lookup's fast path: a set membership per call)
_READY: set[str] = set()


def _load_defining(name: str) -> None:
    """Import the built-in modules that register ``name`` (the manifest's entries for it), once."""
    if name not in _READY:
        for mod in MANIFEST.get(name, {}).values():
            importlib.import_module(mod)
        _READY.add(name)


# Without a kind, a name that has several roles resolves to the first of these.
_ROLE_ORDER = ("metric",)


def _roles(name: str) -> list[tuple[str, type[Component]]]:
    """(kind, class) of ``name``: the built-in kinds in the manifest's (= BUILTIN_MODULES') order, then
    kinds only user components give it — the same order whichever modules happen to be imported."""
    roles = _REGISTRY.get(name) or {}
    order = list(MANIFEST.get(name, {}))
    return sorted(roles.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))


def lookup(name: str, kind: str | tuple[str, ...] | None = None) -> type[Component] | None:
    """The component registered as ``name`` (of ``kind``, or one of several kinds, when given).

    Imports only the built-in module(s) that define ``name`` (bkdsl/components/_manifest.py)."""
    _load_defining(name)
    roles = _REGISTRY.get(name)
    if not roles:
        return None
    if kind is not None:
        for k in (kind,) if isinstance(kind, str) else kind:
            cls = roles.get(k)
            if cls is not None:
                return cls
        return None
    if len(roles) == 1:
        return next(iter(roles.values()))
    for k in _ROLE_ORDER:
        if k in roles:
            return roles[k]
    return _roles(name)[0][1]


def names(kind: str | tuple[str, ...] | None = None) -> list[str]:
    """The registered names (of ``kind``, or one of several kinds), built-in and user, sorted — what
    "did you mean" and "components of this kind: ..." read, without importing any component module."""
    kinds = (kind,) if isinstance(kind, str) else kind
    out = {n for n, roles in MANIFEST.items() if kinds is None or any(k in kinds for k in roles)}
    out |= {n for n, roles in _REGISTRY.items() if kinds is None or any(k in kinds for k in roles)}
    return sorted(out)


def all_components() -> dict[str, type[Component]]:
    """name → class (a name with several roles is listed under ``name`` and ``name:kind``). Imports
    every built-in component module; the order is the built-ins' (manifest) order, then user components."""
    _load_builtins()
    out: dict[str, type[Component]] = {}
    order = list(MANIFEST) + [n for n in _REGISTRY if n not in MANIFEST]
    for name in order:
        for k, cls in _roles(name):
            out[name if name not in out else f"{name}:{k}"] = cls
    return out

