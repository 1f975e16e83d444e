"""``unbind(ph, z, k)``: recover the value bound to key k in z, for a declared binding ph.

A binding ``ph(k, y) = z`` (bkdsl/nn/binding.py) has, for a fixed key, the inverse y = unbind(z, k)
where one exists:

===============  =======================================  ==========================================
binding          unbinding                                 law
===============  =======================================  ==========================================
phasor_bind      F⁻¹(conj P(F k) ⊙ F z)                   exact: unbind(bind(k, y), k) = y
 (key)
phasor_bind      none: P(F y) keeps only the phases of y   refused
 (both)
ghrr_bind        y_j = Q(k_j)ᵀ z_j (blocks)               exact
outer_bind       W k / ‖k‖²                               exact for one pair (‖k‖ ≠ 0)
circular_conv    circular correlation k ⊘ z               approximate (crosstalk ~ 1/√d per pair):
                                                           refused unless ``approximate = true``
===============  =======================================  ==========================================

A binding not in :data:`UNBINDINGS` is refused (E0201) rather than guessed; the table is checked
against the registry by the tests, so a new binding cannot be missing silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from bkdsl.diagnostics import BkError
from bkdsl.nn.binding import ghrr_unbind, hrr_unbind, outer_unbind, phasor_unbind
from bkdsl.registry import Component, component
from bkdsl.semantics.types import ValueType


@dataclass(frozen=True)
class Unbinding:
    """The inverse of a binding: ``function(z, k, **kwargs)``; ``exact`` false for approximate ones;
    ``refusal`` says why a binding (with these parameters) has none."""

    function: Callable | None
    exact: bool = True
    kwargs: dict | None = None
    refusal: str = ""


def _phasor(b) -> Unbinding:
    if b.params.normalize == "key":
        return Unbinding(phasor_unbind)
    return Unbinding(None, refusal="`phasor_bind(normalize = \"both\")` keeps only the phases of the value "
                                   "(P(F y)), so the value cannot be recovered")


UNBINDINGS: dict[str, Callable[[Any], Unbinding]] = {
    "phasor_bind": _phasor,
    "ghrr_bind": lambda b: Unbinding(ghrr_unbind, kwargs={"k": b.params.k}),
    "outer_bind": lambda b: Unbinding(outer_unbind),
    "circular_conv": lambda b: Unbinding(hrr_unbind, exact=False,
                                         refusal="circular convolution has only an approximate inverse "
                                                 "(circular correlation, with crosstalk noise)"),
}


def unbinding_of(binding: Any) -> Unbinding:
    name = getattr(binding, "name", None)
    make = UNBINDINGS.get(name or "")
    if make is None:
        return Unbinding(None, refusal=f"no unbinding is known for `{name}`")
    return make(binding)


class _UnbindP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    binding: Any = Field(description="a `binding` declaration, e.g. `binding ph = phasor_bind()`")
    approximate: bool = Field(False, description="accept an approximate inverse (circular_conv's correlation)")


@component("unbind", kind="function", inputs=("z", "k"), positional=("binding", "z", "k"))
class Unbind(Component):
    """y = unbind(ph, z, k): the value bound to key k in z (ph(k, y) = z), by the binding's inverse."""

    Params = _UnbindP
    sequence = "pointwise"
    accepts = "any"
    function = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        b = self.params.binding
        inv = unbinding_of(b) if isinstance(b, Component) and b.kind == "binding" else Unbinding(None)
        usable = inv.function is not None and (inv.exact or self.params.approximate)
        # the lowering emits call_function(phasor_unbind, (z, k), kwargs); a refused one never lowers
        self.function = inv.function if usable else None
        self._kwargs = dict(inv.kwargs or {})

    def _inverse(self, ctx) -> Unbinding:
        b = self.params.binding
        if not isinstance(b, Component) or b.kind != "binding":
            raise ctx.error("E0201", f"`unbind` needs a binding declaration first, got `{getattr(b, 'decl_name', None) or b}`",
                            help="declare `binding ph = phasor_bind()` and write `unbind(ph, z, k)`")
        inv = unbinding_of(b)
        label = getattr(b, "decl_name", None) or b.name
        if inv.function is None or (not inv.exact and not self.params.approximate):
            raise ctx.error("E0201", f"binding `{label}` ({b.name}) has no exact unbinding: {inv.refusal}",
                            help="use phasor_bind (normalize = \"key\") or ghrr_bind for an exact inverse"
                                 + ("; or accept the approximation with `approximate = true`" if inv.function
                                    else ""))
        return inv

    def infer(self, ins, ctx):
        inv = self._inverse(ctx)
        z, k = ins
        if inv.function is outer_unbind:
            if z.shape and k.shape:
                ctx.uni.unify(z.shape[-1], k.shape[-1], ctx.span, "`unbind`: the bound matrix's columns and the key")
                return ValueType(z.shape[:-1], "float", None, None)
            return ValueType(None, "float", None, None)
        if z.shape and k.shape:
            ctx.uni.unify(z.shape[-1], k.shape[-1], ctx.span, "`unbind`'s bound vector and key")
        return z.with_(manifold=None)

    def call_kwargs(self):
        return dict(self._kwargs)


__all__ = ["Unbinding", "UNBINDINGS", "unbinding_of", "Unbind"]
